// The rotation framework: the record and the pinned rotation files in the state, and what each
// CA phase means for trust bundles and the signing CA.
#include "generator/rotation.h"

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/temp_dir.h"
#include "generator/state.h"

using namespace kb;
namespace fs = std::filesystem;

namespace {

const std::time_t kNow = std::time(nullptr);

Topology topology() {
  Topology t;
  t.source_path = "topology.yaml";
  t.cluster.name = "alpha";
  return t;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Every file under `dir` (but the lock) and its bytes.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().filename() == ".lock") continue;
    out[e.path().string()] = read_file(e.path().string());
  }
  return out;
}

void put(const std::string& path, const std::string& content) { write_file_atomic(path, content, 0600); }

int pem_blocks(const std::string& pem) {
  int n = 0;
  for (size_t at = pem.find("-----BEGIN CERTIFICATE-----"); at != std::string::npos;
       at = pem.find("-----BEGIN CERTIFICATE-----", at + 1))
    ++n;
  return n;
}

// Starts an etcd-ca rotation the way `kbundle rotate ca` does: a new CA in two rotation files.
void start_etcd_rotation(State& s, int phase = 1) {
  CertificateAuthority ca = make_ca("etcd-ca", "etcd-ca rotated", KeyType::EcdsaP256, 3650, kNow);
  s.set_rotation_file("etcd-ca.crt", ca.cert_pem);
  s.set_rotation_file("etcd-ca.key", ca.key_pem);
  s.set_rotation({RotationKind::Ca, "etcd-ca", phase, "2026-12-03T10:00:00Z", false});
}

}  // namespace

TEST_CASE("rotation phases: counts and titles for every kind", "[rotation]") {
  CHECK(last_phase(RotationKind::Ca) == 3);
  CHECK(last_phase(RotationKind::EncryptionKey) == 4);
  CHECK(last_phase(RotationKind::ServiceAccountKey) == 3);
  for (RotationKind k : {RotationKind::Ca, RotationKind::EncryptionKey, RotationKind::ServiceAccountKey}) {
    for (int p = 1; p <= last_phase(k); ++p) CHECK_FALSE(phase_title(k, p).empty());
    CHECK_THROWS_AS(phase_title(k, 0), Error);
    CHECK_THROWS_AS(phase_title(k, last_phase(k) + 1), Error);
  }
  CHECK(rotation_kind_of("front-proxy-ca") == RotationKind::Ca);
  CHECK(rotation_kind_of("service-account-key") == RotationKind::ServiceAccountKey);
  CHECK_THAT(error_of([] { rotation_kind_of("root-ca"); }), Catch::Contains("unknown rotation \"root-ca\""));
  CHECK(ca_by_name("etcd-ca") == CaName::Etcd);
  CHECK_THAT(error_of([] { ca_by_name("etcd"); }), Catch::Contains("kubernetes-ca, etcd-ca or front-proxy-ca"));
}

