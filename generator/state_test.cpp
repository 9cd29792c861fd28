#include "base/temp_dir.h"
#include "generator/state.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <ctime>
#include <nlohmann/json.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <regex>
#include <thread>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/hash.h"
#include "bundles/signing.h"
#include "generator/state_test_util.h"

using namespace kb;
using kb::test::error_of;
using kb::test::put;
using kb::test::snapshot;
namespace fs = std::filesystem;

namespace {

// Each test in its own directory under /tmp, removed at the end.
using kb::TempDir;

// The clock every State::open below is given (one test moves it forward).
const std::time_t kNow = std::time(nullptr);

Topology topology(const std::string& cluster = "alpha", KeyType type = KeyType::EcdsaP256) {
  Topology t;
  t.source_path = "topology.yaml";
  t.cluster.name = cluster;
  t.cluster.key_type = type;
  return t;
}

mode_t mode_of(const std::string& path) {
  struct stat st;
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

ino_t inode_of(const std::string& path) {
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_ino;
}

std::string fingerprint_of(const std::string& pem) { return cert_fingerprint(parse_cert(pem, "test").get()); }

CertRequest kubelet_request(const std::string& node, const std::string& ip) {
  CertRequest r;
  r.common_name = "system:node:" + node;
  r.organizations = {"system:nodes"};
  r.client_auth = r.server_auth = true;
  r.dns_names = {node};
  r.ip_addresses = {ip};
  return r;
}

const char* const kAllFiles[] = {"state.json",
                                 "ca/kubernetes-ca.crt",
                                 "ca/kubernetes-ca.key",
                                 "ca/etcd-ca.crt",
                                 "ca/etcd-ca.key",
                                 "ca/front-proxy-ca.crt",
                                 "ca/front-proxy-ca.key",
                                 "keys/service-account.key",
                                 "keys/service-account.pub",
                                 "keys/encryption.key",
                                 "keys/bundle-signing.key",
                                 "keys/bundle-signing.pub",
                                 "issued.json",
                                 "serials.json"};

void check_modes(const std::string& dir) {
  CHECK(mode_of(dir) == 0700);
  CHECK(mode_of(dir + "/ca") == 0700);
  CHECK(mode_of(dir + "/keys") == 0700);
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    INFO(e.path().string());
    if (e.is_directory())
      CHECK(mode_of(e.path().string()) == 0700);
    else
      CHECK(mode_of(e.path().string()) == 0600);
  }
}

}  // namespace

TEST_CASE("open creates a complete state directory", "[state]") {
  TempDir tmp;
  const std::string dir = tmp / "nested/state";
  auto s = State::open(dir, topology(), kNow);
  CHECK(s->created());
  CHECK(s->dir() == dir);
  for (const char* f : kAllFiles) CHECK(fs::is_regular_file(dir + "/" + f));
  check_modes(dir);
  CHECK_FALSE(fs::exists(dir + "/.init-incomplete"));

  auto state = nlohmann::json::parse(read_file(dir + "/state.json"));
  CHECK(state["format"] == 1);
  CHECK(state["cluster"] == "alpha");
  CHECK(state["clusterId"] == s->cluster_id());
  CHECK(std::regex_match(s->cluster_id(), std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));

  for (CaName which : {CaName::Kubernetes, CaName::Etcd, CaName::FrontProxy}) {
    const auto& ca = s->ca(which);
    CHECK(X509_check_ca(ca.cert.get()) >= 1);
    CHECK(key_matches_cert(ca.key.get(), ca.cert.get()));
    CHECK(key_type_of(ca.key.get()) == KeyType::EcdsaP256);
    CHECK(ca.cert_pem == read_file(dir + "/ca/" + ca.name + ".crt"));
  }
  CHECK(s->ca(CaName::Kubernetes).name == "kubernetes-ca");
  CHECK(s->ca(CaName::Etcd).name == "etcd-ca");
  CHECK(s->ca(CaName::FrontProxy).name == "front-proxy-ca");

  CHECK(s->encryption_key_base64().size() == 44);  // 32 bytes
  CHECK(read_file(dir + "/keys/encryption.key") == s->encryption_key_base64() + "\n");
  PkeyPtr signing = parse_private_key(s->signing_key_pem(), "signing");
  CHECK(EVP_PKEY_get_base_id(signing.get()) == EVP_PKEY_ED25519);
  CHECK(public_key_pem(signing.get()) == s->signing_public_key_pem());
  PkeyPtr sa = parse_private_key(s->service_account_key_pem(), "sa");
  CHECK(public_key_pem(sa.get()) == s->service_account_public_pem());
  CHECK(nlohmann::json::parse(read_file(dir + "/issued.json")).empty());
  CHECK(nlohmann::json::parse(read_file(dir + "/serials.json")).empty());
}

TEST_CASE("modes are exact under umask 000", "[state]") {
  TempDir tmp;
  mode_t old = ::umask(0);
  try {
    auto s = State::open(tmp / "state", topology(), kNow);
    s->leaf("worker-0", "kubelet", CaName::Kubernetes, kubelet_request("worker-0", "10.0.1.20"));
    s->node_serial("worker-0", "d1");
    s->commit();
  } catch (...) {
    ::umask(old);
    throw;
  }
  ::umask(old);
  check_modes(tmp / "state");
}

TEST_CASE("an existing empty directory is used and tightened to 0700", "[state]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
  REQUIRE(::chmod(dir.c_str(), 0755) == 0);
  auto s = State::open(dir + "/", topology(), kNow);  // a trailing slash is fine
  CHECK(s->created());
  CHECK(s->dir() == dir);
  check_modes(dir);
}

