// Multi-frame zstd bundles and the FrameCache (FORMAT.md §2): large members get
// frames of their own, identical across nodes; a shared cache changes where
// the bytes come from, never the bytes; every way of damaging, dropping,
// reordering, truncating or extending frames is refused.

#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <set>
#include <thread>
#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_getFrameHeader: the window a frame asks for
#include <zstd.h>

#include "bundles/bundle_test_util.h"
#include "base/hash.h"

using namespace kb;
using namespace kb::test;
namespace fs = std::filesystem;

namespace {

using Codes = std::set<BundleErrc>;

// Splits a zstd file into its frames (the raw bytes of each).
std::vector<std::string> frames_of(const std::string& file) {
  std::vector<std::string> out;
  for (size_t off = 0; off < file.size();) {
    size_t n = ZSTD_findFrameCompressedSize(file.data() + off, file.size() - off);
    REQUIRE_FALSE(ZSTD_isError(n));
    out.push_back(file.substr(off, n));
    off += n;
  }
  return out;
}

std::string join(const std::vector<std::string>& frames) {
  std::string s;
  for (const auto& f : frames) s += f;
  return s;
}

// Decompresses one frame (or a concatenation) with no limits: test plumbing only.
std::string unzstd(const std::string& data) {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> d(ZSTD_createDCtx(), ZSTD_freeDCtx);
  std::string out;
  std::vector<char> buf(1 << 16);
  ZSTD_inBuffer in{data.data(), data.size(), 0};
  while (in.pos < in.size) {
    ZSTD_outBuffer o{buf.data(), buf.size(), 0};
    size_t r = ZSTD_decompressStream(d.get(), &o, &in);
    REQUIRE_FALSE(ZSTD_isError(r));
    out.append(buf.data(), o.pos);
  }
  return out;
}

// Compresses `data` as one frame; window_log 0 is the level's default.
std::string zstd_frame(const std::string& data, int window_log = 0, bool content_size = true) {
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> c(ZSTD_createCCtx(), ZSTD_freeCCtx);
  ZSTD_CCtx_setParameter(c.get(), ZSTD_c_compressionLevel, 1);
  if (window_log) ZSTD_CCtx_setParameter(c.get(), ZSTD_c_windowLog, window_log);
  ZSTD_CCtx_setParameter(c.get(), ZSTD_c_contentSizeFlag, content_size ? 1 : 0);
  std::string out;
  std::vector<char> buf(1 << 16);
  // Fed in two steps, so that the library cannot shrink the window to the input size.
  ZSTD_inBuffer in{data.data(), data.size(), 0};
  for (ZSTD_EndDirective mode : {ZSTD_e_continue, ZSTD_e_end}) {
    for (;;) {
      ZSTD_outBuffer o{buf.data(), buf.size(), 0};
      size_t r = ZSTD_compressStream2(c.get(), &o, &in, mode);
      REQUIRE_FALSE(ZSTD_isError(r));
      out.append(buf.data(), o.pos);
      if (mode == ZSTD_e_end ? r == 0 : in.pos == in.size) break;
    }
  }
  return out;
}

std::string pseudo_binary(size_t n, uint32_t seed) {
  // Low-entropy bytes: compress like code does, fast to make.
  std::string s(n, '\0');
  uint32_t x = seed;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>("\x00\x48\x89\xe5\x8b\x45\xfc\xc3\x0f\x1f\x44\x90\xe8\x41\x55\x31"[(x >> 24) & 15]);
  }
  return s;
}

// Two nodes' worth of inputs: shared binaries and a large shared file on disk,
// and per node small files plus one large file of its own.
struct Cluster {
  TempDir t;
  Cluster() {
    write_file_atomic(t / "kube-proxy", pseudo_binary(3 << 20, 1), 0755);
    write_file_atomic(t / "kubectl", pseudo_binary(300000, 2), 0755);
    write_file_atomic(t / "shared.yaml", std::string(1536 * 1024, 'y'), 0644);
  }