TEST_CASE("rotation record and files round-trip through state.json, pinned, 0600", "[rotation][state]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  const std::string before = [&] {
    auto s = State::open(dir, topology(), kNow);
    return read_file(dir + "/state.json");
  }();
  {
    auto s = State::open(dir, topology(), kNow);
    CHECK(s->rotations().empty());
    CHECK(s->rotation("etcd-ca") == nullptr);
    start_etcd_rotation(*s);
    s->set_rotation({RotationKind::EncryptionKey, "encryption-key", 2, "2026-12-03T11:00:00Z", true});
    s->set_rotation_file("encryption-2.key", "c2VjcmV0\n");
    s->commit();
  }
  CHECK(fs::status(dir + "/rotation").permissions() == fs::perms::owner_all);
  for (const char* f : {"etcd-ca.crt", "etcd-ca.key", "encryption-2.key"})
    CHECK(fs::status(dir + "/rotation/" + f).permissions() == (fs::perms::owner_read | fs::perms::owner_write));
  nlohmann::json j = nlohmann::json::parse(read_file(dir + "/state.json"));
  CHECK(j["pins"].contains("rotation/etcd-ca.key"));
  CHECK(j["rotations"].size() == 2);
  {
    auto s = State::open(dir, topology(), kNow);
    REQUIRE(s->rotations().size() == 2);
    const Rotation* r = s->rotation("encryption-key");
    REQUIRE(r);
    CHECK(*r == Rotation{RotationKind::EncryptionKey, "encryption-key", 2, "2026-12-03T11:00:00Z", true});
    CHECK(s->rotation_file("encryption-2.key") == std::optional<std::string>("c2VjcmV0\n"));
    CHECK_FALSE(s->rotation_file("encryption-3.key"));
    REQUIRE(s->rotation_ca(CaName::Etcd));
    CHECK(s->rotation_ca(CaName::Kubernetes) == nullptr);
    CHECK_FALSE(s->rotation("etcd-ca")->generated);
    s->mark_rotations_generated();
    s->commit();
  }
  {
    auto s = State::open(dir, topology(), kNow);
    CHECK(s->rotation("etcd-ca")->generated);
    // Done: the files go, the record goes, state.json is as before the rotations.
    s->clear_rotation("etcd-ca");
    s->clear_rotation("encryption-key");
    for (const char* f : {"etcd-ca.crt", "etcd-ca.key", "encryption-2.key"}) s->remove_rotation_file(f);
    s->commit();
  }
  CHECK_FALSE(fs::exists(dir + "/rotation/etcd-ca.crt"));
  auto s = State::open(dir, topology(), kNow);
  CHECK(s->rotations().empty());
  j = nlohmann::json::parse(read_file(dir + "/state.json"));
  CHECK_FALSE(j.contains("rotations"));
  for (const auto& [rel, pin] : j["pins"].items()) CHECK(rel.rfind("rotation/", 0) != 0);
  j.erase("rotationFilesRemoved");
  CHECK(j.dump(2) + "\n" == before);
  // Names outside [a-z0-9.-]+ are refused before anything is written.
  for (const char* bad : {"../ca/etcd-ca.key", "x/y", ".hidden", "Upper", "a.key.next", ""})
    CHECK_THAT(error_of([&] { s->set_rotation_file(bad, "x"); }), Catch::Contains("is not [a-z0-9.-]+"));
  CHECK_THAT(error_of([&] { s->replace_pinned_file("issued.json", "{}"); }), Catch::Contains("not a pinned file"));
  CHECK_THAT(error_of([&] { s->set_rotation({RotationKind::Ca, "etcd-ca", 4, "", false}); }), Catch::Contains("internal error"));
}