TEST_CASE("a second open reuses everything", "[state]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  std::map<std::string, std::string> before;
  std::string id, sa, enc, signing;
  std::vector<std::string> fps;
  {
    auto s = State::open(dir, topology(), kNow);
    id = s->cluster_id();
    sa = s->service_account_key_pem();
    enc = s->encryption_key_base64();
    signing = s->signing_key_pem();
    for (CaName w : {CaName::Kubernetes, CaName::Etcd, CaName::FrontProxy}) fps.push_back(fingerprint_of(s->ca(w).cert_pem));
    before = snapshot(dir);
  }
  auto s = State::open(dir, topology(), kNow);
  CHECK_FALSE(s->created());
  CHECK(s->cluster_id() == id);
  CHECK(s->service_account_key_pem() == sa);
  CHECK(s->encryption_key_base64() == enc);
  CHECK(s->signing_key_pem() == signing);
  std::vector<std::string> now;
  for (CaName w : {CaName::Kubernetes, CaName::Etcd, CaName::FrontProxy}) now.push_back(fingerprint_of(s->ca(w).cert_pem));
  CHECK(now == fps);
  s->commit();  // nothing changed: nothing written
  CHECK(snapshot(dir) == before);
}

TEST_CASE("the lock stops a second user of the directory", "[state]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  auto first = State::open(dir, topology(), kNow);

  std::string msg = error_of([&] { State::open(dir, topology(), kNow); });
  CHECK_THAT(msg, Catch::StartsWith("state directory " + dir + " is in use by another kbundle run (pid " +
                                    std::to_string(::getpid()) + ")"));

  // Another process sees the same.
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::string m = error_of([&] { State::open(dir, topology(), kNow); });
    ::_exit(m.find("is in use by another kbundle run") != std::string::npos ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);

  first.reset();  // releases the lock
  CHECK_NOTHROW(State::open(dir, topology(), kNow));
}

TEST_CASE("another cluster's state is refused", "[state]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  State::open(dir, topology("alpha"), kNow);
  auto before = snapshot(dir);
  std::string msg = error_of([&] { State::open(dir, topology("beta"), kNow); });
  CHECK_THAT(msg, Catch::StartsWith(dir + "/state.json: ") && Catch::Contains("'alpha'") && Catch::Contains("'beta'") &&
                      Catch::Contains("--state") && Catch::Contains("nothing was changed"));
  CHECK(snapshot(dir) == before);
}

TEST_CASE("a damaged state is refused, naming the file, and left as it is", "[state]") {
  struct Case {
    const char* what;
    const char* file;  // the file the message must name
    std::function<void(const std::string& dir)> damage;
  };
  auto write = [](const std::string& path, const std::string& text) { write_file_atomic(path, text, 0600); };
  auto other_key = [] { return private_key_pem(generate_key(KeyType::EcdsaP256).get()); };
  const std::vector<Case> cases = {
      {"CA key missing", "ca/etcd-ca.key", [](const std::string& d) { fs::remove(d + "/ca/etcd-ca.key"); }},
      {"CA cert missing", "ca/kubernetes-ca.crt", [](const std::string& d) { fs::remove(d + "/ca/kubernetes-ca.crt"); }},
      {"CA cert unparsable", "ca/kubernetes-ca.crt", [&](const std::string& d) { write(d + "/ca/kubernetes-ca.crt", "garbage\n"); }},
      {"CA key unparsable", "ca/front-proxy-ca.key",
       [&](const std::string& d) {
         std::string k = read_file(d + "/ca/front-proxy-ca.key");
         write(d + "/ca/front-proxy-ca.key", k.substr(0, k.size() / 2));
       }},
      {"CA key of another cert", "ca/front-proxy-ca.key", [&](const std::string& d) { write(d + "/ca/front-proxy-ca.key", other_key()); }},
      {"state.json not JSON", "state.json", [&](const std::string& d) { write(d + "/state.json", "{\"format\": 1,"); }},
      {"state.json unknown format", "state.json",
       [&](const std::string& d) { write(d + "/state.json", R"({"format": 2, "cluster": "alpha", "clusterId": "x"})"); }},
      {"state.json without clusterId", "state.json",
       [&](const std::string& d) { write(d + "/state.json", R"({"format": 1, "cluster": "alpha"})"); }},
      {"state.json missing in a non-empty dir", "state.json", [](const std::string& d) { fs::remove(d + "/state.json"); }},
      {"service-account.pub of another key", "keys/service-account.pub",
       [&](const std::string& d) {
         write(d + "/keys/service-account.pub", public_key_pem(generate_key(KeyType::EcdsaP256).get()));
       }},
      {"encryption.key too short", "keys/encryption.key", [&](const std::string& d) { write(d + "/keys/encryption.key", "c2hvcnQ=\n"); }},
      {"bundle-signing.key not Ed25519", "keys/bundle-signing.key",
       [&](const std::string& d) {
         PkeyPtr k = generate_key(KeyType::EcdsaP256);
         write(d + "/keys/bundle-signing.key", private_key_pem(k.get()));
         write(d + "/keys/bundle-signing.pub", public_key_pem(k.get()));
       }},
      {"issued.json not JSON", "issued.json", [&](const std::string& d) { write(d + "/issued.json", "[1,"); }},
      {"issued.json entry without key", "issued.json",
       [&](const std::string& d) { write(d + "/issued.json", R"({"w/kubelet": {"cert": "x"}})"); }},
      {"serials.json missing", "serials.json", [](const std::string& d) { fs::remove(d + "/serials.json"); }},
      {"serials.json negative serial", "serials.json",
       [&](const std::string& d) { write(d + "/serials.json", R"({"w": {"serial": -1, "digest": "x"}})"); }},
  };
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.what) {
      TempDir tmp;
      const std::string dir = tmp / "state";
      std::vector<std::string> secrets;
      {
        auto s = State::open(dir, topology(), kNow);
        for (CaName w : {CaName::Kubernetes, CaName::Etcd, CaName::FrontProxy}) secrets.push_back(s->ca(w).key_pem);
        secrets.push_back(s->service_account_key_pem());
        secrets.push_back(s->signing_key_pem());
        secrets.push_back(s->encryption_key_base64());
      }
      c.damage(dir);
      auto before = snapshot(dir);
      std::string msg = error_of([&] { State::open(dir, topology(), kNow); });
      CHECK_THAT(msg, Catch::StartsWith(dir + "/" + c.file + ": damaged state: ") && Catch::Contains("nothing was changed"));
      CHECK(snapshot(dir) == before);
      CHECK_FALSE(fs::exists(dir + "/.init-incomplete"));
      // No secret, nor any line of one, leaks into the message.
      for (const auto& [path, bytes] : before) {
        if (path.find(".key") == std::string::npos && path.find("issued.json") == std::string::npos) continue;
        secrets.push_back(bytes);
      }
      CHECK(msg.find("PRIVATE KEY") == std::string::npos);
      for (const auto& secret : secrets) {
        size_t pos = 0;
        while (pos < secret.size()) {
          size_t nl = secret.find('\n', pos);
          std::string line = secret.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
          if (line.size() >= 16 && line.find("-----") == std::string::npos) CHECK(msg.find(line) == std::string::npos);
          if (nl == std::string::npos) break;
          pos = nl + 1;
        }
      }
    }
  }
}