  BundleWriter writer(const std::string& node) const {
    Manifest h = sample_header();
    h.node_name = h.hostname = node;
    BundleWriter w(h);
    w.add_file(meta("/etc/kubernetes/node.conf", 0644, EntryClass::Config), "node: " + node + "\n");
    w.add_file_from_path(meta("/etc/kubernetes/shared-big.yaml", 0644, EntryClass::Config), t / "shared.yaml");
    w.add_file_from_path(meta("/usr/local/bin/kube-proxy", 0755, EntryClass::Binary), t / "kube-proxy");
    w.add_file_from_path(meta("/usr/local/bin/kubectl", 0755, EntryClass::Binary), t / "kubectl");
    w.add_directory("/var/lib/kubelet", 0700);
    w.add_file(meta("/var/lib/kubelet/kubeconfig", 0600, EntryClass::Secret), pem_like("PRIVATE KEY " + node, 10));
    w.add_file(meta("/var/lib/node.data", 0600, EntryClass::Config), pseudo_binary(1200000, static_cast<uint32_t>(node.size() * 77 + node.back())));
    return w;
  }

  std::string write(const std::string& node, const std::string& out, FrameCache* cache,
                    Compression c = Compression::Zstd) const {
    writer(node).write(out, SigningKey(test_key().private_pem), {c, 0, cache});
    return read_file(out);
  }
};

// The frame layout of Cluster::writer's bundles.
enum Frame { kFirstRun, kSharedBig, kKubeProxy, kKubectl, kMiddleRun, kNodeData, kEndRun, kFrames };

// Refused by verify and by extract with one of `want`; extraction leaves nothing.
void refuse(const TempDir& t, const std::string& bytes, const Codes& want, const std::string& what) {
  CAPTURE(what);
  std::string path = t / "case.kbundle";
  write_file_atomic(path, bytes, 0600);
  BundleErrc got{};
  try {
    verify_bundle(path, test_key().public_pem);
    FAIL_CHECK("accepted: " << what);
    return;
  } catch (const BundleError& e) {
    got = e.code();
    INFO(e.what());
    CHECK(want.count(got) == 1);
  }
  std::string dest = t / "dest";
  try {
    extract_bundle(path, test_key().public_pem, dest);
    FAIL_CHECK("extracted: " << what);
  } catch (const BundleError& e) {
    CHECK(e.code() == got);
  }
  if (fs::exists(dest)) {
    CHECK(fs::is_empty(dest));
    fs::remove(dest);
  }
}

std::map<std::string, std::string> tree(const std::string& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    std::string rel = it->path().string().substr(root.size());
    out[rel] = it->is_directory() ? "dir" : sha256_hex(read_file(it->path().string()));
  }
  return out;
}

}  // namespace

TEST_CASE("large members get frames of their own, byte-identical across nodes", "[frames]") {
  Cluster c;
  std::string a = c.write("node-a", c.t / "a.kbundle", nullptr);
  std::string b = c.write("node-b", c.t / "b.kbundle", nullptr);
  auto fa = frames_of(a), fb = frames_of(b);
  REQUIRE(fa.size() == kFrames);
  REQUIRE(fb.size() == kFrames);
  // Shared members: the same bytes in both files (and so found in both files).
  for (int f : {kSharedBig, kKubeProxy, kKubectl, kEndRun}) {
    CAPTURE(f);
    CHECK(fa[f] == fb[f]);
    CHECK(b.find(fa[f]) != std::string::npos);
  }
  for (int f : {kFirstRun, kMiddleRun, kNodeData}) CHECK(fa[f] != fb[f]);
  // Each member frame holds exactly one tar member: header, data, padding.
  std::string tar = decompress(c.t / "a.kbundle");
  auto members = tar_members(tar);
  std::map<std::string, TarMember> by_name;
  for (const auto& m : members) by_name[m.name] = m;
  auto whole = [&](const std::string& name) {
    const TarMember& m = by_name.at(name);
    return tar.substr(m.header, 512 + (m.size + 511) / 512 * 512);
  };
  CHECK(unzstd(fa[kSharedBig]) == whole("files/etc/kubernetes/shared-big.yaml"));
  CHECK(unzstd(fa[kKubeProxy]) == whole("files/usr/local/bin/kube-proxy"));
  CHECK(unzstd(fa[kKubectl]) == whole("files/usr/local/bin/kubectl"));  // binary: own frame even below 1 MiB
  CHECK(unzstd(fa[kNodeData]) == whole("files/var/lib/node.data"));
  CHECK(unzstd(fa[kEndRun]) == std::string(1024, '\0'));
  CHECK(unzstd(join(fa)) == tar);
  // Every frame: window within the 8 MiB readers accept, content checksum present.
  for (const auto& f : fa) {
    ZSTD_frameHeader h;
    REQUIRE(ZSTD_getFrameHeader(&h, f.data(), f.size()) == 0);
    CHECK(h.windowSize <= (8u << 20));
    CHECK(h.checksumFlag == 1);
  }
  // gzip stays one member: no frames, no reuse.
  std::string gz = c.write("node-a", c.t / "a.gz", nullptr, Compression::Gzip);
  CHECK(verify_bundle(c.t / "a.gz", test_key().public_pem).entries.size() == 7);
  CHECK(gz.substr(0, 2) == "\x1f\x8b");
}

