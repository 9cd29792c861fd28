#include <catch2/catch.hpp>

#include <functional>
#include <nlohmann/json.hpp>

#include "bundles/bundle_error.h"
#include "bundles/bundle_test_util.h"
#include "bundles/rollover.h"

using namespace kb;
using namespace kb::test;

namespace {

// K0 -> K1 -> K2 -> K3, each statement signed by the key before.
struct Keys {
  std::vector<KeyPairPem> k;
  RolloverChain chain;
  Keys() {
    for (int i = 0; i < 4; ++i) k.push_back(generate_signing_key());
    for (uint64_t i = 1; i < 4; ++i)
      chain.push_back(sign_rollover(SigningKey(k[i - 1].private_pem), k[i].public_pem, i, "2026-12-03T10:00:0" + std::to_string(i) + "Z"));
  }
  std::string fp(size_t i) const { return VerifyKey(k[i].public_pem).fingerprint(); }
};
const Keys& keys() {
  static const Keys ks;
  return ks;
}

std::string what_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// A small bundle signed by key `signer` carrying `chain`.
std::string bundle(const TempDir& tmp, size_t signer, const RolloverChain& chain, const std::string& name = "b.kbundle") {
  BundleWriter w(sample_header());
  w.add_file(meta("/etc/a.conf", 0644, EntryClass::Config), "a\n");
  w.set_rollover(chain);
  w.write(tmp / name, SigningKey(keys().k[signer].private_pem));
  return tmp / name;
}

RolloverChain prefix(size_t n) { return RolloverChain(keys().chain.begin(), keys().chain.begin() + static_cast<long>(n)); }

}  // namespace

TEST_CASE("a rollover statement verifies with the old key only, over every field", "[rollover]") {
  const Keys& ks = keys();
  const RolloverStatement& s = ks.chain[0];
  CHECK(s.old_key_sha256 == ks.fp(0));
  CHECK(s.new_key_sha256 == ks.fp(1));
  CHECK(s.signature.size() == kSignatureSize);
  CHECK(verify_rollover(s, VerifyKey(ks.k[0].public_pem)));
  CHECK_FALSE(verify_rollover(s, VerifyKey(ks.k[1].public_pem)));
  CHECK(rollover_signed_bytes(s).rfind("kbundle rollover statement v1\n", 0) == 0);
  for (auto change : std::vector<std::function<void(RolloverStatement&)>>{
           [](RolloverStatement& x) { x.serial = 9; },
           [](RolloverStatement& x) { x.created_at = "2030-01-01T00:00:00Z"; },
           [&](RolloverStatement& x) { x.new_key_pem = ks.k[3].public_pem; },
           [&](RolloverStatement& x) { x.new_key_sha256 = ks.fp(3); },
           [](RolloverStatement& x) { x.signature[5] ^= 1; }}) {
    RolloverStatement t = s;
    change(t);
    CHECK_FALSE(verify_rollover(t, VerifyKey(ks.k[0].public_pem)));
  }
}

