#include "generator/key_rotation.h"

#include <nlohmann/json.hpp>
#include <openssl/rand.h>

#include "base/error.h"
#include "base/hash.h"
#include "base/time.h"
#include "bundles/manifest.h"
#include "generator/bootstrap_objects.h"
#include "generator/node_paths.h"
#include "generator/pki.h"
#include "generator/render.h"
#include "generator/rotation.h"
#include "generator/state.h"

namespace kb {

namespace {

constexpr const char* kEncryptionRotation = "encryption-key";
constexpr const char* kSaRotation = "service-account-key";
constexpr const char* kInUseFile = "encryption.json";
constexpr const char* kNewEncryptionFile = "encryption-new.json";
constexpr const char* kNewSaKeyFile = "service-account-new.key";

std::optional<EncryptionProvider> provider_named(const std::string& s) {
  for (auto p : {EncryptionProvider::Aescbc, EncryptionProvider::Secretbox, EncryptionProvider::Aesgcm})
    if (s == to_string(p)) return p;
  return std::nullopt;
}

// A rotation file's JSON object; a damaged one is refused naming it (state.json pins it, so this
// means a state written by something else).
nlohmann::json record(const State& state, const std::string& rel) {
  auto text = state.rotation_file(rel);
  if (!text) return nullptr;
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  // The name goes into the YAML config: letters and digits only.
  auto good_name = [](const std::string& n) {
    return !n.empty() && n.size() <= 32 && n.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos;
  };
  if (!j.is_object() || !j["provider"].is_string() || !j["name"].is_string() ||
      !provider_named(j["provider"].get<std::string>()) || !good_name(j["name"].get<std::string>()))
    throw Error(state.dir() + "/rotation/" + rel + ": not a key record ({\"provider\": aescbc|secretbox|aesgcm, \"name\": [a-z0-9-]+}); restore the state from a backup");
  return j;
}

struct InUse {
  std::string name;
  EncryptionProvider provider;
  bool recorded;
};

InUse key_in_use(const State& state, const Topology& topology) {
  nlohmann::json j = record(state, kInUseFile);
  if (j.is_null()) return {"key1", topology.cluster.encryption_provider, false};
  return {j["name"].get<std::string>(), *provider_named(j["provider"].get<std::string>()), true};
}

std::optional<EncryptionKey> new_encryption_key(const State& state) {
  nlohmann::json j = record(state, kNewEncryptionFile);
  if (j.is_null()) return std::nullopt;
  if (!j["secret"].is_string() || base64_decode(j["secret"].get<std::string>()).value_or("").size() != 32)
    throw Error(state.dir() + "/rotation/" + kNewEncryptionFile + ": secret is not 32 bytes of base64; restore the state from a backup");
  return EncryptionKey{j["name"].get<std::string>(), *provider_named(j["provider"].get<std::string>()), j["secret"].get<std::string>()};
}

// "key1" -> "key2": a name no key of this cluster had before (the stored data carries it).
std::string next_key_name(const std::string& current) {
  int n = 1;
  if (current.rfind("key", 0) == 0 && current.size() > 3 && current.size() < 10 &&
      current.find_first_not_of("0123456789", 3) == std::string::npos)
    n = std::stoi(current.substr(3));
  return "key" + std::to_string(n + 1);
}

std::string random_key_base64() {
  unsigned char b[32];
  if (RAND_bytes(b, sizeof b) != 1) throw Error("cannot read 32 random bytes for the encryption key (OpenSSL RAND_bytes)");
  return base64_encode(std::string_view(reinterpret_cast<const char*>(b), sizeof b));
}

std::string pub_of(const std::string& private_pem, const std::string& what) {
  PkeyPtr k = parse_private_key(private_pem, what);
  return public_key_pem(k.get());
}

[[noreturn]] void refuse(const std::string& message) { throw RotationRefused{message}; }

std::string cmd(const std::string& kind, const std::string& rest) { return "`kbundle rotate " + kind + " " + rest + "`"; }

}  // namespace

std::string encryption_provider_problem(const State& state, const Topology& topology) {
  InUse cur = key_in_use(state, topology);
  const std::string place = topology.source_path + ": cluster.encryption.provider";
  const std::string want = to_string(topology.cluster.encryption_provider);
  if (const Rotation* r = state.rotation(kEncryptionRotation)) {
    auto next = new_encryption_key(state);
    if (next && next->provider != topology.cluster.encryption_provider)
      return place + ": " + want + ", but the encryption-key rotation in progress (phase " + std::to_string(r->phase) +
             ") switches to " + to_string(next->provider) + "; put back provider: " + to_string(next->provider) +
             (r->phase == 1 ? " (or drop the rotation with " + cmd(kEncryptionRotation, "--abort") + ")" : "");
    return "";
  }
  if (cur.provider == topology.cluster.encryption_provider) return "";
  return place + ": " + want + ", but the Secrets are encrypted with " + to_string(cur.provider) + " (key " + cur.name +
         ", recorded in " + state.dir() + "/rotation/" + kInUseFile +
         "); switching in one generation would leave Secrets unreadable on the apiservers that do not have the new "
         "config yet and drop the old key. To switch, run " + cmd(kEncryptionRotation, "--topology T --state S") +
         " with this topology (it adds " + want + " beside " + to_string(cur.provider) +
         " in phases; docs/rotation.md, \"Encryption key\"); or put back provider: " + to_string(cur.provider);
}

std::vector<EncryptionKey> encryption_keys(const State& state, const Topology& topology) {
  if (std::string p = encryption_provider_problem(state, topology); !p.empty()) throw Error(p);
  InUse cur_id = key_in_use(state, topology);
  EncryptionKey cur{cur_id.name, cur_id.provider, state.encryption_key_base64()};
  const Rotation* r = state.rotation(kEncryptionRotation);
  auto next = new_encryption_key(state);
  if (!r || !next) return {cur};
  switch (r->phase) {
    case 1: return {cur, *next};
    case 2:
    case 3: return {*next, cur};
    default: return {*next};
  }
}

bool record_encryption_key_in_use(State& state, const Topology& topology) {
  if (state.rotation_file(kInUseFile)) return false;
  // Only a state with no record and no rotation reaches here: the key in use is the topology's provider.
  nlohmann::json j = {{"provider", to_string(topology.cluster.encryption_provider)}, {"name", "key1"}};
  state.set_rotation_file(kInUseFile, j.dump() + "\n");
  return true;
}

ServiceAccountKeys service_account_keys(const State& state) {
  const Rotation* r = state.rotation(kSaRotation);
  auto next = state.rotation_file(kNewSaKeyFile);
  if (!r || !next) return {state.service_account_key_pem(), {state.service_account_public_pem()}};
  std::string next_pub = pub_of(*next, state.dir() + "/rotation/" + kNewSaKeyFile);
  switch (r->phase) {
    case 1: return {state.service_account_key_pem(), {state.service_account_public_pem(), next_pub}};
    case 2: return {*next, {next_pub, state.service_account_public_pem()}};
    default: return {*next, {next_pub}};
  }
}

std::string service_account_public_file(const ServiceAccountKeys& keys) {
  std::string out;
  for (const auto& p : keys.public_pems) out += p;
  return out;
}

int64_t service_account_token_wait_seconds() {
  const std::string& t = embedded_template("kube-apiserver.service.mustache");
  const std::string flag = "--service-account-max-token-expiration=";
  int64_t lifetime = 24 * 3600;
  if (size_t at = t.find(flag); at != std::string::npos) {
    // A Go duration as our template would write it: "<n>h", "<n>m" or "<n>s".
    size_t end = at + flag.size();
    size_t digits = t.find_first_not_of("0123456789", end);
    if (digits != end && digits != std::string::npos) {
      int64_t n = std::stoll(t.substr(end, digits - end));
      char unit = t[digits];
      lifetime = unit == 'h' ? n * 3600 : unit == 'm' ? n * 60 : n;
    }
  }
  return lifetime + 3600;
}

std::string start_encryption_key_rotation(State& state, const Topology& topology) {
  InUse cur = key_in_use(state, topology);
  EncryptionKey next{next_key_name(cur.name), topology.cluster.encryption_provider, random_key_base64()};
  nlohmann::json j = {{"provider", to_string(next.provider)}, {"name", next.name}, {"secret", next.secret_base64}};
  // The record of the old key first: a state made before the record names it now.
  if (!cur.recorded) record_encryption_key_in_use(state, topology);
  state.set_rotation_file(kNewEncryptionFile, j.dump() + "\n");
  return "new key " + next.name + " (" + to_string(next.provider) + ") replaces " + cur.name + " (" + to_string(cur.provider) + ")";
}

std::string complete_encryption_key_rotation(State& state) {
  auto next = new_encryption_key(state);
  if (!next) throw Error(state.dir() + "/rotation/" + kNewEncryptionFile + ": missing; restore the state from a backup");
  state.replace_pinned_file("keys/encryption.key", next->secret_base64 + "\n");
  state.set_rotation_file(kInUseFile, nlohmann::json{{"provider", to_string(next->provider)}, {"name", next->name}}.dump() + "\n");
  state.remove_rotation_file(kNewEncryptionFile);
  return "key " + next->name + " (" + to_string(next->provider) + ") is now the cluster's encryption key";
}

void abort_encryption_key_rotation(State& state) { state.remove_rotation_file(kNewEncryptionFile); }

std::string start_service_account_key_rotation(State& state) {
  PkeyPtr k = generate_key(key_type_of(parse_private_key(state.service_account_key_pem(), "keys/service-account.key").get()));
  state.set_rotation_file(kNewSaKeyFile, private_key_pem(k.get()));
  return "new service-account key pair (" + std::string(to_string(key_type_of(k.get()))) + ")";
}

std::string complete_service_account_key_rotation(State& state) {
  auto next = state.rotation_file(kNewSaKeyFile);
  if (!next) throw Error(state.dir() + "/rotation/" + kNewSaKeyFile + ": missing; restore the state from a backup");
  state.replace_pinned_file("keys/service-account.key", *next);
  state.replace_pinned_file("keys/service-account.pub", pub_of(*next, state.dir() + "/rotation/" + kNewSaKeyFile));
  state.remove_rotation_file(kNewSaKeyFile);
  return "the new key pair is now keys/service-account.key|.pub";
}

void abort_service_account_key_rotation(State& state) { state.remove_rotation_file(kNewSaKeyFile); }

std::string key_rotation_advance_problem(const State& state, const Topology& topology, const Rotation& r, std::time_t now,
                                         bool force, std::vector<std::string>* warnings) {
  if (r.kind == RotationKind::EncryptionKey) return encryption_provider_problem(state, topology);
  if (r.kind != RotationKind::ServiceAccountKey || r.phase != 2) return "";
  int64_t wait = service_account_token_wait_seconds();
  auto started = parse_rfc3339_utc(r.phase_started_at);
  int64_t waited = started ? static_cast<int64_t>(now) - *started : 0;
  if (waited >= wait) return "";
  std::string left = std::to_string((wait - waited + 59) / 60) + " min";
  std::string msg = "tokens signed by the old service-account key may still be in use: phase 2 began at " +
                    r.phase_started_at + ", and a token lives up to " + std::to_string(wait / 3600) +
                    " h (with margin); dropping the old public key now rejects them (" + left + " left)";
  if (!force) return state.dir() + "/state.json: " + msg + "; wait, or pass --force to drop it anyway";
  if (warnings) warnings->push_back("warning: --force: " + msg);
  return "";
}

KeyRotationStep start_key_rotation(State& state, const Topology& topology, const std::string& kind, std::time_t now) {
  if (const Rotation* r = state.rotation(kind))
    refuse(state.dir() + "/state.json: a " + kind + " rotation is already in progress (phase " + std::to_string(r->phase) +
           "/" + std::to_string(last_phase(r->kind)) + "); go on with " + cmd(kind, "--advance") +
           (r->phase == 1 ? " or drop it with " + cmd(kind, "--abort") : ""));
  Rotation r;
  r.name = kind;
  r.phase = 1;
  r.phase_started_at = rfc3339_utc(now);
  r.generated = false;
  KeyRotationStep step;
  if (kind == kEncryptionRotation) {
    r.kind = RotationKind::EncryptionKey;
    step.notes.push_back(start_encryption_key_rotation(state, topology));
  } else if (kind == kSaRotation) {
    r.kind = RotationKind::ServiceAccountKey;
    step.notes.push_back(start_service_account_key_rotation(state));
  } else {
    throw Error("internal error: unknown key rotation " + kind);
  }
  state.set_rotation(r);
  step.entered = "phase 1/" + std::to_string(last_phase(r.kind)) + ": " + phase_title(r.kind, 1);
  return step;
}

KeyRotationStep advance_key_rotation(State& state, const Topology& topology, const std::string& kind, std::time_t now,
                                     bool force) {
  const Rotation* cur = state.rotation(kind);
  if (!cur) refuse(state.dir() + "/state.json: no " + kind + " rotation in progress; start one with " + cmd(kind, "--topology T --state S"));
  Rotation r = *cur;
  const int last = last_phase(r.kind);
  if (!r.generated)
    refuse(state.dir() + "/state.json: " + kind + " phase " + std::to_string(r.phase) + "/" + std::to_string(last) +
           " was not generated yet; run `kbundle gen`, apply the bundles on every node (e.g. `kbundle publish --to ssh "
           "--apply`), then " + cmd(kind, "--advance"));
  KeyRotationStep step;
  if (std::string p = key_rotation_advance_problem(state, topology, r, now, force, &step.notes); !p.empty()) refuse(p);
  if (r.phase < last) {
    r.phase += 1;
    r.phase_started_at = rfc3339_utc(now);
    r.generated = false;
    state.set_rotation(r);
    step.entered = "phase " + std::to_string(r.phase) + "/" + std::to_string(last) + ": " + phase_title(r.kind, r.phase);
    return step;
  }
  // After the last phase: the new material becomes the long-lived file, the old leaves the state.
  step.notes.push_back(r.kind == RotationKind::EncryptionKey ? complete_encryption_key_rotation(state)
                                                            : complete_service_account_key_rotation(state));
  state.clear_rotation(kind);
  step.entered = "completed";
  return step;
}

KeyRotationStep abort_key_rotation(State& state, const std::string& kind) {
  const Rotation* cur = state.rotation(kind);
  if (!cur) refuse(state.dir() + "/state.json: no " + kind + " rotation in progress; nothing to abort");
  if (cur->phase != 1)
    refuse(state.dir() + "/state.json: " + kind + " is in phase " + std::to_string(cur->phase) +
           ": the new key already " + (kind == kEncryptionRotation ? "encrypts Secrets" : "signs tokens") +
           ", so dropping it is unsafe; finish it with " + cmd(kind, "--advance"));
  const bool generated = cur->generated;
  if (kind == kEncryptionRotation) abort_encryption_key_rotation(state);
  else abort_service_account_key_rotation(state);
  state.clear_rotation(kind);
  KeyRotationStep step;
  step.entered = "aborted";
  step.notes.push_back(generated ? "phase 1 was generated: run `kbundle gen` and apply on every node, so that "
                                   "no apiserver keeps the dropped key"
                                 : "nothing was generated with the new key");
  return step;
}

std::string render_reencrypt_request(const State& state, const Topology& topology) {
  const Rotation* r = state.rotation(kEncryptionRotation);
  if (!r || r->phase != 3) return "";
  auto next = new_encryption_key(state);
  if (!next) return "";
  nlohmann::json j = {{"version", 1},
                      {"api_server", "https://127.0.0.1:" + std::to_string(topology.cluster.api_port)},
                      {"ca_file", paths::kCaCert},
                      {"cert_file", paths::kBootstrapCert},
                      {"key_file", paths::kBootstrapKey},
                      {"write_key", std::string(to_string(next->provider)) + ":" + next->name},
                      {"rotation_started", r->phase_started_at}};
  return j.dump(2) + "\n";
}

}  // namespace kb
