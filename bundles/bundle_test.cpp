#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bundles/bundle_test_util.h"
#include "base/hash.h"

using namespace kb;
using namespace kb::test;
namespace fs = std::filesystem;

namespace {

std::string run(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  *status = ::pclose(p);
  return out;
}

unsigned mode_of(const std::string& path) {
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("round trip: write, verify, extract equals the input hash by hash", "[bundle]") {
  TempDir t;
  for (Compression c : {Compression::Zstd, Compression::Gzip}) {
    CAPTURE(to_string(c));
    std::string out = t / (std::string("node.") + to_string(c) + ".kbundle");
    Manifest written = sample_writer(t / "etcd-bin").write(out, SigningKey(test_key().private_pem), {c, 0});
    Manifest verified = verify_bundle(out, test_key().public_pem);
    REQUIRE(verified == written);
    REQUIRE(verified.entries.size() == 6);
    CHECK(verified.signing_key_sha256 == VerifyKey(test_key().public_pem).fingerprint());
    CHECK(mode_of(out) == 0600);

    BundleReader r(out, test_key().public_pem);
    CHECK(r.compression() == c);

    std::string dest = t / (std::string("dest-") + to_string(c));
    Manifest extracted = extract_bundle(out, test_key().public_pem, dest);
    REQUIRE(extracted == written);
    size_t files = 0;
    for (const auto& e : written.entries) {
      std::string p = dest + e.path;
      if (e.type == EntryType::Directory) {
        CHECK(fs::is_directory(p));
        CHECK(mode_of(p) == 0700);
        continue;
      }
      ++files;
      std::string content = read_file(p);
      CHECK(content.size() == e.size);
      CHECK(sha256_hex(content) == e.sha256);
      CHECK(mode_of(p) == e.mode);
    }
    CHECK(files == 5);
    CHECK(read_file(dest + "/usr/local/bin/etcd") == read_file(t / "etcd-bin"));
    CHECK(read_file(dest + "/var/lib/kubernetes/ca.key") == kSecretContent);
    // Nothing else: no staging leftovers, no temp files.
    size_t count = 0;
    for (auto it = fs::recursive_directory_iterator(dest); it != fs::recursive_directory_iterator(); ++it) ++count;
    CHECK(count == 5 + 10);  // files, and the directories (/var/lib/etcd and the parents)
  }
}

TEST_CASE("determinism: the same inputs give byte-identical bundles", "[bundle]") {
  TempDir t;
  for (Compression c : {Compression::Zstd, Compression::Gzip}) {
    sample_writer(t / "bin").write(t / "a", SigningKey(test_key().private_pem), {c, 0});
    sample_writer(t / "bin").write(t / "b", SigningKey(test_key().private_pem), {c, 0});
    REQUIRE(read_file(t / "a") == read_file(t / "b"));
  }
  // The order of add_* calls does not matter: entries are sorted.
  BundleWriter w(sample_header());
  w.add_file(meta("/b", 0600, EntryClass::Config), "b");
  w.add_file(meta("/a", 0600, EntryClass::Config), "a");
  BundleWriter v(sample_header());
  v.add_file(meta("/a", 0600, EntryClass::Config), "a");
  v.add_file(meta("/b", 0600, EntryClass::Config), "b");
  w.write(t / "c", SigningKey(test_key().private_pem));
  v.write(t / "d", SigningKey(test_key().private_pem));
  REQUIRE(read_file(t / "c") == read_file(t / "d"));
}

TEST_CASE("tar layout: manifest, signature, then payload in manifest order with fixed headers", "[bundle]") {
  TempDir t;
  Manifest m = sample_writer(t / "bin").write(t / "b", SigningKey(test_key().private_pem));
  std::string tar = decompress(t / "b");
  auto members = tar_members(tar);
  REQUIRE(members.size() == 2 + m.entries.size());
  CHECK(members[0].name == "kbundle/manifest.json");
  CHECK(members[1].name == "kbundle/manifest.sig");
  CHECK(members[1].size == 64);
  for (size_t i = 0; i < m.entries.size(); ++i) CHECK(members[i + 2].name == member_name(m.entries[i]));
  CHECK(member_name(m.entries[0]) == "files/etc/empty.conf");
  CHECK(std::find_if(members.begin(), members.end(), [](auto& x) { return x.name == "files/var/lib/etcd/"; }) != members.end());
  for (const auto& x : members) {
    CHECK(tar.substr(x.header + 257, 8) == std::string("ustar\0" "00", 8));
    CHECK(std::stoll(tar.substr(x.header + 136, 12), nullptr, 8) == *parse_rfc3339_utc(m.created_at));
    CHECK(tar.substr(x.header + 265, 5) == std::string("root\0", 5));
    CHECK(std::stoll(tar.substr(x.header + 108, 8), nullptr, 8) == 0);
  }
  // The manifest member holds exactly the signed, canonical bytes.
  CHECK(tar.substr(members[0].data, members[0].size) == serialize_manifest(m));
  CHECK(VerifyKey(test_key().public_pem).verify(tar.substr(members[0].data, members[0].size), tar.substr(members[1].data, 64)));
}

TEST_CASE("GNU tar lists a bundle", "[bundle]") {
  TempDir t;
  sample_writer(t / "bin").write(t / "node.kbundle", SigningKey(test_key().private_pem));
  int status = -1;
  std::string out = run("tar -tvf '" + (t / "node.kbundle") + "' 2>&1", &status);
  if (status != 0) {
    WARN("SKIPPED: GNU tar cannot list a zstd bundle here (" << out << ")");
    return;
  }
  CHECK(out.find("kbundle/manifest.json") != std::string::npos);
  CHECK(out.find("kbundle/manifest.sig") != std::string::npos);
  CHECK(out.find("files/var/lib/kubernetes/ca.key") != std::string::npos);
  CHECK(out.find("-rw------- root/root") != std::string::npos);
  CHECK(out.find("drwx------ root/root") != std::string::npos);
  sample_writer(t / "bin").write(t / "node.gz", SigningKey(test_key().private_pem), {Compression::Gzip, 0});
  out = run("tar -tzvf '" + (t / "node.gz") + "' 2>&1", &status);
  CHECK(status == 0);
  CHECK(out.find("files/usr/local/bin/etcd") != std::string::npos);
}

TEST_CASE("listings show metadata only, never contents", "[bundle]") {
  TempDir t;
  Manifest m = sample_writer(t / "bin").write(t / "b", SigningKey(test_key().private_pem));
  std::string text = manifest_listing_text(m);
  std::string json = manifest_listing_json(m).dump();
  for (const std::string& s : {text, json}) {
    CHECK(s.find("/var/lib/kubernetes/ca.key") != std::string::npos);
    CHECK(s.find("TOP-SECRET") == std::string::npos);
    CHECK(s.find("BEGIN") == std::string::npos);
  }
  CHECK(text.find("0600") != std::string::npos);
  CHECK(text.find("secret") != std::string::npos);
  CHECK(text.find("serial:      7") != std::string::npos);
  CHECK(manifest_listing_json(m)["entries"][1]["sha256"] == m.entries[1].sha256);
}

TEST_CASE("writer refuses invalid entries and leaves no output", "[bundle]") {
  TempDir t;
  SigningKey key(test_key().private_pem);
  auto fails = [&](BundleWriter& w, BundleErrc want) {
    CHECK(code_of([&] { w.write(t / "out", key); }) == want);
    CHECK_FALSE(fs::exists(t / "out"));
    CHECK(fs::is_empty(t.path()));
  };
  {
    BundleWriter w(sample_header());
    w.add_file(meta("/etc/../x", 0600, EntryClass::Config), "x");
    fails(w, BundleErrc::UnsafePath);
  }
  {
    BundleWriter w(sample_header());
    w.add_file(meta("/etc/x", 0600, EntryClass::Config), "x");
    w.add_file(meta("/etc/x", 0600, EntryClass::Config), "y");
    fails(w, BundleErrc::BadManifest);
  }
  {
    BundleWriter w(sample_header());
    w.add_file(meta("/usr/local/bin/x", 04755, EntryClass::Binary), "x");
    fails(w, BundleErrc::BadManifest);
  }
  {
    Manifest h = sample_header();
    h.created_at = "2026-11-22 04:56:21";
    BundleWriter w(h);
    fails(w, BundleErrc::BadManifest);
  }
  BundleWriter w(sample_header());
  w.add_file_from_path(meta("/usr/local/bin/x", 0755, EntryClass::Binary), t / "does-not-exist");
  CHECK_THROWS_AS(w.write(t / "out", key), Error);
  CHECK_FALSE(fs::exists(t / "out"));
}

TEST_CASE("the sink is told a member is complete only after its hash matched", "[bundle]") {
  TempDir t;
  sample_writer(t / "bin").write(t / "b", SigningKey(test_key().private_pem));
  // Change one payload byte (same size) and re-sign nothing: the hash check must fire before finish().
  std::string tar = decompress(t / "b");
  auto members = tar_members(tar);
  const auto& key_member = *std::find_if(members.begin(), members.end(), [](auto& x) { return x.name == "files/var/lib/kubernetes/ca.key"; });
  tar[key_member.data + 3] ^= 1;
  compress_to(t / "bad", tar);

  struct Recorder : MemberSink {
    std::vector<std::string> finished;
    std::string current;
    void begin(const ManifestEntry& e) override { current = e.path; }
    void write(std::string_view) override {}
    void finish() override { finished.push_back(current); }
  } rec;
  BundleReader r(t / "bad", test_key().public_pem);
  CHECK(code_of([&] { r.read_payload(rec); }) == BundleErrc::HashMismatch);
  CHECK(std::find(rec.finished.begin(), rec.finished.end(), "/var/lib/kubernetes/ca.key") == rec.finished.end());
  CHECK(rec.current == "/var/lib/kubernetes/ca.key");
}

TEST_CASE("writer refuses levels outside what readers accept", "[bundle]") {
  TempDir t;
  SigningKey key(test_key().private_pem);
  BundleWriter w(sample_header());
  CHECK_THROWS_AS(w.write(t / "a", key, {Compression::Zstd, 20}), Error);
  CHECK_THROWS_AS(w.write(t / "a", key, {Compression::Gzip, 9}), Error);
  CHECK_THROWS_AS(w.write(t / "a", key, {Compression::Gzip, 1}), Error);
  CHECK_FALSE(fs::exists(t / "a"));
  w.write(t / "a", key, {Compression::Zstd, 19});
  w.write(t / "b", key, {Compression::Gzip, 8});
  CHECK_NOTHROW(verify_bundle(t / "a", test_key().public_pem));
  CHECK_NOTHROW(verify_bundle(t / "b", test_key().public_pem));
}

namespace {

// ctest runs each file with -# "[#file]", which also matches hidden tests:
// the benchmarks therefore also need KB_BENCH=1 to run.
bool bench_enabled() {
  if (std::getenv("KB_BENCH")) return true;
  WARN("SKIPPED: benchmark; run KB_BENCH=1 kb_bundles_tests \"[.bench]\"");
  return false;
}

long peak_rss_kib() {
  struct rusage ru;
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

}  // namespace

TEST_CASE("bench: 1 GiB binary, peak RSS and time of verify", "[.bench]") {
  if (!bench_enabled()) return;
  TempDir t;
  std::string big = t / "big.bin";
  {
    // Random stand-in for a large binary: incompressible, so the bundle is ~1 GiB too.
    AtomicFile f(big, 0755);
    std::string block(1 << 20, '\0');
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 1024; ++i) {
      for (size_t j = 0; j + 8 <= block.size(); j += 8) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        std::memcpy(&block[j], &x, 8);
      }
      f.write(block);
    }
    f.commit();
  }
  long rss0 = peak_rss_kib();
  BundleWriter w(sample_header());
  w.add_file(meta("/var/lib/kubernetes/ca.crt", 0644, EntryClass::Config), pem_like("CERTIFICATE", 20));
  w.add_file_from_path(meta("/usr/local/bin/kube-apiserver", 0755, EntryClass::Binary), big);
  auto t0 = std::chrono::steady_clock::now();
  w.write(t / "big.kbundle", SigningKey(test_key().private_pem));
  auto t1 = std::chrono::steady_clock::now();
  long rss1 = peak_rss_kib();
  // Verify in a child process so that its peak RSS is its own, not the writer's.
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    try {
      verify_bundle(t / "big.kbundle", test_key().public_pem);
      ::_exit(0);
    } catch (...) {
      ::_exit(1);
    }
  }
  int status = 0;
  struct rusage child;
  REQUIRE(::wait4(pid, &status, 0, &child) == pid);
  auto t2 = std::chrono::steady_clock::now();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  auto secs = [](auto d) { return std::chrono::duration<double>(d).count(); };
  WARN("1 GiB random binary: bundle " << fs::file_size(t / "big.kbundle") << " bytes; write " << secs(t1 - t0)
       << " s (peak RSS of the writing process " << rss1 << " KiB, " << rss0 << " KiB before); verify " << secs(t2 - t1)
       << " s, peak RSS of the verifying child " << child.ru_maxrss << " KiB");
  CHECK(child.ru_maxrss < 64 * 1024);
}