TEST_CASE("a directory that is not a state is not touched", "[state]") {
  TempDir tmp;
  const std::string dir = tmp / "notes";
  fs::create_directories(dir);
  write_file_atomic(dir + "/todo.txt", "buy milk\n", 0644);
  std::string msg = error_of([&] { State::open(dir, topology(), kNow); });
  CHECK_THAT(msg, Catch::StartsWith(dir + "/state.json: damaged state: ") && Catch::Contains("todo.txt"));
  CHECK(snapshot(dir).size() == 1);
  CHECK_FALSE(fs::exists(dir + "/.lock"));  // not even the lock file
}

TEST_CASE("an interrupted first run is completed on the next", "[state]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  std::string old_fp;
  {
    auto s = State::open(dir, topology(), kNow);
    old_fp = fingerprint_of(s->ca(CaName::Kubernetes).cert_pem);
  }
  // What a crash before the last step leaves: the marker, some files, no state.json.
  fs::remove(dir + "/state.json");
  fs::remove(dir + "/keys/bundle-signing.pub");
  write_file_atomic(dir + "/.init-incomplete", "alpha\n", 0600);
  write_file_atomic(dir + "/ca/.etcd-ca.key.tmp-abcdefgh", "partial", 0600);

  auto s = State::open(dir, topology(), kNow);
  CHECK(s->created());
  CHECK(fingerprint_of(s->ca(CaName::Kubernetes).cert_pem) != old_fp);  // never used, so made anew
  for (const char* f : kAllFiles) CHECK(fs::is_regular_file(dir + "/" + f));
  CHECK_FALSE(fs::exists(dir + "/.init-incomplete"));
  CHECK_FALSE(fs::exists(dir + "/ca/.etcd-ca.key.tmp-abcdefgh"));
  check_modes(dir);
}

TEST_CASE("a later key type keeps the CAs and reissues leaves", "[state]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  std::string fp, leaf_pem;
  {
    auto s = State::open(dir, topology("alpha", KeyType::EcdsaP256), kNow);
    fp = fingerprint_of(s->ca(CaName::Kubernetes).cert_pem);
    leaf_pem = s->leaf("worker-0", "kubelet", CaName::Kubernetes, kubelet_request("worker-0", "10.0.1.20")).cert_pem;
    s->commit();
  }
  auto s = State::open(dir, topology("alpha", KeyType::Rsa2048), kNow);
  CHECK_FALSE(s->created());
  CHECK(fingerprint_of(s->ca(CaName::Kubernetes).cert_pem) == fp);
  CHECK(key_type_of(s->ca(CaName::Kubernetes).key.get()) == KeyType::EcdsaP256);
  IssuedCert leaf = s->leaf("worker-0", "kubelet", CaName::Kubernetes, kubelet_request("worker-0", "10.0.1.20"));
  CHECK(leaf.reissued);
  CHECK(leaf.reason == "key type changed: ecdsa-p256 -> rsa-2048");
  CHECK(key_type_of(parse_private_key(leaf.key_pem, "leaf").get()) == KeyType::Rsa2048);
}

TEST_CASE("leaves are reused until their request changes, across runs", "[state]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  const CertRequest r0 = kubelet_request("worker-0", "10.0.1.20");
  const CertRequest r1 = kubelet_request("worker-1", "10.0.1.21");
  IssuedCert first, other;
  {
    auto s = State::open(dir, topology(), kNow);
    first = s->leaf("worker-0", "kubelet", CaName::Kubernetes, r0);
    CHECK(first.reissued);
    CHECK(first.reason == "new");
    // Within one run, the same request gives the same cert.
    IssuedCert again = s->leaf("worker-0", "kubelet", CaName::Kubernetes, r0);
    CHECK_FALSE(again.reissued);
    CHECK(again.cert_pem == first.cert_pem);
    other = s->leaf("worker-1", "kubelet", CaName::Kubernetes, r1);
    s->commit();

    // The leaf chains to the state's CA.
    X509Ptr cert = parse_cert(first.cert_pem, "leaf");
    X509_STORE* store = X509_STORE_new();
    X509_STORE_add_cert(store, s->ca(CaName::Kubernetes).cert.get());
    X509_STORE_CTX* ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, cert.get(), nullptr);
    CHECK(X509_verify_cert(ctx) == 1);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    CHECK(key_matches_cert(parse_private_key(first.key_pem, "leaf key").get(), cert.get()));
  }
  {
    auto s = State::open(dir, topology(), kNow);
    IssuedCert reused = s->leaf("worker-0", "kubelet", CaName::Kubernetes, r0);
    CHECK_FALSE(reused.reissued);
    CHECK(reused.reason.empty());
    CHECK(reused.cert_pem == first.cert_pem);
    CHECK(reused.key_pem == first.key_pem);

    const ino_t inode = inode_of(dir + "/issued.json");
    s->commit();
    CHECK(inode_of(dir + "/issued.json") == inode);  // nothing new: not rewritten

    CertRequest moved = r0;
    moved.ip_addresses.push_back("10.0.1.13");
    IssuedCert changed = s->leaf("worker-0", "kubelet", CaName::Kubernetes, moved);
    CHECK(changed.reissued);
    CHECK(changed.reason == "SAN set changed: +IP:10.0.1.13");
    CHECK(changed.key_pem != first.key_pem);

    // Another issuer for the same name.
    IssuedCert etcd = s->leaf("worker-0", "kubelet", CaName::Etcd, moved);
    CHECK(etcd.reissued);
    CHECK_THAT(etcd.reason, Catch::StartsWith("issuer changed:"));

    // Not committed: the next run does not see it.
  }
  {
    auto s = State::open(dir, topology(), kNow);
    CHECK(s->leaf("worker-0", "kubelet", CaName::Kubernetes, r0).cert_pem == first.cert_pem);
    CertRequest moved = r0;
    moved.ip_addresses.push_back("10.0.1.13");
    IssuedCert changed = s->leaf("worker-0", "kubelet", CaName::Kubernetes, moved);
    CHECK(changed.reissued);
    s->commit();  // worker-1 was not asked for in this run: it is kept
    auto issued = nlohmann::json::parse(read_file(dir + "/issued.json"));
    CHECK(issued.size() == 2);
    CHECK(issued["worker-0/kubelet"]["cert"] == changed.cert_pem);
    CHECK(issued["worker-0/kubelet"]["issuer"] == "kubernetes-ca");
  }
  {
    auto s = State::open(dir, topology(), kNow);
    CHECK(s->leaf("worker-1", "kubelet", CaName::Kubernetes, r1).cert_pem == other.cert_pem);
  }
}

