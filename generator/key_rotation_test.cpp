// Encryption-key and service-account-key rotation (generator/key_rotation.h): what each phase ships,
// the records kept in the state, and every refusal of `kbundle rotate` (nothing changed then).
#include "generator/key_rotation.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <openssl/evp.h>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/hash.h"
#include "base/temp_dir.h"
#include "generator/encryption_config.h"
#include "generator/pki.h"
#include "generator/rotation.h"
#include "generator/state.h"

using namespace kb;
namespace fs = std::filesystem;

namespace {

const std::time_t kNow = 1796000000;  // 2026-11-30

Topology topology(EncryptionProvider p = EncryptionProvider::Aescbc) {
  Topology t;
  t.source_path = "topology.yaml";
  t.cluster.name = "alpha";
  t.cluster.encryption_provider = p;
  return t;
}

std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != ".lock") out[e.path().string()] = read_file(e.path().string());
  return out;
}

std::vector<std::string> names(const std::vector<EncryptionKey>& keys) {
  std::vector<std::string> out;
  for (const auto& k : keys) out.push_back(std::string(to_string(k.provider)) + ":" + k.name);
  return out;
}

// A gen: the phase's output is written (generated = true) and committed.
void gen(const std::string& dir, const Topology& t, std::time_t now = kNow) {
  auto s = State::open(dir, t, now);
  record_encryption_key_in_use(*s, t);
  s->mark_rotations_generated();
  s->commit();
}

template <class F>
void step(const std::string& dir, const Topology& t, F f, std::time_t now = kNow) {
  auto s = State::open(dir, t, now);
  f(*s);
  s->commit();
}

std::string refusal(const std::string& dir, const Topology& t, const std::function<void(State&)>& f, std::time_t now = kNow) {
  auto before = snapshot(dir);
  auto s = State::open(dir, t, now);
  try {
    f(*s);
  } catch (const RotationRefused& r) {
    s.reset();
    CHECK(snapshot(dir) == before);
    return r.message;
  }
  return "";
}

std::string strip(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

bool verifies(const std::string& pub_pem, const std::string& priv_pem) {
  PkeyPtr priv = parse_private_key(priv_pem, "priv");
  PkeyPtr pub = parse_public_key(pub_pem, "pub");
  const std::string msg = "{\"sub\":\"system:serviceaccount:default:app\"}";
  unsigned char sig[1024];
  size_t len = sizeof sig;
  EVP_MD_CTX* c = EVP_MD_CTX_new();
  REQUIRE(EVP_DigestSignInit(c, nullptr, EVP_sha256(), nullptr, priv.get()) == 1);
  REQUIRE(EVP_DigestSign(c, sig, &len, reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) == 1);
  EVP_MD_CTX_free(c);
  c = EVP_MD_CTX_new();
  REQUIRE(EVP_DigestVerifyInit(c, nullptr, EVP_sha256(), nullptr, pub.get()) == 1);
  int ok = EVP_DigestVerify(c, sig, len, reinterpret_cast<const unsigned char*>(msg.data()), msg.size());
  EVP_MD_CTX_free(c);
  return ok == 1;
}

// A token of `priv` verifies against one of `pubs`, as kube-apiserver tries each verifying key.
bool any_verifies(const std::vector<std::string>& pubs, const std::string& priv) {
  for (const auto& p : pubs)
    if (verifies(p, priv)) return true;
  return false;
}

}  // namespace

TEST_CASE("the encryption config of one key is byte-identical to the one before rotations existed", "[key-rotation]") {
  const std::string key = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=";
  CHECK(render_encryption_config({{"key1", EncryptionProvider::Aescbc, key}}) ==
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources:\n"
        "      - secrets\n    providers:\n      - aescbc:\n          keys:\n            - name: key1\n"
        "              secret: " + key + "\n      - identity: {}\n");
  // Two keys of one provider share its entry; another provider gets its own; identity stays last.
  std::string two = render_encryption_config({{"key2", EncryptionProvider::Aescbc, "A"}, {"key1", EncryptionProvider::Aescbc, "B"}});
  CHECK(two.find("- aescbc:") == two.rfind("- aescbc:"));
  CHECK(two.find("name: key2") < two.find("name: key1"));
  std::string mixed = render_encryption_config({{"key3", EncryptionProvider::Secretbox, "A"}, {"key2", EncryptionProvider::Aescbc, "B"}});
  CHECK(mixed.find("- secretbox:") < mixed.find("- aescbc:"));
  CHECK(mixed.rfind("      - identity: {}\n") == mixed.size() - 21);
  CHECK_THROWS_WITH(render_encryption_config({{"key1", EncryptionProvider::Aescbc, "A"}, {"key1", EncryptionProvider::Secretbox, "B"}}),
                    Catch::Contains("key1 twice"));
  CHECK_THROWS(render_encryption_config({}));
}