TEST_CASE("a shared FrameCache changes where the bytes come from, never the bytes", "[frames]") {
  Cluster c;
  fs::create_directory(c.t / "cache");
  std::map<std::string, std::string> plain;
  for (const char* n : {"node-a", "node-b", "node-c"}) plain[n] = c.write(n, c.t / (std::string(n) + ".plain"), nullptr);
  FrameCache cache(c.t / "cache");
  for (const char* n : {"node-a", "node-b", "node-c"}) {
    CAPTURE(n);
    std::string out = c.t / (std::string(n) + ".cached");
    CHECK(c.write(n, out, &cache) == plain[n]);
    verify_bundle(out, test_key().public_pem);
    std::string d1 = c.t / (std::string("x-") + n), d2 = c.t / (std::string("y-") + n);
    extract_bundle(out, test_key().public_pem, d1);
    extract_bundle(c.t / (std::string(n) + ".plain"), test_key().public_pem, d2);
    CHECK(tree(d1) == tree(d2));
    CHECK(read_file(d1 + "/usr/local/bin/kube-proxy") == read_file(c.t / "kube-proxy"));
  }
  // Compressed once: 3 shared frames + one node.data per node; every other use is a copy.
  FrameCache::Stats s = cache.stats();
  CHECK(s.frames == 3 + 3);
  CHECK(s.hits == 2 * 3);
  CHECK(s.copied_bytes > 0);
  // Nothing is left in the cache directory (the frames live in unlinked files).
  CHECK(fs::is_empty(c.t / "cache"));

  SECTION("several threads, one cache") {
    FrameCache shared(c.t / "cache");
    std::vector<std::thread> threads;
    std::map<std::string, std::string> got;
    for (const char* n : {"node-a", "node-b", "node-c"}) got[n];
    for (const char* n : {"node-a", "node-b", "node-c"})
      threads.emplace_back([&, n] { c.writer(n).write(c.t / (std::string(n) + ".mt"), SigningKey(test_key().private_pem), {Compression::Zstd, 0, &shared}); });
    for (auto& th : threads) th.join();
    for (const char* n : {"node-a", "node-b", "node-c"}) CHECK(read_file(c.t / (std::string(n) + ".mt")) == plain[n]);
    CHECK(shared.stats().frames == 6);
    CHECK(shared.stats().hits == 6);
  }
  SECTION("a source that changes between bundles is compressed again, not reused") {
    FrameCache fresh(c.t / "cache");
    c.write("node-a", c.t / "a1", &fresh);
    write_file_atomic(c.t / "kube-proxy", pseudo_binary(3 << 20, 99), 0755);
    c.write("node-b", c.t / "b1", &fresh);
    CHECK(fresh.stats().frames == 3 + 2 + 1);  // a: 3 shared + node.data; b: kube-proxy again + node.data
    extract_bundle(c.t / "b1", test_key().public_pem, c.t / "b1-x");
    CHECK(read_file(c.t / "b1-x/usr/local/bin/kube-proxy") == read_file(c.t / "kube-proxy"));
  }
  SECTION("other levels and gzip do not reuse frames made for another encoding") {
    FrameCache fresh(c.t / "cache");
    c.write("node-a", c.t / "a3", &fresh);
    c.writer("node-b").write(c.t / "b9", SigningKey(test_key().private_pem), {Compression::Zstd, 9, &fresh});
    CHECK(fresh.stats().hits == 0);
    verify_bundle(c.t / "b9", test_key().public_pem);
    std::string gz = c.write("node-a", c.t / "a.gz", &fresh, Compression::Gzip);
    CHECK(gz == c.write("node-a", c.t / "a2.gz", nullptr, Compression::Gzip));
    CHECK(fresh.stats().hits == 0);
  }
}