TEST_CASE("a broken issued.json entry is reported when it is used", "[state]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  State::open(dir, topology(), kNow);
  write_file_atomic(dir + "/issued.json", R"({"w/kubelet": {"cert": "nope", "key": "nope", "issuer": "kubernetes-ca"}})", 0600);
  auto s = State::open(dir, topology(), kNow);
  std::string msg = error_of([&] { s->leaf("w", "kubelet", CaName::Kubernetes, kubelet_request("w", "10.0.0.1")); });
  CHECK_THAT(msg, Catch::StartsWith(dir + "/issued.json: damaged state: ") && Catch::Contains("w/kubelet"));
}

TEST_CASE("node serials increase only when the content changes, and persist", "[state]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  {
    auto s = State::open(dir, topology(), kNow);
    CHECK(s->node_serial("worker-0", "d1") == 1);
    CHECK(s->node_serial("worker-0", "d1") == 1);
    CHECK(s->node_serial("control-0", "c1") == 1);
    s->commit();
  }
  {
    auto s = State::open(dir, topology(), kNow);
    CHECK(s->node_serial("worker-0", "d1") == 1);
    const ino_t inode = inode_of(dir + "/serials.json");
    s->commit();
    CHECK(inode_of(dir + "/serials.json") == inode);
    CHECK(s->node_serial("worker-0", "d2") == 2);
    CHECK(s->node_serial("worker-0", "d2") == 2);
    s->commit();
  }
  {
    auto s = State::open(dir, topology(), kNow);
    CHECK(s->node_serial("worker-0", "d2") == 2);
    CHECK(s->node_serial("worker-0", "d1") == 3);  // back to old content is still a change
    CHECK(s->node_serial("control-0", "c1") == 1);
    // Not committed.
  }
  auto s = State::open(dir, topology(), kNow);
  CHECK(s->node_serial("worker-0", "d2") == 2);
  auto serials = nlohmann::json::parse(read_file(dir + "/serials.json"));
  CHECK(serials["worker-0"]["serial"] == 2);
  CHECK(serials["worker-0"]["digest"] == "d2");
}

TEST_CASE("secrets never appear in error messages", "[state]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  std::vector<std::string> secrets;
  {
    auto s = State::open(dir, topology(), kNow);
    secrets = {s->ca(CaName::Kubernetes).key_pem, s->service_account_key_pem(), s->signing_key_pem(),
               s->encryption_key_base64()};
    secrets.push_back(s->leaf("w", "kubelet", CaName::Kubernetes, kubelet_request("w", "10.0.0.1")).key_pem);
    s->commit();
  }
  std::vector<std::string> messages;
  {
    auto held = State::open(dir, topology(), kNow);
    messages.push_back(error_of([&] { State::open(dir, topology(), kNow); }));
  }
  messages.push_back(error_of([&] { State::open(dir, topology("beta"), kNow); }));
  // A key file holding another valid key, and one holding a cut-off key.
  std::string sa = read_file(dir + "/keys/service-account.key");
  write_file_atomic(dir + "/keys/service-account.key", secrets[0], 0600);
  messages.push_back(error_of([&] { State::open(dir, topology(), kNow); }));
  write_file_atomic(dir + "/keys/service-account.key", sa.substr(0, sa.size() - 40), 0600);
  messages.push_back(error_of([&] { State::open(dir, topology(), kNow); }));

  for (const auto& m : messages) {
    INFO(m);
    CHECK_FALSE(m.empty());
    CHECK(m.find("PRIVATE KEY") == std::string::npos);
    for (const auto& secret : secrets)
      for (size_t at = 30; at + 20 < secret.size(); at += 64) CHECK(m.find(secret.substr(at, 20)) == std::string::npos);
  }
}

// Figures for thousands of leaves: bench/pki.sh.
TEST_CASE("leaf() from several threads: every leaf issued once, then reused", "[state]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  constexpr int kLeaves = 200;
  auto issue_all = [&](State& s, std::atomic<int>& reissued) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t)
      threads.emplace_back([&, t] {
        for (int i = t; i < kLeaves; i += 2) {
          std::string node = "worker-" + std::to_string(i);
          auto leaf = s.leaf(node, "kubelet", CaName::Kubernetes,
                             kubelet_request(node, "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250)));
          if (leaf.reissued) ++reissued;
        }
      });
    for (auto& th : threads) th.join();
  };
  {
    auto s = State::open(dir, topology(), kNow);
    std::atomic<int> reissued{0};
    issue_all(*s, reissued);
    s->commit();
    CHECK(reissued == kLeaves);
  }
  auto s = State::open(dir, topology(), kNow);
  std::atomic<int> reissued{0};
  issue_all(*s, reissued);
  s->commit();
  CHECK(reissued == 0);
  CHECK(nlohmann::json::parse(read_file(dir + "/issued.json")).size() == kLeaves);
}