TEST_CASE("encryption-key rotation: each phase's keys, then the new key is the state's", "[key-rotation]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  const Topology t = topology();
  gen(dir, t);
  const std::string old_key = strip(read_file(dir + "/keys/encryption.key"));
  CHECK(read_file(dir + "/rotation/encryption.json") == "{\"name\":\"key1\",\"provider\":\"aescbc\"}\n");
  {
    auto s = State::open(dir, t, kNow);
    CHECK(names(encryption_keys(*s, t)) == std::vector<std::string>{"aescbc:key1"});
    CHECK(encryption_keys(*s, t)[0].secret_base64 == old_key);
  }
  step(dir, t, [&](State& s) { CHECK(start_key_rotation(s, t, "encryption-key", kNow).entered.rfind("phase 1/4", 0) == 0); });
  std::string new_key;
  {
    auto s = State::open(dir, t, kNow);
    auto keys = encryption_keys(*s, t);
    CHECK(names(keys) == std::vector<std::string>{"aescbc:key1", "aescbc:key2"});
    new_key = keys[1].secret_base64;
    CHECK(base64_decode(new_key)->size() == 32);
    CHECK(new_key != old_key);
    CHECK(render_reencrypt_request(*s, t).empty());
  }
  const std::vector<std::vector<std::string>> want = {{"aescbc:key2", "aescbc:key1"}, {"aescbc:key2", "aescbc:key1"}, {"aescbc:key2"}};
  for (int phase = 2; phase <= 4; ++phase) {
    INFO(phase);
    gen(dir, t);
    step(dir, t, [&](State& s) { advance_key_rotation(s, t, "encryption-key", kNow, false); });
    auto s = State::open(dir, t, kNow);
    CHECK(s->rotation("encryption-key")->phase == phase);
    CHECK(names(encryption_keys(*s, t)) == want[phase - 2]);
    CHECK(encryption_keys(*s, t)[0].secret_base64 == new_key);  // the new key writes from phase 2 on
    CHECK(render_reencrypt_request(*s, t).empty() == (phase != 3));
  }
  gen(dir, t);
  step(dir, t, [&](State& s) { CHECK(advance_key_rotation(s, t, "encryption-key", kNow, false).entered == "completed"); });
  auto s = State::open(dir, t, kNow);
  CHECK(s->rotation("encryption-key") == nullptr);
  CHECK(!s->rotation_file("encryption-new.json"));
  CHECK(strip(read_file(dir + "/keys/encryption.key")) == new_key);
  CHECK(names(encryption_keys(*s, t)) == std::vector<std::string>{"aescbc:key2"});
  CHECK(encryption_keys(*s, t)[0].secret_base64 == new_key);
}

TEST_CASE("a provider change needs a rotation; the rotation adds the new provider beside the old one", "[key-rotation]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  gen(dir, topology());
  const Topology sb = topology(EncryptionProvider::Secretbox);
  {
    auto s = State::open(dir, sb, kNow);
    std::string p = encryption_provider_problem(*s, sb);
    CHECK_THAT(p, Catch::StartsWith("topology.yaml: cluster.encryption.provider: secretbox, but the Secrets are encrypted with aescbc (key key1"));
    CHECK_THAT(p, Catch::Contains("kbundle rotate encryption-key"));
    CHECK_THROWS_WITH(encryption_keys(*s, sb), Catch::Contains("cluster.encryption.provider"));
  }
  step(dir, sb, [&](State& s) { start_key_rotation(s, sb, "encryption-key", kNow); });
  {
    auto s = State::open(dir, sb, kNow);
    CHECK(encryption_provider_problem(*s, sb).empty());
    CHECK(names(encryption_keys(*s, sb)) == std::vector<std::string>{"aescbc:key1", "secretbox:key2"});
    // Back to aescbc mid-rotation: refused, naming the abort in phase 1.
    CHECK_THAT(encryption_provider_problem(*s, topology()), Catch::Contains("switches to secretbox") && Catch::Contains("--abort"));
  }
  gen(dir, sb);
  CHECK_THAT(refusal(dir, topology(), [&](State& s) { advance_key_rotation(s, topology(), "encryption-key", kNow, false); }),
             Catch::Contains("switches to secretbox"));
  step(dir, sb, [&](State& s) { advance_key_rotation(s, sb, "encryption-key", kNow, false); });
  auto s = State::open(dir, sb, kNow);
  CHECK(names(encryption_keys(*s, sb)) == std::vector<std::string>{"secretbox:key2", "aescbc:key1"});
}