TEST_CASE("determinism: same inputs, same bytes, with or without a cache, in any run", "[frames]") {
  Cluster c;
  fs::create_directory(c.t / "cache");
  std::string first = c.write("node-a", c.t / "1", nullptr);
  CHECK(c.write("node-a", c.t / "2", nullptr) == first);
  FrameCache one(c.t / "cache"), two(c.t / "cache");
  CHECK(c.write("node-a", c.t / "3", &one) == first);
  CHECK(c.write("node-a", c.t / "4", &one) == first);  // from the cache
  CHECK(c.write("node-a", c.t / "5", &two) == first);
  // In-memory content and the same content from a file give the same frame.
  BundleWriter w = c.writer("node-a");
  Manifest h = sample_header();
  h.node_name = h.hostname = "node-a";
  BundleWriter mem(h);
  mem.add_file(meta("/usr/local/bin/kube-proxy", 0755, EntryClass::Binary), read_file(c.t / "kube-proxy"));
  BundleWriter disk(h);
  disk.add_file_from_path(meta("/usr/local/bin/kube-proxy", 0755, EntryClass::Binary), c.t / "kube-proxy");
  mem.write(c.t / "m", SigningKey(test_key().private_pem));
  disk.write(c.t / "d", SigningKey(test_key().private_pem), {Compression::Zstd, 0, &one});
  CHECK(read_file(c.t / "m") == read_file(c.t / "d"));
  CHECK(frames_of(read_file(c.t / "m"))[1] == frames_of(first)[kKubeProxy]);
}

TEST_CASE("our ustar headers are byte for byte libarchive's", "[frames]") {
  TempDir t;
  BundleWriter w = sample_writer(t / "bin");
  // Long names: split into prefix and name at a '/'.
  w.add_file(meta("/opt/" + std::string(90, 'p') + "/" + std::string(60, 'q') + "/file.conf", 0640, EntryClass::Config), "x");
  w.add_directory("/opt/" + std::string(120, 'd') + "/" + std::string(99, 'e'), 0700);
  w.write(t / "good.kbundle", SigningKey(test_key().private_pem));
  verify_bundle(t / "good.kbundle", test_key().public_pem);
  write_tar(t / "libarchive.kbundle", members_of(t / "good.kbundle"));
  CHECK(decompress(t / "libarchive.kbundle") == decompress(t / "good.kbundle"));
  // A name that cannot be split is refused before anything is written.
  BundleWriter bad(sample_header());
  bad.add_file(meta("/" + std::string(120, 'a') + "/" + std::string(120, 'b'), 0600, EntryClass::Config), "x");
  CHECK_THROWS_AS(bad.write(t / "bad.kbundle", SigningKey(test_key().private_pem)), Error);
  CHECK_FALSE(fs::exists(t / "bad.kbundle"));
}

