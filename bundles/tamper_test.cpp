// The tamper suite (RELIABILITY.md G3/G6): every damaged, truncated, extended,
// reordered, wrongly signed or maliciously built bundle is refused with the
// expected kind, and extract_bundle() leaves its destination empty and a
// sentinel outside it untouched.

#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "bundles/bundle_test_util.h"

using namespace kb;
using namespace kb::test;
namespace fs = std::filesystem;

namespace {

using Codes = std::set<BundleErrc>;

struct Suite {
  TempDir t;
  std::string good, good_gz, tar;
  std::vector<TarMember> members;
  Manifest manifest;
  int variants = 0;
  std::map<BundleErrc, int> histogram;

  Suite() {
    manifest = sample_writer(t / "bin").write(good = t / "good.kbundle", SigningKey(test_key().private_pem));
    sample_writer(t / "bin").write(good_gz = t / "good.gz.kbundle", SigningKey(test_key().private_pem), {Compression::Gzip, 0});
    tar = decompress(good);
    members = tar_members(tar);
    write_file_atomic(t / "sentinel", "sentinel", 0644);
  }

  const TarMember& member(const std::string& name) const {
    for (const auto& m : members)
      if (m.name == name) return m;
    FAIL("no member " << name);
    return members[0];
  }

  // Both entry points refuse `path` with one of `want`; extraction leaves no trace.
  void refuse(const std::string& path, const Codes& want, const std::string& what,
              const std::string& key = test_key().public_pem) {
    CAPTURE(what);
    ++variants;
    BundleErrc got{};
    try {
      verify_bundle(path, key);
      FAIL_CHECK("accepted: " << what);
      return;
    } catch (const BundleError& e) {
      got = e.code();
      INFO(e.what());
      CHECK(want.count(got) == 1);
    }
    ++histogram[got];
    std::string dest = t / "dest";
    try {
      extract_bundle(path, key, dest);
      FAIL_CHECK("extracted: " << what);
    } catch (const BundleError& e) {
      CHECK(e.code() == got);
    }
    CHECK(read_file(t / "sentinel") == "sentinel");
    if (fs::exists(dest)) {
      CHECK(fs::is_empty(dest));
      fs::remove(dest);
    }
    // Nothing new beside the sentinel either.
    for (const auto& e : fs::directory_iterator(t.path())) {
      std::string n = e.path().filename().string();
      CAPTURE(n);
      CHECK((n == "sentinel" || n == "bin" || n == "zeros.bin" || n.find("kbundle") != std::string::npos));
    }
  }

  // Write `data` as a bundle-to-test and refuse it.
  void refuse_bytes(const std::string& data, const Codes& want, const std::string& what) {
    write_file_atomic(t / "case.kbundle", data, 0600);
    refuse(t / "case.kbundle", want, what);
  }
  void refuse_tar(const std::string& raw_tar, const Codes& want, const std::string& what,
                  Compression c = Compression::Zstd) {
    compress_to(t / "case.kbundle", raw_tar, c);
    refuse(t / "case.kbundle", want, what);
  }
  void refuse_members(const std::vector<RawMember>& ms, const Codes& want, const std::string& what) {
    write_tar(t / "case.kbundle", ms);
    refuse(t / "case.kbundle", want, what);
  }

  std::string histogram_text() const {
    std::string s;
    for (auto [code, n] : histogram) s += std::string(to_string(code)) + "=" + std::to_string(n) + " ";
    return s;
  }
};

std::string flip(std::string s, size_t offset, int bit) {
  s[offset] = static_cast<char>(s[offset] ^ (1 << bit));
  return s;
}

const Codes kAnyDamage = {BundleErrc::NotABundle, BundleErrc::Corrupt, BundleErrc::Truncated, BundleErrc::TrailingData,
                          BundleErrc::BadSignature, BundleErrc::HashMismatch, BundleErrc::MissingManifest,
                          BundleErrc::MissingSignature, BundleErrc::UnsafePath, BundleErrc::ForbiddenType,
                          BundleErrc::UnlistedMember, BundleErrc::SizeMismatch, BundleErrc::HeaderMismatch,
                          BundleErrc::ManifestTooLarge, BundleErrc::TypeMismatch, BundleErrc::MissingMember};

}  // namespace