TEST_CASE("a state made before the key record: the first gen records the topology's provider", "[key-rotation]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  { State::open(dir, topology(), kNow)->commit(); }  // an older kbundle's gen: no record
  {
    auto s = State::open(dir, topology(EncryptionProvider::Aesgcm), kNow);
    CHECK(encryption_provider_problem(*s, topology(EncryptionProvider::Aesgcm)).empty());  // nothing to compare with yet
  }
  gen(dir, topology());
  auto s = State::open(dir, topology(EncryptionProvider::Aesgcm), kNow);
  CHECK_THAT(encryption_provider_problem(*s, topology(EncryptionProvider::Aesgcm)), Catch::Contains("encrypted with aescbc"));
}

TEST_CASE("rotate refuses, changing nothing: advance before gen, abort after phase 1, a second start, none in progress",
          "[key-rotation]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  const Topology t = topology();
  gen(dir, t);
  for (const std::string kind : {"encryption-key", "service-account-key"}) {
    INFO(kind);
    CHECK_THAT(refusal(dir, t, [&](State& s) { advance_key_rotation(s, t, kind, kNow, false); }), Catch::Contains("no " + kind + " rotation in progress"));
    CHECK_THAT(refusal(dir, t, [&](State& s) { abort_key_rotation(s, kind); }), Catch::Contains("nothing to abort"));
    step(dir, t, [&](State& s) { start_key_rotation(s, t, kind, kNow); });
    CHECK_THAT(refusal(dir, t, [&](State& s) { start_key_rotation(s, t, kind, kNow); }), Catch::Contains("already in progress (phase 1/"));
    CHECK_THAT(refusal(dir, t, [&](State& s) { advance_key_rotation(s, t, kind, kNow, false); }),
               Catch::Contains("phase 1/") && Catch::Contains("was not generated yet; run `kbundle gen`"));
    // Abort in phase 1 drops the new key; a new start makes another.
    step(dir, t, [&](State& s) { CHECK(abort_key_rotation(s, kind).entered == "aborted"); });
    CHECK(fs::is_empty(dir + "/rotation") == false);  // encryption.json stays
    step(dir, t, [&](State& s) { start_key_rotation(s, t, kind, kNow); });
    gen(dir, t);
    step(dir, t, [&](State& s) { advance_key_rotation(s, t, kind, kNow, false); });
    CHECK_THAT(refusal(dir, t, [&](State& s) { abort_key_rotation(s, kind); }), Catch::Contains("phase 2") && Catch::Contains("--advance"));
  }
}