TEST_CASE("bench: compression of a realistic text payload and a large binary", "[.bench]") {
  if (!bench_enabled()) return;
  TempDir t;
  // ~100 KB of PEM and YAML shaped like a control-plane node's: certificates and
  // keys (base64 of random DER), kubeconfigs embedding the same CA plus their
  // own client cert and key, and configuration/unit text.
  BundleWriter text(sample_header());
  size_t text_bytes = 0;
  uint32_t x = 2166136261u;
  auto b64 = [&](size_t chars) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string s;
    for (size_t i = 0; i < chars; ++i) {
      s += alphabet[(x = x * 1664525u + 1013904223u) >> 26];
      if (i % 64 == 63) s += "\n";
    }
    return s;
  };
  auto pem = [](const std::string& label, const std::string& body) {
    return "-----BEGIN " + label + "-----\n" + body + "\n-----END " + label + "-----\n";
  };
  auto add = [&](const std::string& path, unsigned mode, EntryClass c, const std::string& content) {
    text.add_file(meta(path, mode, c), content);
    text_bytes += content.size();
  };
  std::string ca = pem("CERTIFICATE", b64(1000));
  add("/var/lib/kubernetes/ca.crt", 0644, EntryClass::Config, ca);
  add("/var/lib/kubernetes/ca.key", 0600, EntryClass::Secret, pem("EC PRIVATE KEY", b64(300)));
  for (int i = 0; i < 16; ++i) {
    add("/var/lib/kubernetes/c" + std::to_string(i) + ".crt", 0644, EntryClass::Config, pem("CERTIFICATE", b64(1100)));
    add("/var/lib/kubernetes/c" + std::to_string(i) + ".key", 0600, EntryClass::Secret, pem("EC PRIVATE KEY", b64(300)));
  }
  for (int i = 0; i < 18; ++i) {
    std::string yaml = "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: " + b64(0) + ca +
                       "    server: https://10.0.1.5:6443\n  name: demo\ncontexts:\n- context:\n    cluster: demo\n    user: system:node:cp-1\n"
                       "  name: default\ncurrent-context: default\nkind: Config\nusers:\n- name: system:node:cp-1\n  user:\n"
                       "    client-certificate-data: " + b64(2000) + "\n    client-key-data: " + b64(400) + "\n";
    add("/var/lib/kubernetes/k" + std::to_string(i) + ".kubeconfig", 0600, EntryClass::Secret, yaml);
  }
  for (int i = 0; i < 8; ++i) {
    std::string unit = "[Unit]\nDescription=Kubernetes component " + std::to_string(i) +
                       "\nDocumentation=https://github.com/kubernetes/kubernetes\nAfter=network-online.target\n\n[Service]\n"
                       "ExecStart=/usr/local/bin/kube-apiserver \\\n  --advertise-address=10.0.1.10 \\\n  --allow-privileged=true \\\n"
                       "  --audit-log-maxage=30 \\\n  --client-ca-file=/var/lib/kubernetes/ca.crt \\\n  --etcd-servers=https://10.0.1.10:2379 \\\n"
                       "  --service-cluster-ip-range=10.32.0.0/24 \\\n  --tls-cert-file=/var/lib/kubernetes/kube-apiserver.crt \\\n  --v=2\n"
                       "Restart=on-failure\nRestartSec=5\n\n[Install]\nWantedBy=multi-user.target\n";
    add("/etc/systemd/system/u" + std::to_string(i) + ".service", 0644, EntryClass::Unit, unit);
  }
  WARN("text payload: " << text_bytes << " bytes");
  std::string big = "/usr/lib/x86_64-linux-gnu/libLLVM-15.so.1";
  bool have_big = fs::exists(big);
  if (!have_big) WARN("SKIPPED large binary: " << big << " not found");
  struct Run { Compression c; int level; };
  for (Run r : {Run{Compression::Zstd, 3}, Run{Compression::Zstd, 9}, Run{Compression::Zstd, 19}, Run{Compression::Gzip, 6}, Run{Compression::Gzip, 8}}) {
    auto t0 = std::chrono::steady_clock::now();
    text.write(t / "text", SigningKey(test_key().private_pem), {r.c, r.level});
    auto t1 = std::chrono::steady_clock::now();
    verify_bundle(t / "text", test_key().public_pem);
    auto t2 = std::chrono::steady_clock::now();
    auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
    WARN(to_string(r.c) << " " << r.level << " text " << text_bytes << " B -> " << fs::file_size(t / "text") << " B, write "
         << ms(t1 - t0) << " ms, verify " << ms(t2 - t1) << " ms");
    if (!have_big || r.level == 19) continue;  // level 19 on 117 MB takes minutes on shared cores
    BundleWriter bin(sample_header());
    bin.add_file_from_path(meta("/usr/local/bin/big", 0755, EntryClass::Binary), big);
    t0 = std::chrono::steady_clock::now();
    bin.write(t / "bin", SigningKey(test_key().private_pem), {r.c, r.level});
    t1 = std::chrono::steady_clock::now();
    verify_bundle(t / "bin", test_key().public_pem);
    t2 = std::chrono::steady_clock::now();
    WARN(to_string(r.c) << " " << r.level << " binary " << fs::file_size(big) << " B -> " << fs::file_size(t / "bin") << " B, write "
         << ms(t1 - t0) << " ms, verify " << ms(t2 - t1) << " ms");
  }
}