TEST_CASE("a leaf is renewed when the clock given to open() nears its expiry", "[state]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  constexpr std::time_t kDay = 86400;
  const std::time_t first_run = 1700000000;  // leaves: 365 days, renewed 30 days before expiry
  const CertRequest request = kubelet_request("worker-0", "10.0.1.20");
  std::string first;
  {
    auto s = State::open(dir, topology(), first_run);
    first = s->leaf("worker-0", "kubelet", CaName::Kubernetes, request).cert_pem;
    s->commit();
  }
  {
    auto s = State::open(dir, topology(), first_run + 300 * kDay);  // 65 days left: kept
    IssuedCert kept = s->leaf("worker-0", "kubelet", CaName::Kubernetes, request);
    CHECK_FALSE(kept.reissued);
    CHECK(kept.cert_pem == first);
  }
  auto s = State::open(dir, topology(), first_run + 355 * kDay);  // 10 days left
  IssuedCert renewed = s->leaf("worker-0", "kubelet", CaName::Kubernetes, request);
  CHECK(renewed.reissued);
  CHECK(renewed.reason == "expires in 10 days (renewBeforeDays 30)");
  CHECK(renewed.cert_pem != first);
}

// ---- pins (issue 13, item 3) -------------------------------------------------------------------

namespace {

// Replaces CA `name` with another valid CA (cert and key that match each other).
void swap_ca(const std::string& dir, const std::string& name) {
  CertificateAuthority other = make_ca(name, name, KeyType::EcdsaP256, 3650, kNow);
  put(dir + "/ca/" + name + ".crt", other.cert_pem);
  put(dir + "/ca/" + name + ".key", other.key_pem);
}

// A certificate for CA `name`'s own key, issued by another CA: the key still matches the cert.
void swap_ca_cert_only(const std::string& dir, const std::string& name) {
  PkeyPtr key = parse_private_key(read_file(dir + "/ca/" + name + ".key"), "key");
  CertificateAuthority other = make_ca("evil", "evil", KeyType::EcdsaP256, 3650, kNow);
  CertRequest req;
  req.common_name = name;
  put(dir + "/ca/" + name + ".crt", cert_pem(issue_cert(other, key.get(), req, 365, kNow).get()));
}

}  // namespace

TEST_CASE("every swapped CA or long-lived key is refused by its pin, naming the file", "[state][pins]") {
  struct Case {
    const char* what;
    const char* file;
    std::function<void(const std::string& dir)> swap;
  };
  auto key_pair = [](const std::string& d, const std::string& base, PkeyPtr k) {
    put(d + "/keys/" + base + ".key", private_key_pem(k.get()));
    put(d + "/keys/" + base + ".pub", public_key_pem(k.get()));
  };
  const std::vector<Case> cases = {
      {"kubernetes-ca: another matching pair", "ca/kubernetes-ca.crt", [](const std::string& d) { swap_ca(d, "kubernetes-ca"); }},
      {"etcd-ca: another matching pair", "ca/etcd-ca.crt", [](const std::string& d) { swap_ca(d, "etcd-ca"); }},
      {"front-proxy-ca: another matching pair", "ca/front-proxy-ca.crt", [](const std::string& d) { swap_ca(d, "front-proxy-ca"); }},
      {"kubernetes-ca: only the cert, same key, from another CA", "ca/kubernetes-ca.crt",
       [](const std::string& d) { swap_ca_cert_only(d, "kubernetes-ca"); }},
      {"etcd-ca: only the cert, same key, from another CA", "ca/etcd-ca.crt", [](const std::string& d) { swap_ca_cert_only(d, "etcd-ca"); }},
      {"etcd-ca: the cert of kubernetes-ca", "ca/etcd-ca.crt",
       [](const std::string& d) {
         put(d + "/ca/etcd-ca.crt", read_file(d + "/ca/kubernetes-ca.crt"));
         put(d + "/ca/etcd-ca.key", read_file(d + "/ca/kubernetes-ca.key"));
       }},
      {"kubernetes-ca: only the key", "ca/kubernetes-ca.key",
       [](const std::string& d) { put(d + "/ca/kubernetes-ca.key", private_key_pem(generate_key(KeyType::EcdsaP256).get())); }},
      {"kubernetes-ca: the same key re-encoded (trailing newline)", "ca/kubernetes-ca.key",
       [](const std::string& d) { put(d + "/ca/kubernetes-ca.key", read_file(d + "/ca/kubernetes-ca.key") + "\n"); }},
      {"service-account: another matching pair", "keys/service-account.key",
       [&](const std::string& d) { key_pair(d, "service-account", generate_key(KeyType::EcdsaP256)); }},
      {"service-account: only the public key", "keys/service-account.pub",
       [](const std::string& d) { put(d + "/keys/service-account.pub", public_key_pem(generate_key(KeyType::EcdsaP256).get())); }},
      {"bundle-signing: another Ed25519 pair", "keys/bundle-signing.key",
       [&](const std::string& d) { key_pair(d, "bundle-signing", generate_ed25519_key()); }},
      {"bundle-signing: only the public key", "keys/bundle-signing.pub",
       [](const std::string& d) { put(d + "/keys/bundle-signing.pub", public_key_pem(generate_ed25519_key().get())); }},
      {"encryption key: another valid 32-byte key", "keys/encryption.key",
       [](const std::string& d) { put(d + "/keys/encryption.key", base64_encode(std::string(32, 'k')) + "\n"); }},
      {"truncated CA cert", "ca/etcd-ca.crt",
       [](const std::string& d) {
         std::string c = read_file(d + "/ca/etcd-ca.crt");
         put(d + "/ca/etcd-ca.crt", c.substr(0, c.size() / 2));
       }},
      {"garbage signing key", "keys/bundle-signing.key", [](const std::string& d) { put(d + "/keys/bundle-signing.key", "garbage\n"); }},
      {"empty encryption key", "keys/encryption.key", [](const std::string& d) { put(d + "/keys/encryption.key", ""); }},
      {"missing CA key", "ca/front-proxy-ca.key", [](const std::string& d) { fs::remove(d + "/ca/front-proxy-ca.key"); }},
      {"missing signing public key", "keys/bundle-signing.pub", [](const std::string& d) { fs::remove(d + "/keys/bundle-signing.pub"); }},
      {"an unpinned rollover.json", "keys/rollover.json", [](const std::string& d) { put(d + "/keys/rollover.json", "{}"); }},
  };
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.what) {
      TempDir tmp;
      const std::string dir = tmp / "state";
      State::open(dir, topology(), kNow);
      c.swap(dir);
      auto before = snapshot(dir);
      std::string msg = error_of([&] { State::open(dir, topology(), kNow); });
      CHECK_THAT(msg, Catch::StartsWith(dir + "/" + c.file + ": damaged state: "));
      CHECK_THAT(msg, Catch::Contains("nothing was changed"));
      CHECK(msg.find("PRIVATE KEY") == std::string::npos);
      CHECK(snapshot(dir) == before);
    }
  }
}