TEST_CASE("service-account-key rotation: verifying keys and signer per phase; old tokens verify until phase 3",
          "[key-rotation]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  const Topology t = topology();
  gen(dir, t);
  std::string old_priv, old_pub;
  {
    auto s = State::open(dir, t, kNow);
    ServiceAccountKeys k = service_account_keys(*s);
    old_priv = k.signing_key_pem;
    old_pub = k.public_pems.at(0);
    CHECK(k.public_pems.size() == 1);
    CHECK(k.signing_key_pem == s->service_account_key_pem());
    CHECK(service_account_public_file(k) == s->service_account_public_pem());  // byte-identical without rotation
  }
  step(dir, t, [&](State& s) { start_key_rotation(s, t, "service-account-key", kNow); });
  std::string new_priv;
  {
    auto s = State::open(dir, t, kNow);
    ServiceAccountKeys k = service_account_keys(*s);
    CHECK(k.signing_key_pem == old_priv);
    REQUIRE(k.public_pems.size() == 2);
    new_priv = *s->rotation_file("service-account-new.key");
    CHECK(fs::status(dir + "/rotation/service-account-new.key").permissions() == (fs::perms::owner_read | fs::perms::owner_write));
    CHECK(any_verifies(k.public_pems, old_priv));
    CHECK(any_verifies(k.public_pems, new_priv));  // a phase-1 apiserver verifies the phase-2 signer's tokens
    CHECK(service_account_public_file(k) == k.public_pems[0] + k.public_pems[1]);
  }
  gen(dir, t);
  const std::time_t phase2 = kNow + 60;
  step(dir, t, [&](State& s) { advance_key_rotation(s, t, "service-account-key", phase2, false); }, phase2);
  {
    auto s = State::open(dir, t, phase2);
    ServiceAccountKeys k = service_account_keys(*s);
    CHECK(k.signing_key_pem == new_priv);
    REQUIRE(k.public_pems.size() == 2);
    CHECK(verifies(k.public_pems[0], new_priv));  // [0] is the signer's
    CHECK(any_verifies(k.public_pems, old_priv));  // a token of the old key still verifies in phase 2
  }
  gen(dir, t, phase2);
  // Too early: refused with the time left; --force goes on with a warning.
  const int64_t wait = service_account_token_wait_seconds();
  CHECK(wait == 25 * 3600);
  CHECK_THAT(refusal(dir, t, [&](State& s) { advance_key_rotation(s, t, "service-account-key", phase2 + wait - 120, false); }, phase2 + wait - 120),
             Catch::Contains("tokens signed by the old service-account key may still be in use") && Catch::Contains("2 min left") &&
                 Catch::Contains("--force"));
  step(dir, t, [&](State& s) {
    KeyRotationStep st = advance_key_rotation(s, t, "service-account-key", phase2 + 10, true);
    REQUIRE(st.notes.size() == 1);
    CHECK_THAT(st.notes[0], Catch::StartsWith("warning: --force"));
  }, phase2 + 10);
  {
    auto s = State::open(dir, t, phase2 + 10);
    ServiceAccountKeys k = service_account_keys(*s);
    CHECK(k.public_pems.size() == 1);
    CHECK(!any_verifies(k.public_pems, old_priv));
    CHECK(any_verifies(k.public_pems, new_priv));
  }
  gen(dir, t, phase2 + 10);
  step(dir, t, [&](State& s) { CHECK(advance_key_rotation(s, t, "service-account-key", phase2 + 20, false).entered == "completed"); }, phase2 + 20);
  auto s = State::open(dir, t, phase2 + 20);
  CHECK(s->service_account_key_pem() == new_priv);
  CHECK(verifies(s->service_account_public_pem(), new_priv));
  CHECK(!s->rotation_file("service-account-new.key"));
}

TEST_CASE("the SA wait is measured from phase 2's start: advancing after it needs no --force", "[key-rotation]") {
  TempDir tmp;
  const std::string dir = tmp / "state";
  const Topology t = topology();
  gen(dir, t);
  step(dir, t, [&](State& s) { start_key_rotation(s, t, "service-account-key", kNow); });
  gen(dir, t);
  step(dir, t, [&](State& s) { advance_key_rotation(s, t, "service-account-key", kNow, false); });
  gen(dir, t);
  const std::time_t later = kNow + service_account_token_wait_seconds();
  step(dir, t, [&](State& s) { CHECK(advance_key_rotation(s, t, "service-account-key", later, false).notes.empty()); }, later);
  CHECK(State::open(dir, t, later)->rotation("service-account-key")->phase == 3);
}

TEST_CASE("a damaged key record is refused naming it, never written into the config", "[key-rotation]") {
  const Topology t = topology();
  for (const std::string& bad : {std::string("not json"), std::string("[1]"), std::string("{\"provider\":\"aescbc\"}"),
                                std::string("{\"provider\":\"rot13\",\"name\":\"key1\"}"),
                                std::string("{\"provider\":\"aescbc\",\"name\":\"key1\\n      - identity: {}\"}"),
                                std::string("{\"provider\":\"aescbc\",\"name\":\"") + std::string(40, 'k') + "\"}",
                                std::string("{\"provider\":\"aescbc\",\"name\":7}")}) {
    INFO(bad);
    TempDir tmp;
    const std::string dir = tmp / "state";
    step(dir, t, [&](State& s) { s.set_rotation_file("encryption.json", bad); });
    auto s = State::open(dir, t, kNow);
    CHECK_THROWS_WITH(encryption_keys(*s, t), Catch::Contains("rotation/encryption.json: not a key record"));
    CHECK_THROWS_WITH(encryption_provider_problem(*s, t), Catch::Contains("restore the state from a backup"));
  }
}
