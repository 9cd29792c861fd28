#pragma once
// Signing-key rollover statements (bundles/FORMAT.md §11). `kbundle rotate signing-key`
// makes one: the new public key, its fingerprint, the old key's fingerprint, a serial
// (1, 2, ...) and a time, signed by the OLD key. The chain of every statement so far
// travels in a bundle as the optional member kbundle/rollover.json, before the manifest,
// so a node that pins an older key can walk from its pinned key to the key that signed
// the manifest, each step verified with the key before it.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bundles/signing.h"

namespace kb {

inline constexpr const char* kRolloverMember = "kbundle/rollover.json";
inline constexpr uint64_t kMaxRolloverSize = 1u << 20;  // bytes; ~3,000 statements
inline constexpr int kRolloverFormat = 1;

struct RolloverStatement {
  uint64_t serial = 0;         // 1 for the first rotation, then +1 each
  std::string old_key_sha256;  // fingerprint (FORMAT.md §6) of the key that signs this statement
  std::string new_key_sha256;  // fingerprint of new_key_pem
  std::string new_key_pem;     // SubjectPublicKeyInfo PEM of the new Ed25519 key
  std::string created_at;      // RFC 3339 UTC, seconds
  std::string signature;       // 64 raw bytes: Ed25519 by the old key over rollover_signed_bytes()

  bool operator==(const RolloverStatement&) const = default;
};
using RolloverChain = std::vector<RolloverStatement>;

// What the old key signs: a fixed prefix (so that no statement can pass for a manifest,
// which the same key signs) and the canonical JSON of every field but the signature.
std::string rollover_signed_bytes(const RolloverStatement& s);

// A statement moving trust from `old_key` to `new_public_pem`.
RolloverStatement sign_rollover(const SigningKey& old_key, const std::string& new_public_pem, uint64_t serial,
                                const std::string& created_at);

// True when `s.signature` is `old_key`'s over `s` and `old_key` is the one `s` names.
bool verify_rollover(const RolloverStatement& s, const VerifyKey& old_key);

// Canonical JSON of a non-empty chain; parse_rollover_chain() is its exact inverse and refuses
// anything else (BundleError(BadRollover)): non-canonical bytes, unknown or missing keys, an
// empty chain, serials that do not go up by exactly one, a statement whose old key is not the
// previous statement's new key, a key that comes back, a fingerprint that is not its key's.
// Signatures are checked by walking (walk_rollover_chain), not here.
std::string serialize_rollover_chain(const RolloverChain& chain);
RolloverChain parse_rollover_chain(std::string_view bytes);

// Where walking a chain from a trusted key ends: the key to verify the manifest with.
struct ChainEnd {
  std::string key_pem;
  std::string fingerprint;
  uint64_t serial = 0;  // the rollover serial of that key (0: the key from before any rotation)
  size_t steps = 0;     // statements walked
};

// Walks `chain` from `anchor_pem`. With `anchor_serial` (the serial pinned with the key on a
// node), statements with a serial at or below it are history the node already has; the next
// one must be anchor_serial + 1, be for the anchor's key and verify with it, and so on to the
// end. Without it (a key given by hand), the anchor is located in the chain (as a statement's
// new key, or as the first statement's old key) and the walk starts there; an anchor the chain
// does not name ends the walk at once. Throws BundleError(UntrustedRollover) naming the
// fingerprints: a forged statement, a gap, a statement for another old key.
ChainEnd walk_rollover_chain(const std::string& anchor_pem, std::optional<uint64_t> anchor_serial,
                             const RolloverChain& chain);

}  // namespace kb