TEST_CASE("a chain round-trips, and the parser refuses every other form", "[rollover]") {
  const std::string good = serialize_rollover_chain(keys().chain);
  CHECK(parse_rollover_chain(good) == keys().chain);
  const nlohmann::json j = nlohmann::json::parse(good);
  using Edit = std::function<void(nlohmann::json&)>;
  const std::vector<std::pair<const char*, Edit>> edits = {
      {"empty chain", [](nlohmann::json& x) { x["statements"] = nlohmann::json::array(); }},
      {"extra top-level key", [](nlohmann::json& x) { x["more"] = 1; }},
      {"no statements", [](nlohmann::json& x) { x.erase("statements"); }},
      {"unknown key in a statement", [](nlohmann::json& x) { x["statements"][0]["note"] = "x"; }},
      {"missing signature", [](nlohmann::json& x) { x["statements"][1].erase("signature"); }},
      {"serial 0", [](nlohmann::json& x) { x["statements"][0]["serial"] = 0; }},
      {"negative serial", [](nlohmann::json& x) { x["statements"][0]["serial"] = -1; }},
      {"serial as a string", [](nlohmann::json& x) { x["statements"][0]["serial"] = "1"; }},
      {"a gap (1, 3)", [](nlohmann::json& x) { x["statements"].erase(1); }},
      {"reordered", [](nlohmann::json& x) { std::swap(x["statements"][0], x["statements"][1]); }},
      {"repeated statement", [](nlohmann::json& x) { x["statements"][1] = x["statements"][0]; }},
      {"old key not the previous new key", [](nlohmann::json& x) { x["statements"][1]["old_key_sha256"] = std::string(64, 'a'); }},
      {"fingerprint not the key's", [](nlohmann::json& x) { x["statements"][0]["new_key_sha256"] = std::string(64, 'b'); }},
      {"uppercase fingerprint", [&](nlohmann::json& x) {
         std::string f = x["statements"][0]["old_key_sha256"];
         for (auto& c : f) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
         x["statements"][0]["old_key_sha256"] = f;
       }},
      {"new key not a key", [](nlohmann::json& x) { x["statements"][2]["new_key_pem"] = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"; }},
      {"signature too short", [](nlohmann::json& x) { x["statements"][0]["signature"] = std::string(126, '0'); }},
      {"signature not hex", [](nlohmann::json& x) { x["statements"][0]["signature"] = std::string(128, 'z'); }},
      {"bad time", [](nlohmann::json& x) { x["statements"][0]["created_at"] = "yesterday"; }},
      {"new key equals old key", [](nlohmann::json& x) {
         x["statements"] = nlohmann::json::array({x["statements"][0]});
         x["statements"][0]["old_key_sha256"] = x["statements"][0]["new_key_sha256"];
       }},
  };
  for (const auto& [what, edit] : edits) {
    INFO(what);
    nlohmann::json x = j;
    edit(x);
    CHECK(code_of([&] { parse_rollover_chain(x.dump()); }) == BundleErrc::BadRollover);
  }
  CHECK(code_of([&] { parse_rollover_chain(nlohmann::json{{"format", 2}, {"statements", j["statements"]}}.dump()); }) ==
        BundleErrc::UnsupportedVersion);
  for (const std::string& bytes : {good + " ", " " + good, j.dump(1), std::string("{"), std::string(""), std::string("null")}) {
    INFO(bytes.substr(0, 20));
    CHECK(code_of([&] { parse_rollover_chain(bytes); }) == BundleErrc::BadRollover);
  }
}

TEST_CASE("walking a chain: from the pinned key and serial, or locating a key given by hand", "[rollover]") {
  const Keys& ks = keys();
  const RolloverChain& c = ks.chain;
  ChainEnd e = walk_rollover_chain(ks.k[0].public_pem, 0, c);
  CHECK(e.fingerprint == ks.fp(3));
  CHECK(e.serial == 3);
  CHECK(e.steps == 3);
  e = walk_rollover_chain(ks.k[2].public_pem, 2, c);  // history below the pin is skipped
  CHECK(e.fingerprint == ks.fp(3));
  CHECK(e.steps == 1);
  e = walk_rollover_chain(ks.k[3].public_pem, 3, c);
  CHECK(e.fingerprint == ks.fp(3));
  CHECK(e.steps == 0);
  e = walk_rollover_chain(ks.k[1].public_pem, std::nullopt, c);  // located as statement 1's new key
  CHECK(e.fingerprint == ks.fp(3));
  CHECK(e.serial == 3);
  e = walk_rollover_chain(ks.k[0].public_pem, std::nullopt, c);  // located as the first old key
  CHECK(e.steps == 3);
  e = walk_rollover_chain(other_key().public_pem, std::nullopt, c);  // not in the chain: itself
  CHECK(e.fingerprint == VerifyKey(other_key().public_pem).fingerprint());
  CHECK(e.steps == 0);

  // Refusals, each naming the fingerprints.
  std::string m = what_of([&] { walk_rollover_chain(ks.k[1].public_pem, 0, c); });  // pinned K1 at serial 0: wrong old key
  CHECK_THAT(m, Catch::Contains("is for old key sha256:" + ks.fp(0)) && Catch::Contains(ks.fp(1)));
  CHECK(code_of([&] { walk_rollover_chain(ks.k[0].public_pem, 0, RolloverChain(c.begin() + 1, c.end())); }) ==
        BundleErrc::UntrustedRollover);  // starts at serial 2: a gap for a node at 0
  m = what_of([&] { walk_rollover_chain(ks.k[0].public_pem, 0, RolloverChain(c.begin() + 1, c.end())); });
  CHECK_THAT(m, Catch::Contains("misses serial 1"));
  // Forged: a statement "from K0" signed by another key.
  RolloverStatement forged = sign_rollover(SigningKey(other_key().private_pem), ks.k[1].public_pem, 1, "2026-12-03T10:00:00Z");
  forged.old_key_sha256 = ks.fp(0);
  m = what_of([&] { walk_rollover_chain(ks.k[0].public_pem, 0, {forged}); });
  CHECK_THAT(m, Catch::Contains("a forged statement"));
  // Replayed: a node at serial 2 ignores statements 1 and 2 and stays at its key.
  e = walk_rollover_chain(ks.k[2].public_pem, 2, prefix(2));
  CHECK(e.fingerprint == ks.fp(2));
  CHECK(e.steps == 0);
  // A statement from an old key the node left behind, with a higher serial: another history.
  RolloverStatement fork = sign_rollover(SigningKey(ks.k[0].private_pem), other_key().public_pem, 3, "2026-12-03T10:00:00Z");
  CHECK(code_of([&] { walk_rollover_chain(ks.k[2].public_pem, 2, {fork}); }) == BundleErrc::UntrustedRollover);
}

TEST_CASE("a bundle carries its chain before the manifest; readers follow it from their pin", "[rollover][bundle]") {
  const Keys& ks = keys();
  TempDir tmp;
  std::string b3 = bundle(tmp, 3, ks.chain, "k3.kbundle");
  {
    BundleReader r(b3, ks.k[0].public_pem, 0);
    CHECK(r.signer().fingerprint == ks.fp(3));
    CHECK(r.signer().serial == 3);
    CHECK(r.rollover() == ks.chain);
    DiscardSink d;
    r.read_payload(d);
  }
  CHECK(BundleReader(b3, ks.k[2].public_pem, 2).signer().steps == 1);
  CHECK(verify_bundle(b3, ks.k[3].public_pem).serial == 7);  // the current key by hand
  CHECK(verify_bundle(b3, ks.k[0].public_pem).serial == 7);  // an older key by hand: walked
  // The signer without the chain: a node pinned at K0 refuses it.
  std::string bare = bundle(tmp, 1, {}, "bare.kbundle");
  CHECK(code_of([&] { BundleReader(bare, ks.k[0].public_pem, 0); }) == BundleErrc::BadSignature);
  // After re-pinning at K1, a bundle signed by K0 (with or without history) is refused.
  std::string old = bundle(tmp, 0, {}, "old.kbundle");
  CHECK(code_of([&] { BundleReader(old, ks.k[1].public_pem, 1); }) == BundleErrc::BadSignature);
  // Replay: a K1 bundle with statement 1, on a node already at K2.
  std::string k1 = bundle(tmp, 1, prefix(1), "k1.kbundle");
  CHECK(code_of([&] { BundleReader(k1, ks.k[2].public_pem, 2); }) == BundleErrc::BadSignature);
  // The writer refuses a chain that does not end at its key; a reader refuses one that ends elsewhere.
  CHECK_THROWS_WITH(bundle(tmp, 2, prefix(1)), Catch::Contains("rollover chain ends at key"));
  // Another key's bundle signed with a valid-looking chain prefix that is not walked: a forged statement.
  RolloverStatement forged = sign_rollover(SigningKey(other_key().private_pem), ks.k[1].public_pem, 1, "2026-12-03T10:00:00Z");
  forged.old_key_sha256 = ks.fp(0);
  std::string fb = bundle(tmp, 1, {forged}, "forged.kbundle");
  CHECK(code_of([&] { BundleReader(fb, ks.k[0].public_pem, 0); }) == BundleErrc::UntrustedRollover);
}
