// Signing-key rollover on a node (docs/trust.md): the pin, the chain walk, the re-pin with the
// commit, and a crash at every fault point of a rollover apply.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include "bundles/rollover.h"
#include "installer/installer_test_util.h"
#include "installer/layout.h"
#include "installer/trust.h"

using namespace kb;
using namespace kb::installer;
using namespace kb::installer::test;

namespace {

const std::string kState = "var/lib/kbundle";

// K0 -> K1 -> K2, and a stranger.
struct Keys {
  KeyPairPem k[3] = {generate_signing_key(), generate_signing_key(), generate_signing_key()};
  KeyPairPem evil = generate_signing_key();
  RolloverStatement s1 = sign_rollover(SigningKey(k[0].private_pem), k[1].public_pem, 1, "2026-12-03T10:00:00Z");
  RolloverStatement s2 = sign_rollover(SigningKey(k[1].private_pem), k[2].public_pem, 2, "2026-12-03T11:00:00Z");
  std::string fp(int i) const { return VerifyKey(k[i].public_pem).fingerprint(); }
};
const Keys& keys() {
  static const Keys ks;
  return ks;
}

// A small bundle of `serial` signed by `key` with `chain` (variant changes a file).
std::string make_bundle(const TempDir& tmp, uint64_t serial, const KeyPairPem& key, const RolloverChain& chain) {
  using kb::test::meta;
  std::string path = tmp / ("b" + std::to_string(serial) + "-" + VerifyKey(key.public_pem).fingerprint().substr(0, 8) + "-" +
                            std::to_string(chain.size()) + ".kbundle");
  BundleWriter w(header(serial));
  w.add_directory("/var/lib/kubernetes", 0700);
  w.add_file(meta("/etc/systemd/system/etcd.service", 0644, EntryClass::Unit), "[Unit]\nDescription=etcd\n");
  w.add_file(meta("/var/lib/kubernetes/config.yaml", 0600, EntryClass::Config), "serial: " + std::to_string(serial) + "\n");
  w.set_rollover(chain);
  w.write(path, SigningKey(key.private_pem));
  return path;
}

struct Pin {
  std::string fingerprint;
  uint64_t serial = 0;
};
// What the node trusts now, read the way the installer reads it.
std::optional<Pin> pin_of(const std::string& root) {
  auto t = read_pin(Layout(root));
  if (!t) return std::nullopt;
  return Pin{t->fingerprint, *t->rollover_serial};
}

Result status_of(const std::string& root) {
  return run([](const Options& o, const Hooks& h, Io io) { return status(o, h, io); }, options(root));
}

std::string trust_key_file(const TempDir& tmp, int i) { return trust_file(tmp, keys().k[i], "k" + std::to_string(i) + ".pub"); }

}  // namespace