TEST_CASE("a swapped, missing or unpinned rotation file is refused naming it, state untouched", "[rotation][state]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  {
    auto s = State::open(dir, topology(), kNow);
    start_etcd_rotation(*s);
    s->commit();
  }
  const auto good = snapshot(dir);
  auto refused = [&](const std::string& want) {
    auto before = snapshot(dir);
    CHECK_THAT(error_of([&] { State::open(dir, topology(), kNow); }), Catch::Contains(want));
    CHECK_THAT(error_of([&] { State::open_read_only(dir, topology(), kNow); }), Catch::Contains(want));
    CHECK(snapshot(dir) == before);
  };
  const std::string crt = dir + "/rotation/etcd-ca.crt", key = dir + "/rotation/etcd-ca.key";
  SECTION("swapped") {
    put(crt, make_ca("etcd-ca", "evil", KeyType::EcdsaP256, 10, kNow).cert_pem);
    refused(crt + ": damaged state: replaced or changed");
  }
  SECTION("missing") {
    fs::remove(key);
    refused(key + ": damaged state: is missing");
  }
  SECTION("extra") {
    put(dir + "/rotation/kubernetes-ca.key", "planted");
    refused(dir + "/rotation/kubernetes-ca.key: damaged state: is not pinned");
  }
  SECTION("a directory in its place") {
    fs::remove(crt);
    fs::create_directory(crt);
    refused(crt + ": damaged state: is not a regular file");
  }
  SECTION("a pin outside rotation/ names") {
    nlohmann::json j = nlohmann::json::parse(read_file(dir + "/state.json"));
    j["pins"]["rotation/../x"] = j["pins"]["rotation/etcd-ca.crt"];
    put(dir + "/state.json", j.dump(2) + "\n");
    refused("\"pins\" names an unknown file \"rotation/../x\"");
  }
  SECTION("a record without its files") {
    nlohmann::json j = nlohmann::json::parse(read_file(dir + "/state.json"));
    j["pins"].erase("rotation/etcd-ca.key");
    put(dir + "/state.json", j.dump(2) + "\n");
    fs::remove(key);
    refused("the rotation of etcd-ca is in progress, but its file " + dir + "/rotation/etcd-ca.key is not pinned");
  }
  SECTION("a malformed record") {
    for (const char* bad : {R"("x")", R"([{"kind":"ca","name":"etcd-ca"}])",
                            R"([{"kind":"ca","name":"root-ca","phase":1,"phaseStartedAt":"","generated":false}])",
                            R"([{"kind":"encryption-key","name":"etcd-ca","phase":1,"phaseStartedAt":"","generated":false}])",
                            R"([{"kind":"ca","name":"etcd-ca","phase":4,"phaseStartedAt":"","generated":false}])",
                            R"([{"kind":"ca","name":"etcd-ca","phase":1,"phaseStartedAt":"","generated":false},
                                {"kind":"ca","name":"etcd-ca","phase":2,"phaseStartedAt":"","generated":false}])"}) {
      INFO(bad);
      nlohmann::json j = nlohmann::json::parse(read_file(dir + "/state.json"));
      j["rotations"] = nlohmann::json::parse(bad);
      put(dir + "/state.json", j.dump(2) + "\n");
      refused(dir + "/state.json: damaged state: \"rotations\"");
    }
  }
  SECTION("the untouched state opens") { CHECK(snapshot(dir) == good); State::open(dir, topology(), kNow); }
}

TEST_CASE("a rotation commit cut short at any step leaves the old state or the new one", "[rotation][state]") {
  // The change under test: a CA rotation completes (the new CA replaces ca/etcd-ca.*, its rotation
  // files go, the record goes) while another rotation file is added.
  auto change = [](State& s, const std::function<void(const std::string&)>& crash_at) {
    const std::string crt = *s.rotation_file("etcd-ca.crt"), key = *s.rotation_file("etcd-ca.key");
    s.replace_pinned_file("ca/etcd-ca.crt", crt);
    s.replace_pinned_file("ca/etcd-ca.key", key);
    s.remove_rotation_file("etcd-ca.crt");
    s.remove_rotation_file("etcd-ca.key");
    s.clear_rotation("etcd-ca");
    s.set_rotation_file("encryption-2.key", "bmV3\n");
    s.commit(crash_at);
  };
  std::vector<std::string> steps;
  {
    TempDir tmp;
    auto s = State::open(tmp / "state", topology(), kNow);
    start_etcd_rotation(*s);
    s->commit();
    change(*s, [&](const std::string& st) { steps.push_back(st); });
  }
  REQUIRE(steps.size() == 9);  // 3 ".next" writes, state.json, 3 renames, 2 removals
  for (const auto& stop : steps) {
    DYNAMIC_SECTION("crash " << stop) {
      TempDir tmp;
      const std::string dir = tmp / "state";
      std::string old_ca, new_ca;
      {
        auto s = State::open(dir, topology(), kNow);
        old_ca = s->ca(CaName::Etcd).cert_pem;
        start_etcd_rotation(*s);
        s->commit();
        new_ca = *s->rotation_file("etcd-ca.crt");
        // A real crash (SIGKILL) in a child working on the parent's open State.
        pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
          change(*s, [&](const std::string& st) {
            if (st == stop) ::kill(::getpid(), SIGKILL);
          });
          ::_exit(0);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        REQUIRE(WIFSIGNALED(status));
      }
      const bool committed = stop.rfind("after-next-", 0) != 0;
      // plan refuses a commit cut short between its commit point and its renames (it may not finish it).
      if (committed && stop.rfind("after-remove-", 0) != 0 && stop != "after-rename-rotation/encryption-2.key")
        CHECK_THAT(error_of([&] { State::open_read_only(dir, topology(), kNow); }),
                   Catch::Contains("is not finished; `kbundle plan` writes nothing"));
      auto s = State::open(dir, topology(), kNow);
      CHECK(s->ca(CaName::Etcd).cert_pem == (committed ? new_ca : old_ca));
      CHECK((s->rotation("etcd-ca") == nullptr) == committed);
      CHECK(s->rotation_file("etcd-ca.crt").has_value() == !committed);
      CHECK(fs::exists(dir + "/rotation/etcd-ca.crt") == !committed);
      CHECK(s->rotation_file("encryption-2.key").has_value() == committed);
      for (const auto& e : fs::recursive_directory_iterator(dir))
        CHECK(e.path().string().find(".next") == std::string::npos);
      // And it goes on from there: plan and another open see the same.
      State::open_read_only(dir, topology(), kNow);
    }
  }
}