TEST_CASE("a state without pins (an older kbundle) is pinned on its first open, with a note", "[state][pins]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  State::open(dir, topology(), kNow);
  nlohmann::json j = nlohmann::json::parse(read_file(dir + "/state.json"));
  REQUIRE(j.contains("pins"));
  CHECK(j["pins"].size() == 11);
  CHECK(j["pins"]["ca/etcd-ca.crt"] == sha256_hex(read_file(dir + "/ca/etcd-ca.crt")));
  j.erase("pins");
  put(dir + "/state.json", j.dump(2) + "\n");
  {
    auto s = State::open(dir, topology(), kNow);
    CHECK_THAT(s->note(), Catch::Contains("made by an older kbundle without pins"));
  }
  CHECK(nlohmann::json::parse(read_file(dir + "/state.json")).contains("pins"));
  CHECK(State::open(dir, topology(), kNow)->note().empty());
  swap_ca(dir, "kubernetes-ca");
  CHECK_THAT(error_of([&] { State::open(dir, topology(), kNow); }), Catch::StartsWith(dir + "/ca/kubernetes-ca.crt: damaged state: "));
}

TEST_CASE("malformed pins are refused", "[state][pins]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  State::open(dir, topology(), kNow);
  const nlohmann::json good = nlohmann::json::parse(read_file(dir + "/state.json"));
  std::vector<std::function<void(nlohmann::json&)>> edits = {
      [](nlohmann::json& j) { j["pins"] = "x"; },
      [](nlohmann::json& j) { j["pins"].erase("keys/encryption.key"); },
      [](nlohmann::json& j) { j["pins"]["ca/kubernetes-ca.crt"] = "ABC"; },
      [](nlohmann::json& j) { j["pins"]["issued.json"] = std::string(64, '0'); },
  };
  for (auto& edit : edits) {
    nlohmann::json j = good;
    edit(j);
    put(dir + "/state.json", j.dump());
    CHECK_THAT(error_of([&] { State::open(dir, topology(), kNow); }), Catch::StartsWith(dir + "/state.json: damaged state: "));
  }
}

TEST_CASE("rotate_signing_key: a new key, a chain signed by each old key, pins follow", "[state][rotate]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  std::string k0;
  {
    auto s = State::open(dir, topology(), kNow);
    k0 = s->signing_public_key_pem();
    CHECK(s->signing_rollover_serial() == 0);
    RolloverStatement st = s->rotate_signing_key("2026-12-03T10:00:00Z");
    CHECK(st.serial == 1);
    CHECK(st.old_key_sha256 == VerifyKey(k0).fingerprint());
    CHECK(st.new_key_sha256 == VerifyKey(s->signing_public_key_pem()).fingerprint());
    CHECK(verify_rollover(st, VerifyKey(k0)));
  }
  auto s = State::open(dir, topology(), kNow);
  CHECK(s->signing_rollover_serial() == 1);
  CHECK(s->signing_public_key_pem() != k0);
  CHECK(SigningKey(s->signing_key_pem()).public_pem() == s->signing_public_key_pem());
  s->rotate_signing_key("2026-12-03T11:00:00Z");
  std::string k2 = s->signing_public_key_pem();
  s.reset();
  s = State::open(dir, topology(), kNow);
  REQUIRE(s->rollover_chain().size() == 2);
  ChainEnd end = walk_rollover_chain(k0, 0, s->rollover_chain());
  CHECK(end.key_pem == k2);
  CHECK(end.serial == 2);
  CHECK(mode_of(dir + "/keys/rollover.json") == 0600);
  // The chain file is pinned like the keys.
  s.reset();
  put(dir + "/keys/rollover.json", read_file(dir + "/keys/rollover.json") + " ");
  CHECK_THAT(error_of([&] { State::open(dir, topology(), kNow); }), Catch::StartsWith(dir + "/keys/rollover.json: damaged state: "));
}

TEST_CASE("a rotation cut short at any step leaves the old state or the new one", "[state][rotate]") {
  // Learn the steps, then stop at each one as a crash would (the exception skips the rest).
  std::vector<std::string> steps;
  {
    TempDir tmp;
    auto s = State::open(tmp / "state", topology(), kNow);
    s->rotate_signing_key("2026-12-03T10:00:00Z", [&](const std::string& st) { steps.push_back(st); });
  }
  REQUIRE(steps.size() == 7);
  for (const auto& stop : steps) {
    DYNAMIC_SECTION("crash " << stop) {
      TempDir tmp;
      const std::string dir = tmp / "state";
      std::string old_pub, new_pub;
      {
        auto s = State::open(dir, topology(), kNow);
        old_pub = s->signing_public_key_pem();
        s->rotate_signing_key("2026-12-03T09:00:00Z");  // a first rotation that completes
        old_pub = s->signing_public_key_pem();
        // A real crash: a child process kills itself with SIGKILL at the step (the lock is the
        // parent's here, so the child runs the rotation on the parent's open State).
        pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
          s->rotate_signing_key("2026-12-03T10:00:00Z", [&](const std::string& st) {
            if (st == stop) ::kill(::getpid(), SIGKILL);
          });
          ::_exit(0);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        REQUIRE(WIFSIGNALED(status));
        // What the crashed run meant to install, if it committed.
        std::string next = dir + "/keys/bundle-signing.pub.next";
        new_pub = fs::exists(next) ? read_file(next) : read_file(dir + "/keys/bundle-signing.pub");
      }
      bool committed = stop.rfind("after-next-", 0) != 0;
      auto s = State::open(dir, topology(), kNow);
      CHECK(s->signing_public_key_pem() == (committed ? new_pub : old_pub));
      CHECK(s->signing_rollover_serial() == (committed ? 2u : 1u));
      CHECK(SigningKey(s->signing_key_pem()).public_pem() == s->signing_public_key_pem());
      for (const char* f : {"keys/bundle-signing.key.next", "keys/bundle-signing.pub.next", "keys/rollover.json.next"})
        CHECK_FALSE(fs::exists(dir + "/" + f));
      // And it goes on from there.
      s->rotate_signing_key("2026-12-03T11:00:00Z");
      CHECK(s->signing_rollover_serial() == (committed ? 3u : 2u));
    }
  }
}

