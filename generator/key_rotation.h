#pragma once
// Encryption-key and service-account-key rotation (docs/rotation.md, "Encryption key" and
// "Service-account key"): what each phase of the rotation framework (generator/rotation.h) puts
// into the control-plane files, and the records they keep in the state.
//
// State records (pinned rotation files, generator/state.h):
//   rotation/encryption.json      {"provider","name"} of keys/encryption.key, the key in use. Written
//                                 by the first gen that lacks it (a state made before this record:
//                                 the topology's provider then, and the name "key1").
//   rotation/encryption-new.json  {"provider","name","secret"}: the new key while a rotation runs.
//   rotation/service-account-new.key  the new signing key (PKCS#8) while a rotation runs.

#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "topology/topology.h"

namespace kb {

class State;

struct EncryptionKey {
  std::string name;  // "key1", "key2", ...: unique, and kept for the key's whole life (stored data names it)
  EncryptionProvider provider;
  std::string secret_base64;  // 32 random bytes
};

// The keys of the EncryptionConfiguration, in config order; [0] writes, every one reads.
// No rotation: the key in use. encryption-key phase 1: in use, new; 2 and 3: new, in use; 4: new.
// Throws kb::Error naming the topology's encryption.provider and the fix when the topology asks
// for another provider than the key in use without a rotation (writing with a provider that not
// every apiserver can read yet would make Secrets unreadable on the others), or another provider
// than the rotation in progress was started for.
std::vector<EncryptionKey> encryption_keys(const State& state, const Topology& topology);

// The same check, as a message ("" when fine): for gen, plan and validate.
std::string encryption_provider_problem(const State& state, const Topology& topology);

// gen, before commit(): records the key in use (rotation/encryption.json) when the state has no
// record yet. Returns true when it did.
bool record_encryption_key_in_use(State& state, const Topology& topology);

struct ServiceAccountKeys {
  std::string signing_key_pem;            // kube-apiserver signs, kube-controller-manager signs legacy tokens
  std::vector<std::string> public_pems;   // every apiserver verifies with each; [0] is the signer's
};
// No rotation: the key pair. service-account-key phase 1: old signs, old + new verify; 2: new signs,
// new + old verify; 3: new signs and alone verifies.
ServiceAccountKeys service_account_keys(const State& state);
// The public keys as the one file --service-account-key-file names (the flag reads every key in it).
std::string service_account_public_file(const ServiceAccountKeys& keys);

// How long a token signed by the old key may stay valid: --service-account-max-token-expiration when
// the kube-apiserver template sets it, else 24 h (kubelet replaces a projected token when it is
// 80 % through its life or 24 h old, and --service-account-extend-token-expiration=false keeps
// tokens to the lifetime they asked for), plus one hour of margin. In seconds.
int64_t service_account_token_wait_seconds();

// The ends of each rotation, in the shape of cli/'s PhasedRotation (start, complete, abort), and
// the gate before --advance that shape lacks (an encryption provider changed mid-rotation; the SA
// tokens of the old key not expired yet: with `force` a warning in `warnings` instead).
std::string start_encryption_key_rotation(State& state, const Topology& topology);  // returns one line
std::string complete_encryption_key_rotation(State& state);
void abort_encryption_key_rotation(State& state);
std::string start_service_account_key_rotation(State& state);
std::string complete_service_account_key_rotation(State& state);
void abort_service_account_key_rotation(State& state);
struct Rotation;
std::string key_rotation_advance_problem(const State& state, const Topology& topology, const Rotation& rotation,
                                         std::time_t now, bool force, std::vector<std::string>* warnings);

// `kbundle rotate encryption-key|service-account-key` (cli/rotate_keys_command.cpp): the state
// changes of each step. Each refuses by throwing RotationRefused (exit 3) with the file, the place
// and the fix; nothing is changed then.
struct RotationRefused {
  std::string message;
};
struct KeyRotationStep {
  std::string entered;        // "phase 2/4: ..." or "completed" or "aborted"
  std::vector<std::string> notes;  // warnings (--force), what changes
};
// Starts the rotation named `kind` ("encryption-key" | "service-account-key") at phase 1.
KeyRotationStep start_key_rotation(State& state, const Topology& topology, const std::string& kind, std::time_t now);
// Moves it on (or completes it after its last phase). `force`: service-account-key 2 -> 3 before
// the tokens signed by the old key have expired.
KeyRotationStep advance_key_rotation(State& state, const Topology& topology, const std::string& kind, std::time_t now,
                                     bool force);
// Drops it (phase 1 only).
KeyRotationStep abort_key_rotation(State& state, const std::string& kind);

// The designated control-plane node's phase-3 file (encryption-key rotation): it tells the
// installer to rewrite every Secret through the API once the node is healthy (installer/reencrypt.h).
// "" when no such step is due.
std::string render_reencrypt_request(const State& state, const Topology& topology);

}  // namespace kb