TEST_CASE("rollover: K0 applied, K1 through its statement, K0 refused after, K2 on a node still at K0", "[trust]") {
  const Keys& ks = keys();
  TempDir tmp;
  std::string a = make_root(tmp, "a"), b = make_root(tmp, "b");
  std::string b1 = make_bundle(tmp, 1, ks.k[0], {});
  std::string b2 = make_bundle(tmp, 2, ks.k[1], {ks.s1});
  std::string b3old = make_bundle(tmp, 3, ks.k[0], {});
  std::string b4 = make_bundle(tmp, 4, ks.k[2], {ks.s1, ks.s2});

  REQUIRE(apply_bundle(options(a, trust_key_file(tmp, 0)), b1).code == ExitCode::Ok);
  REQUIRE(apply_bundle(options(b, trust_key_file(tmp, 0)), b1).code == ExitCode::Ok);
  CHECK(pin_of(a)->fingerprint == ks.fp(0));
  CHECK(pin_of(a)->serial == 0);
  CHECK(mode_of(a + "/etc/kbundle/trust.json") == 0644);
  CHECK_FALSE(std::filesystem::exists(a + "/etc/kbundle/trust.pub"));
  CHECK_THAT(status_of(a).out, Catch::Contains("pinned signing key sha256:" + ks.fp(0) + ", rollover serial 0"));

  // K1 through statement 1: applied, and the pin moves with the commit.
  auto r = apply_bundle(options(a), b2);
  REQUIRE(r.code == ExitCode::Ok);
  CHECK_THAT(r.out, Catch::Contains("pinned signing key sha256:" + ks.fp(1) + " (rollover serial 1)"));
  CHECK(pin_of(a)->fingerprint == ks.fp(1));
  CHECK(pin_of(a)->serial == 1);
  CHECK_THAT(status_of(a).out, Catch::Contains("rollover serial 1"));

  // The old key is refused now, with a higher serial and all; the message names the pin.
  auto before = snapshot(a);
  r = apply_bundle(options(a), b3old);
  CHECK(r.code == ExitCode::BadBundle);
  CHECK_THAT(r.err, Catch::Contains("bad-signature") && Catch::Contains("This node pins sha256:" + ks.fp(1) + " at rollover serial 1"));
  CHECK(snapshot(a) == before);
  // And --trust-key cannot bring it back.
  CHECK(apply_bundle(options(a, trust_key_file(tmp, 0)), b3old).code == ExitCode::BadBundle);

  // Rotated again: K2 applies on the node at K1 (one statement) and on the node still at K0 (two).
  REQUIRE(apply_bundle(options(a), b4).code == ExitCode::Ok);
  r = apply_bundle(options(b), b4);
  REQUIRE(r.code == ExitCode::Ok);
  for (const auto& root : {a, b}) {
    CHECK(pin_of(root)->fingerprint == ks.fp(2));
    CHECK(pin_of(root)->serial == 2);
  }
  auto v = run([&](const Options& o, const Hooks& h, Io io) { return verify(o, h, io, b4); }, options(b));
  CHECK(v.code == ExitCode::Ok);
  CHECK(run([&](const Options& o, const Hooks& h, Io io) { return verify(o, h, io, b2); }, options(b)).code == ExitCode::BadBundle);
}