TEST_CASE("read_signing_public_key: read-only, pinned, nullopt before the state exists", "[state]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  CHECK_FALSE(read_signing_public_key(dir, "alpha"));
  CHECK_FALSE(fs::exists(dir));  // nothing created
  std::string pub;
  {
    auto s = State::open(dir, topology(), kNow);
    pub = s->signing_public_key_pem();
    // Read while another run holds the lock: no lock taken, nothing written.
    auto before = snapshot(dir);
    CHECK(read_signing_public_key(dir, "alpha") == pub);
    CHECK(snapshot(dir) == before);
  }
  CHECK_THROWS_WITH(read_signing_public_key(dir, "beta"), Catch::Contains("belongs to cluster 'alpha'"));
  // A swapped key is refused as open() refuses it.
  std::string other = kb::public_key_pem(kb::generate_ed25519_key().get());
  kb::write_file_atomic(dir + "/keys/bundle-signing.pub", other, 0600);
  CHECK_THROWS_WITH(read_signing_public_key(dir, "alpha"), Catch::Contains("replaced or changed"));
}

TEST_CASE("a state directory holding only the binary cache (kbundle fetch first) is initialized", "[state]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  fs::create_directories(dir + "/cache/v1.32.3");
  kb::write_file_atomic(dir + "/cache/v1.32.3/kubelet", "binary", 0644);
  auto s = State::open(dir, topology(), kNow);
  CHECK(s->created());
  CHECK(read_file(dir + "/cache/v1.32.3/kubelet") == "binary");
  CHECK(read_signing_public_key(dir, "alpha") == s->signing_public_key_pem());
}

// ---- previous manifests (contract A of issue 15) ----

namespace {

Manifest manifest_for(const State& s, const std::string& node, uint64_t serial = 1) {
  Manifest m;
  m.cluster_name = "alpha";
  m.cluster_id = s.cluster_id();
  m.node_name = node;
  m.role = "worker";
  m.hostname = node;
  m.private_ip = "10.0.1.20";
  m.serial = serial;
  m.created_at = "2026-11-22T04:56:21Z";
  m.kubernetes_version = "v1.32.3";
  m.signing_key_sha256 = std::string(64, 'b');
  m.units = {"kubelet.service"};
  ManifestEntry f;
  f.path = "/var/lib/kubelet/kubelet.crt";
  f.mode = 0600;
  f.size = 3;
  f.sha256 = std::string(64, 'c');
  f.cls = EntryClass::Secret;
  m.entries = {f};
  return m;
}

}  // namespace

TEST_CASE("previous manifests: recorded on commit, read back on open, 0600 in a 0700 directory", "[state][manifests]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  Manifest w0, w1;
  {
    auto s = State::open(dir, topology(), kNow);
    CHECK(s->previous_manifests().empty());
    w0 = manifest_for(*s, "worker-0");
    w1 = manifest_for(*s, "worker-1", 4);
    s->record_manifest(w0);
    s->record_manifest(w1);
    CHECK(!fs::exists(dir + "/manifests"));  // nothing before commit()
    s->commit();
  }
  CHECK(mode_of(dir + "/manifests") == 0700);
  CHECK(mode_of(dir + "/manifests/worker-0.json") == 0600);
  CHECK(read_file(dir + "/manifests/worker-0.json") == serialize_manifest(w0) + "\n");
  auto s = State::open(dir, topology(), kNow);
  REQUIRE(s->previous_manifests().size() == 2);
  CHECK(s->previous_manifests().at("worker-0") == w0);
  CHECK(s->previous_manifests().at("worker-1") == w1);

  // An unchanged manifest is not rewritten: a re-run leaves the state byte- and inode-identical.
  ino_t before = inode_of(dir + "/manifests/worker-0.json");
  s->record_manifest(w0);
  s->commit();
  CHECK(inode_of(dir + "/manifests/worker-0.json") == before);
}

TEST_CASE("previous manifests: a --node subset keeps the others; a dropped node's manifest goes", "[state][manifests]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  {
    auto s = State::open(dir, topology(), kNow);
    s->record_manifest(manifest_for(*s, "worker-0"));
    s->record_manifest(manifest_for(*s, "worker-1"));
    s->commit();
  }
  {
    auto s = State::open(dir, topology(), kNow);
    s->record_manifest(manifest_for(*s, "worker-1", 2));  // only worker-1 regenerated
    s->commit();
  }
  {
    auto s = State::open(dir, topology(), kNow);
    CHECK(s->previous_manifests().at("worker-0").serial == 1);
    CHECK(s->previous_manifests().at("worker-1").serial == 2);
    s->forget_node("worker-0");
    CHECK(s->previous_manifests().count("worker-0") == 0);
    CHECK(fs::exists(dir + "/manifests/worker-0.json"));  // until commit()
    s->commit();
  }
  CHECK(!fs::exists(dir + "/manifests/worker-0.json"));
  auto s = State::open(dir, topology(), kNow);
  CHECK(s->previous_manifests().size() == 1);
}

TEST_CASE("previous manifests: a crash before commit() leaves the old ones", "[state][manifests]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  Manifest old;
  {
    auto s = State::open(dir, topology(), kNow);
    old = manifest_for(*s, "worker-0");
    s->record_manifest(old);
    s->commit();
  }
  auto before = snapshot(dir);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto s = State::open(dir, topology(), kNow);
    s->record_manifest(manifest_for(*s, "worker-0", 9));
    s->forget_node("worker-0");
    s->record_manifest(manifest_for(*s, "worker-5", 9));
    ::raise(SIGKILL);  // dies before commit()
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  CHECK(snapshot(dir) == before);
  auto s = State::open(dir, topology(), kNow);
  REQUIRE(s->previous_manifests().size() == 1);
  CHECK(s->previous_manifests().at("worker-0") == old);
}