TEST_CASE("CA phases: trust bundle and signing CA; leaves follow the signing CA", "[rotation]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  CertRequest req;
  req.common_name = "kube-apiserver-etcd-client";
  req.client_auth = true;
  std::string old_ca, new_ca;
  IssuedCert before;
  {
    auto s = State::open(dir, topology(), kNow);
    old_ca = s->ca(CaName::Etcd).cert_pem;
    before = s->leaf("control-0", "apiserver-etcd-client", CaName::Etcd, req);
    // No rotation: exactly the CA, today's output.
    CHECK(trust_bundle(*s, CaName::Etcd) == old_ca);
    CHECK(&signing_ca(*s, CaName::Etcd) == &s->ca(CaName::Etcd));
    start_etcd_rotation(*s, 1);
    s->commit();
  }
  {
    auto s = State::open(dir, topology(), kNow);
    new_ca = *s->rotation_file("etcd-ca.crt");
    CHECK(trust_bundle(*s, CaName::Etcd) == old_ca + new_ca);
    CHECK(pem_blocks(trust_bundle(*s, CaName::Etcd)) == 2);
    CHECK(trust_bundle(*s, CaName::Kubernetes) == s->ca(CaName::Kubernetes).cert_pem);
    CHECK(&signing_ca(*s, CaName::Etcd) == &s->ca(CaName::Etcd));
    CHECK_FALSE(s->leaf("control-0", "apiserver-etcd-client", CaName::Etcd, req).reissued);
    s->set_rotation({RotationKind::Ca, "etcd-ca", 2, "2026-12-03T11:00:00Z", false});
    s->commit();
  }
  {
    auto s = State::open(dir, topology(), kNow);
    CHECK(trust_bundle(*s, CaName::Etcd) == old_ca + new_ca);
    CHECK(signing_ca(*s, CaName::Etcd).cert_pem == new_ca);
    CHECK(signing_ca(*s, CaName::Etcd).name == "etcd-ca");
    IssuedCert after = s->leaf("control-0", "apiserver-etcd-client", CaName::Etcd, req);
    CHECK(after.reissued);
    CHECK(after.reason == "CA rotation: etcd-ca phase 2");
    CHECK(after.cert_pem != before.cert_pem);
    s->set_rotation({RotationKind::Ca, "etcd-ca", 3, "2026-12-03T12:00:00Z", false});
    CHECK(trust_bundle(*s, CaName::Etcd) == new_ca);
    CHECK(signing_ca(*s, CaName::Etcd).cert_pem == new_ca);
    s->commit();
  }
  // Phase 3 keeps the leaves the new CA issued.
  auto s = State::open(dir, topology(), kNow);
  CHECK_FALSE(s->leaf("control-0", "apiserver-etcd-client", CaName::Etcd, req).reissued);
}