TEST_CASE("rollover refusals: forged, replayed, a gap, another old key, a new key without a chain, a damaged pin", "[trust]") {
  const Keys& ks = keys();
  TempDir tmp;
  // A stranger's statement dressed as K0's, another history (evil -> K1), a statement K0 -> evil
  // with the serial a K2 node already has.
  RolloverStatement forged = sign_rollover(SigningKey(ks.evil.private_pem), ks.k[1].public_pem, 1, "2026-12-03T10:00:00Z");
  forged.old_key_sha256 = ks.fp(0);
  RolloverStatement other_history = sign_rollover(SigningKey(ks.evil.private_pem), ks.k[1].public_pem, 1, "2026-12-03T10:00:00Z");
  struct Case {
    const char* what;
    int pinned;  // the node is at K<pinned> (serial = pinned)
    std::string bundle;
    const char* refusal;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"forged statement (signed by a non-pinned key)", 0, make_bundle(tmp, 5, ks.k[1], {forged}), "untrusted-rollover",
       "a forged statement"},
      {"replayed older statement (serial <= pinned serial)", 2, make_bundle(tmp, 6, ks.k[1], {ks.s1}), "bad-signature",
       "This node pins sha256:"},
      {"a chain with a gap (statement 2 only, node at 0)", 0, make_bundle(tmp, 7, ks.k[2], {ks.s2}), "untrusted-rollover",
       "misses serial 1"},
      {"a statement for a different old key", 0, make_bundle(tmp, 8, ks.k[1], {other_history}), "untrusted-rollover",
       "is for old key sha256:"},
      {"the new key without a chain", 0, make_bundle(tmp, 9, ks.k[1], {}), "bad-signature", "must carry the rollover chain"},
      {"a stranger's key", 1, make_bundle(tmp, 10, ks.evil, {}), "bad-signature", "This node pins sha256:"},
  };
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.what) {
      std::string root = make_root(tmp, std::string("r-") + std::to_string(c.pinned) + "-" + std::to_string(std::hash<std::string>{}(c.what)));
      REQUIRE(apply_bundle(options(root, trust_key_file(tmp, 0)), make_bundle(tmp, 1, ks.k[0], {})).code == ExitCode::Ok);
      if (c.pinned >= 1) REQUIRE(apply_bundle(options(root), make_bundle(tmp, 2, ks.k[1], {ks.s1})).code == ExitCode::Ok);
      if (c.pinned >= 2) REQUIRE(apply_bundle(options(root), make_bundle(tmp, 3, ks.k[2], {ks.s1, ks.s2})).code == ExitCode::Ok);
      auto before = snapshot(root);
      auto r = apply_bundle(options(root), c.bundle);
      CHECK(r.code == ExitCode::BadBundle);
      CHECK_THAT(r.err, Catch::Contains(c.refusal) && Catch::Contains(c.says));
      CHECK(snapshot(root) == before);
      CHECK(pin_of(root)->fingerprint == ks.fp(c.pinned));
    }
  }
  SECTION("a damaged or swapped pin file") {
    std::string root = make_root(tmp, "damaged");
    REQUIRE(apply_bundle(options(root, trust_key_file(tmp, 0)), make_bundle(tmp, 1, ks.k[0], {})).code == ExitCode::Ok);
    std::string pin = root + "/etc/kbundle/trust.json";
    nlohmann::json j = nlohmann::json::parse(read_file(pin));
    for (auto edit : std::vector<std::function<void(nlohmann::json&)>>{
             [](nlohmann::json& x) { x["fingerprint"] = std::string(64, 'a'); },
             [](nlohmann::json& x) { x["rollover_serial"] = -1; },
             [](nlohmann::json& x) { x["extra"] = 1; },
             [](nlohmann::json& x) { x["public_key"] = "junk"; }}) {
      nlohmann::json x = j;
      edit(x);
      write_file_atomic(pin, x.dump(), 0644);
      auto r = apply_bundle(options(root), make_bundle(tmp, 2, ks.k[0], {}));
      CHECK(r.code == ExitCode::BadBundle);
      CHECK_THAT(r.err, Catch::Contains(pin + ": damaged pin"));
    }
  }
}

TEST_CASE("a node never installed: the new key, or an older one the chain starts from, pins the newest", "[trust]") {
  const Keys& ks = keys();
  TempDir tmp;
  std::string b = make_bundle(tmp, 1, ks.k[2], {ks.s1, ks.s2});
  for (int given : {0, 1, 2}) {
    std::string root = make_root(tmp, "fresh" + std::to_string(given));
    REQUIRE(apply_bundle(options(root, trust_key_file(tmp, given)), b).code == ExitCode::Ok);
    CHECK(pin_of(root)->fingerprint == ks.fp(2));
    CHECK(pin_of(root)->serial == 2);
  }
  std::string root = make_root(tmp, "stranger");
  CHECK(apply_bundle(options(root, trust_file(tmp, ks.evil, "evil.pub")), b).code == ExitCode::BadBundle);
  CHECK_FALSE(pin_of(root));
}

TEST_CASE("a node pinned by an older installer (trust.pub only) follows a rollover; trust.pub goes", "[trust]") {
  const Keys& ks = keys();
  TempDir tmp;
  std::string root = make_root(tmp);
  REQUIRE(apply_bundle(options(root, trust_key_file(tmp, 0)), make_bundle(tmp, 1, ks.k[0], {})).code == ExitCode::Ok);
  std::filesystem::remove(root + "/etc/kbundle/trust.json");
  write_file_atomic(root + "/etc/kbundle/trust.pub", ks.k[0].public_pem, 0644);
  CHECK(pin_of(root)->fingerprint == ks.fp(0));
  CHECK(apply_bundle(options(root), make_bundle(tmp, 2, ks.k[0], {})).code == ExitCode::Ok);
  CHECK(std::filesystem::exists(root + "/etc/kbundle/trust.pub"));  // nothing to re-pin: left as it is
  REQUIRE(apply_bundle(options(root), make_bundle(tmp, 3, ks.k[1], {ks.s1})).code == ExitCode::Ok);
  CHECK(pin_of(root)->fingerprint == ks.fp(1));
  CHECK_FALSE(std::filesystem::exists(root + "/etc/kbundle/trust.pub"));
}