TEST_CASE("the good bundle is accepted (control)", "[tamper]") {
  Suite s;
  CHECK_NOTHROW(verify_bundle(s.good, test_key().public_pem));
  CHECK_NOTHROW(verify_bundle(s.good_gz, test_key().public_pem));
  // Our test plumbing itself round-trips: recompressing the tar unchanged is still good.
  compress_to(s.t / "case.kbundle", s.tar);
  CHECK_NOTHROW(verify_bundle(s.t / "case.kbundle", test_key().public_pem));
  write_tar(s.t / "case2.kbundle", members_of(s.good));
  CHECK_NOTHROW(verify_bundle(s.t / "case2.kbundle", test_key().public_pem));
}

TEST_CASE("tamper suite: damaged, truncated, extended and misassembled bundles", "[tamper]") {
  Suite s;
  std::mt19937 rng(20261122);
  for (const std::string* path : {&s.good, &s.good_gz}) {
    std::string file = read_file(*path);
    const char* kind = path == &s.good ? "zstd" : "gzip";
    // 1. Bit flips across the compressed file, including its first and last bytes.
    int flips = path == &s.good ? 100 : 60;
    for (int i = 0; i < flips; ++i) {
      size_t off = i == flips - 1 ? file.size() - 1 : file.size() * static_cast<size_t>(i) / static_cast<size_t>(flips) + rng() % 7;
      off = std::min(off, file.size() - 1);
      s.refuse_bytes(flip(file, off, static_cast<int>(rng() % 8)), kAnyDamage,
                     std::string(kind) + " bit flip at " + std::to_string(off));
    }
    // 2. Truncation at many lengths (never the full length).
    for (int i = 0; i < 40; ++i) {
      size_t len = i < 8 ? static_cast<size_t>(i) : file.size() - 1 - static_cast<size_t>(rng() % (file.size() - 1));
      if (i == 8) len = file.size() - 1;
      s.refuse_bytes(file.substr(0, len), {BundleErrc::NotABundle, BundleErrc::Corrupt, BundleErrc::Truncated},
                     std::string(kind) + " truncated to " + std::to_string(len));
    }
    // 3. Appended data after the compressed stream.
    const Codes trailing = {BundleErrc::TrailingData, BundleErrc::Corrupt};
    s.refuse_bytes(file + "x", trailing, std::string(kind) + " + 1 byte");
    s.refuse_bytes(file + std::string(512, '\0'), trailing, std::string(kind) + " + 512 zero bytes");
    s.refuse_bytes(file + file, trailing, std::string(kind) + " + itself");
    std::string junk(1000, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    s.refuse_bytes(file + junk, trailing, std::string(kind) + " + random bytes");
  }
  // A valid second zstd frame (of zeros) after the first.
  compress_to(s.t / "zeros.bin", std::string(4096, '\0'));
  s.refuse_bytes(read_file(s.good) + read_file(s.t / "zeros.bin"), {BundleErrc::TrailingData}, "zstd + zero frame");
  // Empty frames/members decompress to nothing: only frame boundaries can tell.
  compress_to(s.t / "zeros.bin", "");
  s.refuse_bytes(read_file(s.good) + read_file(s.t / "zeros.bin"), {BundleErrc::TrailingData}, "zstd + empty frame");
  compress_to(s.t / "zeros.bin", "", Compression::Gzip);
  s.refuse_bytes(read_file(s.good_gz) + read_file(s.t / "zeros.bin"), {BundleErrc::TrailingData}, "gzip + empty member");
  compress_to(s.t / "zeros.bin", std::string(1024, '\0'), Compression::Gzip);
  s.refuse_bytes(read_file(s.good_gz) + read_file(s.t / "zeros.bin"), {BundleErrc::TrailingData}, "gzip + member of zeros");
  {
    std::string gz = read_file(s.good_gz);
    for (size_t off : {3u, 4u, 7u, 8u, 9u})  // FLG, MTIME, XFL, OS: fixed by the format
      s.refuse_bytes(flip(gz, off, 1), {BundleErrc::Corrupt}, "gzip header byte " + std::to_string(off));
    for (size_t back = 1; back <= 8; ++back)  // CRC-32 and ISIZE
      s.refuse_bytes(flip(gz, gz.size() - back, 3), {BundleErrc::Corrupt}, "gzip trailer byte -" + std::to_string(back));
  }

  // 4. Bit flips in the decompressed tar, by region, recompressed: the kind says where.
  const TarMember& man = s.member("kbundle/manifest.json");
  const TarMember& sig = s.member("kbundle/manifest.sig");
  for (int i = 0; i < 20; ++i) {
    size_t off = man.data + man.size * static_cast<size_t>(i) / 20;
    s.refuse_tar(flip(s.tar, off, i % 8), {BundleErrc::BadSignature}, "manifest bit " + std::to_string(off));
  }
  for (int i = 0; i < 16; ++i)
    s.refuse_tar(flip(s.tar, sig.data + static_cast<size_t>(i) * 4, i % 8), {BundleErrc::BadSignature}, "signature bit");
  for (const auto& m : s.members) {
    if (m.name.rfind("files/", 0) != 0) continue;
    for (int i = 0; i < 4 && m.size > 0; ++i)
      s.refuse_tar(flip(s.tar, m.data + m.size * static_cast<size_t>(i) / 4, (i * 3) % 8), {BundleErrc::HashMismatch},
                   "payload bit in " + m.name);
  }
  for (const auto& m : s.members) {
    // name, mode, uid, size, mtime, checksum, typeflag, magic, uname, prefix
    for (size_t field : {0u, 101u, 110u, 130u, 140u, 150u, 156u, 258u, 266u, 400u})
      s.refuse_tar(flip(s.tar, m.header + field, 1), {BundleErrc::Corrupt}, "header byte " + std::to_string(field) + " of " + m.name);
    if (m.size % 512)
      s.refuse_tar(flip(s.tar, m.data + m.size, 0), {BundleErrc::Corrupt}, "padding after " + m.name);
  }
  const TarMember& last = s.members.back();
  size_t end = last.data + (last.size + 511) / 512 * 512;
  REQUIRE(s.tar.size() >= end + 1024);
  s.refuse_tar(flip(s.tar, end + 7, 2), {BundleErrc::Corrupt}, "first end-of-archive block");
  s.refuse_tar(flip(s.tar, end + 600, 2), {BundleErrc::TrailingData}, "second end-of-archive block");
  s.refuse_tar(flip(s.tar, s.tar.size() - 1, 0), {BundleErrc::TrailingData}, "last byte of the tar");

  // 5. Truncated tar streams, recompressed cleanly: the tar layer notices.
  for (int i = 0; i < 30; ++i) {
    size_t len = 1 + s.tar.size() * static_cast<size_t>(i) / 30 + rng() % 100;
    if (i == 29) len = end + 512;  // only one end-of-archive block
    s.refuse_tar(s.tar.substr(0, len), {BundleErrc::Truncated}, "tar truncated to " + std::to_string(len));
  }
  s.refuse_tar(s.tar.substr(0, end), {BundleErrc::Truncated}, "tar without end-of-archive marker");
  // 6. Data after the end-of-archive marker inside the tar.
  s.refuse_tar(s.tar + "garbage", {BundleErrc::TrailingData}, "tar + garbage");
  s.refuse_tar(s.tar + std::string(20480, '\0'), {BundleErrc::TrailingData}, "tar + 20 KiB of zeros");
  s.refuse_tar(s.tar.substr(0, end) + s.tar.substr(man.header, 512 + 512 * ((man.size + 511) / 512)) + std::string(1024, '\0'),
               {BundleErrc::UnlistedMember}, "manifest again at the end");

  // 7. Not bundles at all.
  s.refuse_bytes("", {BundleErrc::NotABundle}, "empty file");
  for (size_t n : {1u, 100u, 4096u, 100000u}) {
    std::string junk(n, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    s.refuse_bytes(junk, {BundleErrc::NotABundle}, "random bytes");
  }
  s.refuse_bytes(s.tar, {BundleErrc::NotABundle}, "uncompressed tar");
  s.refuse_bytes(std::string("\x28\xb5\x2f\xfd", 4), {BundleErrc::Corrupt, BundleErrc::Truncated, BundleErrc::NotABundle}, "zstd magic only");

  // 8. Missing, reordered or foreign manifest and signature.
  auto ms = members_of(s.good);
  s.refuse_members({ms.begin() + 1, ms.end()}, {BundleErrc::MissingManifest}, "no manifest");
  {
    auto v = ms;
    v.erase(v.begin() + 1);
    s.refuse_members(v, {BundleErrc::MissingSignature}, "no signature");
    s.refuse_members({ms[0]}, {BundleErrc::MissingSignature}, "manifest only");
    std::swap(v = ms, v);
    std::swap(v[0], v[1]);
    s.refuse_members(v, {BundleErrc::MissingManifest}, "signature first");
    v = ms;
    v[1].data += "x";
    s.refuse_members(v, {BundleErrc::MissingSignature}, "65-byte signature");
    v = ms;
    v[0].data = std::string(kMaxManifestSize + 1, '{');
    s.refuse_members(v, {BundleErrc::ManifestTooLarge}, "17 MiB manifest");
    v = ms;
    v[1].data = SigningKey(other_key().private_pem).sign(v[0].data);
    s.refuse_members(v, {BundleErrc::BadSignature}, "signed by another key");
    v = ms;
    std::string edited = v[0].data;
    auto pos = edited.find(s.manifest.entries[1].sha256);
    edited.replace(pos, 64, std::string(64, '0'));
    v[0].data = edited;
    s.refuse_members(v, {BundleErrc::BadSignature}, "edited hash, old signature");
    // Signed with the trusted key but naming another one: refused as a mismatch.
    Manifest other = s.manifest;
    other.signing_key_sha256 = VerifyKey(other_key().public_pem).fingerprint();
    v = ms;
    v[0].data = serialize_manifest(other);
    v[1].data = SigningKey(test_key().private_pem).sign(v[0].data);
    s.refuse_members(v, {BundleErrc::KeyMismatch}, "manifest names another key");
    // A signed manifest that is not canonical JSON.
    v = ms;
    v[0].data += " ";
    v[1].data = SigningKey(test_key().private_pem).sign(v[0].data);
    s.refuse_members(v, {BundleErrc::BadManifest}, "signed, not canonical");
  }
  s.refuse(s.good, {BundleErrc::BadSignature}, "wrong trusted key", other_key().public_pem);
  s.refuse(s.good_gz, {BundleErrc::BadSignature}, "wrong trusted key (gzip)", other_key().public_pem);

  WARN("tamper variants: " << s.variants << "; kinds: " << s.histogram_text());
  CHECK(s.variants >= 200);
}

TEST_CASE("malicious but signed archives are refused and nothing escapes", "[tamper]") {
  Suite s;
  const auto ms = members_of(s.good);  // [manifest, sig, payload in manifest order]
  int64_t mtime = ms[0].mtime;
  auto find = [&](const std::string& name) {
    for (size_t i = 0; i < ms.size(); ++i)
      if (ms[i].name == name) return i;
    FAIL("no member " << name);
    return size_t(0);
  };
  size_t key = find("files/var/lib/kubernetes/ca.key");
  auto with = [&](size_t at, RawMember m) {
    auto v = ms;
    if (m.mtime == 0) m.mtime = mtime;
    v.insert(v.begin() + static_cast<long>(at), m);
    return v;
  };
  auto replaced = [&](size_t at, RawMember m) {
    auto v = ms;
    if (m.mtime == 0) m.mtime = mtime;
    v[at] = m;
    return v;
  };
  std::string sentinel = s.t / "sentinel";
  RawMember evil{"files/etc/evil", AE_IFREG, 0644, "evil", "", "", 0, 0};

  s.refuse_members(with(ms.size(), evil), {BundleErrc::UnlistedMember}, "extra member at the end");
  s.refuse_members(with(3, evil), {BundleErrc::UnlistedMember}, "extra member in the middle");
  s.refuse_members(with(key + 1, ms[key]), {BundleErrc::DuplicateMember}, "duplicate member");
  s.refuse_members(with(ms.size(), ms[2]), {BundleErrc::DuplicateMember}, "duplicate of the first payload member");
  s.refuse_members(with(3, {"../sentinel", AE_IFREG, 0644, "pwned", "", "", 0, 0}), {BundleErrc::UnsafePath}, "../ path");
  s.refuse_members(with(3, {"files/../../sentinel", AE_IFREG, 0644, "pwned", "", "", 0, 0}), {BundleErrc::UnsafePath}, "files/../ path");
  s.refuse_members(with(3, {sentinel, AE_IFREG, 0644, "pwned", "", "", 0, 0}), {BundleErrc::UnsafePath}, "absolute path");
  s.refuse_members(with(3, {"files//etc/x", AE_IFREG, 0644, "x", "", "", 0, 0}), {BundleErrc::UnsafePath}, "// path");
  s.refuse_members(with(3, {"./files/etc/x", AE_IFREG, 0644, "x", "", "", 0, 0}), {BundleErrc::UnsafePath}, "./ path");
  s.refuse_members(replaced(key, {ms[key].name, AE_IFLNK, 0777, "", sentinel, "", 0, 0}), {BundleErrc::ForbiddenType}, "symlink to the sentinel");
  s.refuse_members(with(key, {"files/var/lib/kubernetes", AE_IFLNK, 0777, "", s.t.path(), "", 0, 0}), {BundleErrc::ForbiddenType}, "symlinked parent directory");
  s.refuse_members(replaced(key, {ms[key].name, AE_IFREG, 0644, "", "", sentinel, 0, 0}), {BundleErrc::ForbiddenType}, "hardlink to the sentinel");
  s.refuse_members(replaced(key, {ms[key].name, AE_IFIFO, 0600, "", "", "", 0, 0}), {BundleErrc::ForbiddenType}, "fifo");
  s.refuse_members(replaced(key, {ms[key].name, AE_IFCHR, 0600, "", "", "", 0, 0}), {BundleErrc::ForbiddenType}, "character device");
  s.refuse_members(replaced(key, {ms[key].name, AE_IFBLK, 0600, "", "", "", 0, 0}), {BundleErrc::ForbiddenType}, "block device");
  {
    RawMember bigger = ms[key];
    bigger.data += "x";
    s.refuse_members(replaced(key, bigger), {BundleErrc::SizeMismatch}, "size mismatch (+1)");
    bigger.data = ms[key].data.substr(1);
    s.refuse_members(replaced(key, bigger), {BundleErrc::SizeMismatch}, "size mismatch (-1)");
    RawMember changed = ms[key];
    changed.data[0] ^= 1;
    s.refuse_members(replaced(key, changed), {BundleErrc::HashMismatch}, "same size, other content");
    RawMember as_dir = ms[key];
    as_dir.filetype = AE_IFDIR;
    as_dir.data.clear();
    s.refuse_members(replaced(key, as_dir), {BundleErrc::TypeMismatch}, "file sent as directory");
    RawMember mode = ms[key];
    mode.mode = 0644;
    s.refuse_members(replaced(key, mode), {BundleErrc::HeaderMismatch}, "tar mode differs from the manifest");
    RawMember uid = ms[key];
    uid.uid = 1000;
    s.refuse_members(replaced(key, uid), {BundleErrc::HeaderMismatch}, "uid 1000");
    RawMember time = ms[key];
    time.mtime = 1;
    s.refuse_members(replaced(key, time), {BundleErrc::HeaderMismatch}, "mtime differs");
  }
  {
    auto v = ms;
    std::swap(v[3], v[4]);
    s.refuse_members(v, {BundleErrc::OutOfOrder}, "members out of order");
    v = ms;
    v.pop_back();
    s.refuse_members(v, {BundleErrc::MissingMember}, "last member missing");
    v = ms;
    v.erase(v.begin() + static_cast<long>(key) - 2);
    s.refuse_members(v, {BundleErrc::OutOfOrder}, "middle member missing");
    s.refuse_members({ms[0], ms[1]}, {BundleErrc::MissingMember}, "no payload at all");
  }
  // A NUL inside a member name (libarchive cannot write one): patch the raw tar.
  {
    std::string tar = s.tar;
    const TarMember& m = s.member("files/var/lib/kubernetes/ca.key");
    tar[m.header + 10] = '\0';
    fix_tar_checksum(tar, m.header);
    s.refuse_tar(tar, {BundleErrc::UnsafePath}, "NUL in a member name");
    tar = s.tar;
    tar[m.header + 156] = 'x';  // pax extended header in place of the file
    fix_tar_checksum(tar, m.header);
    s.refuse_tar(tar, {BundleErrc::ForbiddenType}, "pax header");
    tar = s.tar;
    tar[m.header + 156] = '\0';  // old-style regular file
    fix_tar_checksum(tar, m.header);
    s.refuse_tar(tar, {BundleErrc::ForbiddenType}, "v7 regular file type");
  }
  WARN("malicious variants: " << s.variants << "; kinds: " << s.histogram_text());
}