TEST_CASE("multi-frame tamper: damaged, dropped, swapped, truncated and extra frames are refused", "[frames][tamper]") {
  Cluster c;
  std::string good = c.write("node-a", c.t / "good.kbundle", nullptr);
  std::string other = c.write("node-b", c.t / "other.kbundle", nullptr);
  const auto f = frames_of(good);
  REQUIRE(f.size() == kFrames);
  const Codes damage = {BundleErrc::Corrupt, BundleErrc::Truncated, BundleErrc::HashMismatch, BundleErrc::TrailingData,
                        BundleErrc::SizeMismatch, BundleErrc::UnlistedMember, BundleErrc::HeaderMismatch,
                        BundleErrc::UnsafePath, BundleErrc::ForbiddenType, BundleErrc::TypeMismatch, BundleErrc::OutOfOrder};

  // Controls: the good bundle, and the same tar framed differently (one frame,
  // or a member frame re-encoded at another level), which is the same signed content.
  CHECK_NOTHROW(verify_bundle(c.t / "good.kbundle", test_key().public_pem));
  {
    write_file_atomic(c.t / "one-frame.kbundle", zstd_frame(unzstd(good)), 0600);
    CHECK_NOTHROW(verify_bundle(c.t / "one-frame.kbundle", test_key().public_pem));
    auto v = f;
    v[kKubeProxy] = zstd_frame(unzstd(f[kKubeProxy]));
    REQUIRE(v[kKubeProxy] != f[kKubeProxy]);
    write_file_atomic(c.t / "reframed.kbundle", join(v), 0600);
    CHECK_NOTHROW(verify_bundle(c.t / "reframed.kbundle", test_key().public_pem));
  }

  // 1. Bit flips inside middle frames: magic, frame header, blocks, checksum.
  for (int fi : {kSharedBig, kKubeProxy, kMiddleRun, kNodeData}) {
    const std::string& fr = f[fi];
    // (Not the window descriptor or unused header bits: some of those flips decode
    // to the identical tar and are accepted, FORMAT.md §3.)
    for (size_t off : {size_t(0), size_t(3), fr.size() / 3, fr.size() / 2, fr.size() - 5, fr.size() - 1}) {
      auto v = f;
      v[fi][off] = static_cast<char>(v[fi][off] ^ 0x10);
      refuse(c.t, join(v), damage, "flip in frame " + std::to_string(fi) + " at " + std::to_string(off));
    }
  }
  // 2. Dropped frames.
  for (int fi = 1; fi < kFrames; ++fi) {
    auto v = f;
    v.erase(v.begin() + fi);
    refuse(c.t, join(v), {BundleErrc::OutOfOrder, BundleErrc::MissingMember, BundleErrc::Truncated, BundleErrc::Corrupt},
           "frame " + std::to_string(fi) + " dropped");
  }
  // 3. Swapped and duplicated frames.
  {
    auto v = f;
    std::swap(v[kKubeProxy], v[kKubectl]);
    refuse(c.t, join(v), {BundleErrc::OutOfOrder}, "binary frames swapped");
    v = f;
    std::swap(v[kSharedBig], v[kMiddleRun]);
    refuse(c.t, join(v), {BundleErrc::OutOfOrder}, "run and member frames swapped");
    v = f;
    v.insert(v.begin() + kKubectl, f[kKubeProxy]);
    refuse(c.t, join(v), {BundleErrc::DuplicateMember}, "binary frame twice");
    v = f;
    v.insert(v.begin() + kEndRun, f[kKubeProxy]);
    refuse(c.t, join(v), {BundleErrc::DuplicateMember}, "binary frame again at the end");
  }
  // 4. A frame from another node's bundle: same name, size and header, other content.
  {
    auto ob = frames_of(other);
    auto v = f;
    v[kNodeData] = ob[kNodeData];
    refuse(c.t, join(v), {BundleErrc::HashMismatch}, "node.data frame of another node");
    v = f;
    v[kKubeProxy] = ob[kKubeProxy];  // identical bytes: the same member, legitimately
    CHECK(join(v) == good);
  }
  // 5. Truncation inside later frames and exactly at frame boundaries.
  {
    size_t at = 0;
    for (int fi = 0; fi < kFrames; ++fi) {
      for (size_t cut : {size_t(1), size_t(4), size_t(13), f[fi].size() / 2, f[fi].size() - 1})
        if (cut < f[fi].size() && (fi > 0 || cut > 4))
          refuse(c.t, good.substr(0, at + cut), {BundleErrc::Truncated, BundleErrc::Corrupt},
                 "truncated inside frame " + std::to_string(fi) + " at +" + std::to_string(cut));
      at += f[fi].size();
      if (fi + 1 < kFrames) refuse(c.t, good.substr(0, at), {BundleErrc::Truncated}, "truncated after frame " + std::to_string(fi));
    }
  }
  // 6. Extra frames and bytes after the last frame: all trailing data.
  const std::string skippable = std::string("\x50\x2a\x4d\x18\x04\x00\x00\x00", 8) + "kbnd";
  refuse(c.t, good + zstd_frame("garbage"), {BundleErrc::TrailingData}, "appended garbage frame");
  refuse(c.t, good + zstd_frame(std::string(1024, '\0')), {BundleErrc::TrailingData}, "appended frame of zero blocks");
  refuse(c.t, good + zstd_frame(""), {BundleErrc::TrailingData}, "appended empty frame");
  refuse(c.t, good + f[kEndRun], {BundleErrc::TrailingData}, "end-of-archive frame twice");
  refuse(c.t, good + skippable, {BundleErrc::TrailingData}, "appended skippable frame");
  refuse(c.t, good + "\x28\xb5", {BundleErrc::TrailingData}, "appended partial magic");
  refuse(c.t, good + "junk bytes, not a frame", {BundleErrc::TrailingData}, "appended junk");
  // 7. Frames that must not appear anywhere: empty, skippable, junk, too large a window.
  for (int fi : {kSharedBig, kKubectl, kEndRun}) {
    auto v = f;
    v.insert(v.begin() + fi, zstd_frame(""));
    refuse(c.t, join(v), {BundleErrc::Corrupt}, "empty frame before frame " + std::to_string(fi));
    v = f;
    v.insert(v.begin() + fi, skippable);
    refuse(c.t, join(v), {BundleErrc::Corrupt}, "skippable frame before frame " + std::to_string(fi));
    v = f;
    v.insert(v.begin() + fi, "junk");
    refuse(c.t, join(v), {BundleErrc::Corrupt}, "junk before frame " + std::to_string(fi));
  }
  {
    std::string wide = zstd_frame(unzstd(f[kKubeProxy]), 24, false);
    ZSTD_frameHeader h;
    REQUIRE(ZSTD_getFrameHeader(&h, wide.data(), wide.size()) == 0);
    REQUIRE(h.windowSize > (8u << 20));
    REQUIRE(unzstd(wide) == unzstd(f[kKubeProxy]));
    auto v = f;
    v[kKubeProxy] = wide;
    refuse(c.t, join(v), {BundleErrc::Corrupt}, "member frame with a 16 MiB window");
  }
  // 8. Data after the end-of-archive marker, inside the last frame or as a frame of its own.
  {
    auto v = f;
    v[kEndRun] = zstd_frame(std::string(1024, '\0') + "x");
    refuse(c.t, join(v), {BundleErrc::TrailingData}, "last frame goes on after the marker");
    v[kEndRun] = zstd_frame(std::string(1024, '\0'));
    CHECK(join(v) != good);
    write_file_atomic(c.t / "marker.kbundle", join(v), 0600);
    CHECK_NOTHROW(verify_bundle(c.t / "marker.kbundle", test_key().public_pem));  // re-encoded, same content
    v.push_back(zstd_frame(std::string(512, '\0')));
    refuse(c.t, join(v), {BundleErrc::TrailingData}, "zero block in a frame after the marker");
  }
}

TEST_CASE("GNU tar and zstd -dc read a multi-frame bundle", "[frames]") {
  Cluster c;
  c.write("node-a", c.t / "a.kbundle", nullptr);
  std::string cmd = "zstd -dc '" + (c.t / "a.kbundle") + "' 2>/dev/null | tar -tvf - 2>&1";
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    if (::pclose(p) != 0) out.clear();
  }
  if (out.empty()) {
    WARN("SKIPPED: zstd or GNU tar not usable here");
    return;
  }
  for (const char* name : {"kbundle/manifest.sig", "files/usr/local/bin/kube-proxy", "files/var/lib/node.data"})
    CHECK(out.find(name) != std::string::npos);
}