namespace {

// Runs apply in a child process with the given fault hooks (a real SIGKILL at `kill_at`);
// returns the child's stderr.
std::string apply_in_child(const std::string& root, const std::string& bundle, const FaultPoints& faults, int* status) {
  std::string errfile = root + ".stderr";
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int fd = ::open(errfile.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 2);
    Hooks hooks;
    hooks.make_services = [](bool) { return make_null_manager(nullptr); };
    hooks.faults = faults;
    std::ostringstream out, err;
    ExitCode c = apply(options(root), hooks, Io{out, err}, bundle);
    std::fflush(nullptr);
    ::_exit(static_cast<int>(c));
  }
  ::waitpid(pid, status, 0);
  std::string e = read_file(errfile);
  std::filesystem::remove(errfile);
  return e;
}

}  // namespace

TEST_CASE("a crash at every fault point of a rollover apply leaves exactly one pinned key, matching the generation", "[trust][crash]") {
  const Keys& ks = keys();
  TempDir tmp;
  std::string b1 = make_bundle(tmp, 1, ks.k[0], {});
  std::string b2 = make_bundle(tmp, 2, ks.k[1], {ks.s1});
  // The points a rollover apply passes, in order.
  std::vector<std::string> points;
  {
    std::string root = make_root(tmp, "list");
    REQUIRE(apply_bundle(options(root, trust_key_file(tmp, 0)), b1).code == ExitCode::Ok);
    FaultPoints list;
    list.list = true;
    int st = 0;
    std::istringstream lines(apply_in_child(root, b2, list, &st));
    REQUIRE(WIFEXITED(st));
    REQUIRE(WEXITSTATUS(st) == 0);
    for (std::string line; std::getline(lines, line);)
      if (line.rfind("kb-fault-point: ", 0) == 0) points.push_back(line.substr(16));
  }
  REQUIRE(std::find(points.begin(), points.end(), "after-commit-pin") != points.end());
  REQUIRE(points.size() >= 8);
  for (const auto& point : points) {
    DYNAMIC_SECTION("killed " << point) {
      std::string root = make_root(tmp, "crash-" + point);
      REQUIRE(apply_bundle(options(root, trust_key_file(tmp, 0)), b1).code == ExitCode::Ok);
      FaultPoints kill;
      kill.kill_at = point;
      int st = 0;
      apply_in_child(root, b2, kill, &st);
      REQUIRE(WIFSIGNALED(st));
      // Before recovery: one pin, whichever it is (trust.json wins over a leftover trust.pub).
      REQUIRE(pin_of(root));
      auto r = run([](const Options& o, const Hooks& h, Io io) { return recover(o, h, io); }, options(root));
      REQUIRE(r.code == ExitCode::Ok);
      // After: exactly one pin file, and it is the key that signed the installed generation.
      CHECK_FALSE(std::filesystem::exists(root + "/etc/kbundle/trust.pub"));
      auto pin = pin_of(root);
      REQUIRE(pin);
      auto installed = parse_manifest(read_file(Layout(root).current() + "/manifest.json"));
      CHECK(installed.signing_key_sha256 == pin->fingerprint);
      CHECK(pin->serial == (installed.serial == 2 ? 1u : 0u));
      // And the node goes on: the rollover bundle applies (or is already there), K0 is refused after.
      CHECK(apply_bundle(options(root), b2).code == ExitCode::Ok);
      CHECK(pin_of(root)->fingerprint == ks.fp(1));
      CHECK(apply_bundle(options(root), make_bundle(tmp, 3, ks.k[0], {})).code == ExitCode::BadBundle);
    }
  }
}
