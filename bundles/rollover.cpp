#include "bundles/rollover.h"

#include <set>

#include <nlohmann/json.hpp>

#include "base/hash.h"
#include "bundles/bundle_error.h"
#include "bundles/manifest.h"

namespace kb {

namespace {

using nlohmann::json;

constexpr std::string_view kSignedPrefix = "kbundle rollover statement v1\n";

[[noreturn]] void bad(const std::string& why) {
  throw BundleError(BundleErrc::BadRollover, std::string(kRolloverMember) + ": " + why);
}
[[noreturn]] void untrusted(const std::string& why) {
  throw BundleError(BundleErrc::UntrustedRollover, std::string(kRolloverMember) + ": " + why);
}

json unsigned_json(const RolloverStatement& s) {
  return json{{"created_at", s.created_at},
              {"new_key_pem", s.new_key_pem},
              {"new_key_sha256", s.new_key_sha256},
              {"old_key_sha256", s.old_key_sha256},
              {"serial", s.serial}};
}

std::string short_fp(const std::string& fp) { return "sha256:" + fp; }

}  // namespace

std::string rollover_signed_bytes(const RolloverStatement& s) {
  return std::string(kSignedPrefix) + unsigned_json(s).dump();
}

RolloverStatement sign_rollover(const SigningKey& old_key, const std::string& new_public_pem, uint64_t serial,
                                const std::string& created_at) {
  RolloverStatement s;
  s.serial = serial;
  s.old_key_sha256 = old_key.fingerprint();
  s.new_key_pem = new_public_pem;
  s.new_key_sha256 = VerifyKey(new_public_pem).fingerprint();
  s.created_at = created_at;
  s.signature = old_key.sign(rollover_signed_bytes(s));
  return s;
}

bool verify_rollover(const RolloverStatement& s, const VerifyKey& old_key) {
  return old_key.fingerprint() == s.old_key_sha256 && old_key.verify(rollover_signed_bytes(s), s.signature);
}

std::string serialize_rollover_chain(const RolloverChain& chain) {
  json statements = json::array();
  for (const auto& s : chain) {
    json j = unsigned_json(s);
    j["signature"] = to_hex(reinterpret_cast<const uint8_t*>(s.signature.data()), s.signature.size());
    statements.push_back(std::move(j));
  }
  return json{{"format", kRolloverFormat}, {"statements", std::move(statements)}}.dump();
}

RolloverChain parse_rollover_chain(std::string_view bytes) {
  json j = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) bad("not valid JSON");
  if (!j.is_object() || j.size() != 2 || !j.contains("format") || !j.contains("statements"))
    bad("must be an object with exactly \"format\" and \"statements\"");
  if (!j["format"].is_number_unsigned() || j["format"].get<uint64_t>() != kRolloverFormat)
    throw BundleError(BundleErrc::UnsupportedVersion,
                      std::string(kRolloverMember) + ": format " + j["format"].dump() + ", this reader knows 1 only");
  const json& list = j["statements"];
  if (!list.is_array() || list.empty()) bad("\"statements\" must be a non-empty array");
  RolloverChain chain;
  std::set<std::string> keys_seen;
  for (size_t i = 0; i < list.size(); ++i) {
    const json& e = list[i];
    std::string where = "statement " + std::to_string(i + 1) + ": ";
    static const std::set<std::string> kKeys{"created_at", "new_key_pem", "new_key_sha256", "old_key_sha256", "serial",
                                             "signature"};
    if (!e.is_object() || e.size() != kKeys.size()) bad(where + "must be an object with exactly 6 keys");
    for (const auto& [k, v] : e.items())
      if (!kKeys.count(k)) bad(where + "unknown key \"" + k + "\"");
    if (!e["serial"].is_number_unsigned()) bad(where + "\"serial\" is not a non-negative integer");
    for (const char* k : {"created_at", "new_key_pem", "new_key_sha256", "old_key_sha256", "signature"})
      if (!e[k].is_string()) bad(where + "\"" + k + "\" is not a string");
    RolloverStatement s;
    s.serial = e["serial"].get<uint64_t>();
    s.created_at = e["created_at"].get<std::string>();
    s.new_key_pem = e["new_key_pem"].get<std::string>();
    s.new_key_sha256 = e["new_key_sha256"].get<std::string>();
    s.old_key_sha256 = e["old_key_sha256"].get<std::string>();
    std::string sig = e["signature"].get<std::string>();
    if (s.serial == 0) bad(where + "serial 0, but rollover serials start at 1");
    if (!chain.empty() && s.serial != chain.back().serial + 1)
      bad(where + "serial " + std::to_string(s.serial) + " after " + std::to_string(chain.back().serial) +
          ": a gap or a reordering");
    if (!parse_rfc3339_utc(s.created_at)) bad(where + "\"created_at\" is not YYYY-MM-DDTHH:MM:SSZ");
    if (!is_lower_hex(s.new_key_sha256, 64) || !is_lower_hex(s.old_key_sha256, 64)) bad(where + "a fingerprint is not 64 lowercase hex");
    if (!is_lower_hex(sig, 2 * kSignatureSize)) bad(where + "\"signature\" is not 128 lowercase hex");
    s.signature = hex_to_bytes(sig);
    try {
      if (VerifyKey(s.new_key_pem).fingerprint() != s.new_key_sha256) bad(where + "\"new_key_sha256\" is not new_key_pem's fingerprint");
    } catch (const BundleError& err) {
      if (err.code() == BundleErrc::BadRollover) throw;
      bad(where + "\"new_key_pem\" is not an Ed25519 public key");
    }
    if (s.new_key_sha256 == s.old_key_sha256) bad(where + "the new key is the old key");
    if (!chain.empty() && s.old_key_sha256 != chain.back().new_key_sha256)
      bad(where + "old key " + short_fp(s.old_key_sha256) + " is not the previous statement's new key " +
          short_fp(chain.back().new_key_sha256));
    if (chain.empty()) keys_seen.insert(s.old_key_sha256);
    if (!keys_seen.insert(s.new_key_sha256).second) bad(where + "key " + short_fp(s.new_key_sha256) + " comes back");
    chain.push_back(std::move(s));
  }
  if (serialize_rollover_chain(chain) != bytes) bad("not in the canonical form of FORMAT.md §5.2");
  return chain;
}