TEST_CASE("previous manifests: a damaged, foreign or misplaced file is refused naming it, state untouched",
          "[state][manifests]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  std::string good;
  {
    auto s = State::open(dir, topology(), kNow);
    s->record_manifest(manifest_for(*s, "worker-0"));
    s->commit();
    good = read_file(dir + "/manifests/worker-0.json");
  }
  const std::string path = dir + "/manifests/worker-0.json";
  auto other_id = [&] {
    auto j = nlohmann::json::parse(good);
    j["cluster_id"] = "00000000-0000-4000-8000-000000000000";
    return j.dump() + "\n";
  };
  auto other_cluster = [&] {
    auto j = nlohmann::json::parse(good);
    j["cluster_name"] = "beta";
    return j.dump() + "\n";
  };
  struct Case {
    std::string name, file, content, expect;
  };
  std::vector<Case> cases = {
      {"truncated", path, good.substr(0, good.size() / 2), "not a valid bundle manifest"},
      {"empty", path, "", "not a valid bundle manifest"},
      {"not JSON", path, "\x01\x02garbage", "not a valid bundle manifest"},
      {"non-canonical", path, nlohmann::json::parse(good).dump(2), "not a valid bundle manifest"},
      {"another cluster id", path, other_id(), "not of this state's"},
      {"another cluster", path, other_cluster(), "cluster 'beta'"},
      {"swapped between nodes", dir + "/manifests/worker-1.json", good, "node 'worker-0', not of 'worker-1'"},
      {"a stray file", dir + "/manifests/notes.txt", "hello", "only manifests/<node>.json"},
  };
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.name) {
      write_file_atomic(c.file, c.content, 0600);
      auto before = snapshot(dir);
      std::string msg = error_of([&] { State::open(dir, topology(), kNow); });
      CHECK_THAT(msg, Catch::Contains(c.file));
      CHECK_THAT(msg, Catch::Contains(c.expect));
      std::string ro = error_of([&] { State::open_read_only(dir, topology(), kNow); });
      CHECK_THAT(ro, Catch::Contains(c.file));
      CHECK(snapshot(dir) == before);
    }
  }
  // A symlink in place of a manifest is refused too (it could point anywhere).
  fs::remove(path);
  fs::create_symlink("/etc/passwd", path);
  CHECK_THAT(error_of([&] { State::open(dir, topology(), kNow); }), Catch::Contains("only manifests/<node>.json"));
}

TEST_CASE("open_read_only: reads, never writes, locks or creates; commit() throws", "[state][manifests]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  // No state yet: made in memory only, the directory is not even created.
  {
    auto s = State::open_read_only(dir, topology(), kNow);
    CHECK(s->created());
    CHECK(s->read_only());
    CHECK(s->previous_manifests().empty());
    IssuedCert c = s->leaf("worker-0", "kubelet", CaName::Kubernetes, kubelet_request("worker-0", "10.0.1.20"));
    CHECK(c.reissued);
    CHECK(s->reissued().at("worker-0/kubelet") == "new");
    CHECK(s->node_serial("worker-0", "digest") == 1);
    CHECK_THROWS_AS(s->commit(), Error);
  }
  CHECK(!fs::exists(dir));
  Manifest m;
  {
    auto s = State::open(dir, topology(), kNow);
    m = manifest_for(*s, "worker-0");
    s->record_manifest(m);
    s->leaf("worker-0", "kubelet", CaName::Kubernetes, kubelet_request("worker-0", "10.0.1.20"));
    s->commit();
  }
  auto before = snapshot(dir);
  {
    // Usable while another run holds the lock: plan reads only.
    auto writer = State::open(dir, topology(), kNow);
    auto s = State::open_read_only(dir, topology(), kNow);
    CHECK(!s->created());
    CHECK(s->previous_manifests().at("worker-0") == m);
    IssuedCert same = s->leaf("worker-0", "kubelet", CaName::Kubernetes, kubelet_request("worker-0", "10.0.1.20"));
    CHECK(!same.reissued);
    IssuedCert moved = s->leaf("worker-0", "kubelet", CaName::Kubernetes, kubelet_request("worker-0", "10.0.1.99"));
    CHECK(moved.reissued);
    CHECK(!s->reissued().at("worker-0/kubelet").empty());
    s->record_manifest(manifest_for(*s, "worker-0", 2));
    s->forget_node("worker-0");
    CHECK_THROWS_AS(s->commit(), Error);
  }
  CHECK(snapshot(dir) == before);
  // A foreign directory is refused before anything else, as open() does.
  const std::string foreign = tmp / "home";
  fs::create_directory(foreign);
  write_file_atomic(foreign + "/precious", "x", 0600);
  CHECK_THAT(error_of([&] { State::open_read_only(foreign, topology(), kNow); }), Catch::Contains("not empty"));
  // Another cluster's state.
  CHECK_THAT(error_of([&] { State::open_read_only(dir, topology("beta"), kNow); }), Catch::Contains("belongs to cluster"));
}

TEST_CASE("open_read_only refuses what only a write could finish: no pins yet, a rotation cut short", "[state][manifests]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  State::open(dir, topology(), kNow);
  nlohmann::json j = nlohmann::json::parse(read_file(dir + "/state.json"));
  j.erase("pins");
  put(dir + "/state.json", j.dump(2) + "\n");
  auto before = snapshot(dir);
  CHECK_THAT(error_of([&] { State::open_read_only(dir, topology(), kNow); }),
             Catch::Contains(dir + "/state.json: made by an older kbundle without pins; `kbundle plan` writes nothing"));
  CHECK(snapshot(dir) == before);
  State::open(dir, topology(), kNow);  // gen pins it
  put(dir + "/keys/bundle-signing.key.next", "half a rotation");
  before = snapshot(dir);
  CHECK_THAT(error_of([&] { State::open_read_only(dir, topology(), kNow); }),
             Catch::Contains(dir + "/keys/bundle-signing.key.next: an interrupted `kbundle rotate signing-key`"));
  CHECK(snapshot(dir) == before);
}