ChainEnd walk_rollover_chain(const std::string& anchor_pem, std::optional<uint64_t> anchor_serial,
                             const RolloverChain& chain) {
  ChainEnd end;
  end.key_pem = anchor_pem;
  end.fingerprint = VerifyKey(anchor_pem).fingerprint();
  size_t i = 0;
  if (anchor_serial) {
    end.serial = *anchor_serial;
  } else {
    // A key given by hand: start where the chain names it; a key it does not name walks nothing.
    i = chain.size();
    for (size_t k = 0; k < chain.size(); ++k) {
      if (chain[k].new_key_sha256 == end.fingerprint) {
        i = k + 1;
        end.serial = chain[k].serial;
      }
    }
    if (!chain.empty() && chain[0].old_key_sha256 == end.fingerprint) {
      i = 0;
      end.serial = chain[0].serial - 1;
    }
  }
  for (; i < chain.size(); ++i) {
    const RolloverStatement& s = chain[i];
    if (s.serial <= end.serial) continue;  // a rotation this key already follows
    std::string at = "statement serial " + std::to_string(s.serial) + ", " + short_fp(s.old_key_sha256) + " -> " +
                     short_fp(s.new_key_sha256) + ": ";
    if (s.serial != end.serial + 1)
      untrusted(at + "the trusted key " + short_fp(end.fingerprint) + " is at rollover serial " + std::to_string(end.serial) +
                ", so the chain misses serial " + std::to_string(end.serial + 1) +
                "; regenerate the bundle with a kbundle state that holds the whole chain");
    if (s.old_key_sha256 != end.fingerprint)
      untrusted(at + "is for old key " + short_fp(s.old_key_sha256) + ", but the trusted key at serial " +
                std::to_string(end.serial) + " is " + short_fp(end.fingerprint) +
                "; the bundle comes from another key history: refused");
    if (!verify_rollover(s, VerifyKey(end.key_pem)))
      untrusted(at + "signature does not verify with the trusted key " + short_fp(end.fingerprint) +
                ": a forged statement, refused");
    end.key_pem = s.new_key_pem;
    end.fingerprint = s.new_key_sha256;
    end.serial = s.serial;
    ++end.steps;
  }
  return end;
}

}  // namespace kb
