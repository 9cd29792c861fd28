#pragma once
// The state directory: the cluster's CAs, service-account key pair, encryption
// key, and every leaf cert issued so far (so that a re-run keeps them).
// Created on first use; directories 0700, files 0600, every write atomic; an
// exclusive lock (flock) is held for the lifetime of a State, so two runs
// cannot use one directory at once. Nothing is ever overwritten silently: a
// damaged state (a missing or unreadable CA, a key that does not match its
// cert) or a foreign one (another cluster's name) is reported, not replaced.
// A first run cut short by a crash is recognized (its .init-incomplete marker,
// no state.json) and done again from scratch on the next run.
//
// Layout:
//   state.json                    format version, cluster name, cluster id, and the pins: the
//                                 sha256 of every CA, long-lived key and rollover file, taken when
//                                 they were made; a file that differs is refused on every open
//                                 (only rotate_signing_key() and a rotation's commit() change a pin)
//   ca/<name>.crt, ca/<name>.key  kubernetes-ca, etcd-ca, front-proxy-ca
//   keys/service-account.key|.pub
//   keys/encryption.key           32 random bytes, base64
//   keys/bundle-signing.key|.pub  Ed25519 key that signs every bundle
//   keys/rollover.json            after a rotation: the chain of rollover statements
//                                 (bundles/rollover.h), the last one naming the current key
//   issued.json                   leaf certs and keys by "<owner>/<name>"
//   serials.json                  per node: bundle serial and the digest of its content
//   manifests/<node>.json         the canonical manifest of the bundle gen last wrote for the node
//                                 (format bundle only): what `kbundle plan` compares against
//   rotation/<rel>                new key material of the rotations in progress (generator/rotation.h),
//                                 pinned in state.json as "rotation/<rel>"; state.json also keeps the
//                                 rotations' record ("rotations"), so both change in one commit

#include <cstdint>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bundles/manifest.h"
#include "bundles/rollover.h"
#include "generator/pki.h"
#include "generator/rotation.h"
#include "topology/topology.h"

namespace kb {

enum class CaName { Kubernetes, Etcd, FrontProxy };

struct IssuedCert {
  std::string cert_pem;
  std::string key_pem;
  bool reissued = false;     // made in this run
  std::string reason;        // why it was (re)issued: "new", "SAN set changed", ...
};

// The bundle-signing public key (PEM) of the state in `dir`, read without locking it or writing
// anything (`kbundle aws up` needs only this key): nullopt when `dir` has no state.json yet. The
// state must be for `cluster` and the key must match its pin (a rotation committed but not yet
// renamed into place counts); otherwise kb::Error as open() would say.
std::optional<std::string> read_signing_public_key(const std::string& dir, const std::string& cluster);

class State {
 public:
  // Opens the state directory for `topology`'s cluster, creating it on first use. `now` is the
  // run's clock: new certificates start then, and a stored one is renewed when it expires within
  // the topology's renewBeforeDays of it.
  // Throws kb::Error naming the file and the fix for a locked, damaged or foreign state.
  static std::unique_ptr<State> open(const std::string& dir, const Topology& topology, std::time_t now);
  // For `kbundle plan`: the same checks as open(), but never creates, locks or writes anything
  // (commit() throws). When `dir` has no state yet, the CAs and keys are made in memory only and
  // created() is true: every node is then new. A pending rotation or an unpinned (older) state is
  // refused with the command that finishes it, since finishing it would write.
  static std::unique_ptr<State> open_read_only(const std::string& dir, const Topology& topology, std::time_t now);
  ~State();

  const std::string& dir() const { return dir_; }
  const std::string& cluster_id() const { return cluster_id_; }
  bool created() const { return created_; }  // true when this run created the state

  const CertificateAuthority& ca(CaName which) const;
  const std::string& service_account_key_pem() const { return sa_key_pem_; }
  const std::string& service_account_public_pem() const { return sa_pub_pem_; }
  const std::string& encryption_key_base64() const { return encryption_key_b64_; }
  const std::string& signing_key_pem() const { return signing_key_pem_; }         // Ed25519, PKCS#8
  const std::string& signing_public_key_pem() const { return signing_pub_pem_; }  // SubjectPublicKeyInfo
  // The signing key's rollover chain (empty before the first rotation) and its serial (0 then).
  const RolloverChain& rollover_chain() const { return rollover_; }
  uint64_t signing_rollover_serial() const { return rollover_.empty() ? 0 : rollover_.back().serial; }
  // Said once, when a state made by an older kbundle (no pins in state.json) was pinned by this open.
  const std::string& note() const { return note_; }

  // `kbundle rotate signing-key`: a new Ed25519 key and a statement (serial + 1, `created_at`)
  // signed by the current key; the key files, the chain and their pins change together. Atomic:
  // the new files are written beside the old ones (".next"), state.json with the new pins is the
  // commit point, then they are renamed into place; open() finishes or discards an interrupted
  // rotation by comparing each ".next" file with its pin. `crash_at` (tests) is called with each
  // step's name and may throw to stop there as a crash would. Returns the new statement.
  RolloverStatement rotate_signing_key(const std::string& created_at,
                                       const std::function<void(const std::string& step)>& crash_at = {});

  // The bundle serial for `node` whose content hashes to `content_digest`: the stored
  // serial when the digest is unchanged, otherwise the stored serial + 1 (1 for a new
  // node). `now` (RFC 3339) is recorded as the serial's creation time when a new serial is
  // assigned. Kept on commit().
  uint64_t node_serial(const std::string& node, const std::string& content_digest, const std::string& now = {});
  // The creation time recorded with the node's current serial ("" if none).
  std::string serial_created_at(const std::string& node) const;

  // The cert + key for `owner`/`name` (e.g. "control-0"/"etcd-server"): the stored one
  // when it still satisfies `request`, otherwise a new key and cert (kept on commit()).
  // Thread-safe.
  IssuedCert leaf(const std::string& owner, const std::string& name, CaName issuer, const CertRequest& request);

  // The manifests of the bundles the last gen wrote, by node name (read at open(); a file that does
  // not parse, or names another cluster or node, is refused naming it, like any damaged state file).
  const std::map<std::string, Manifest>& previous_manifests() const;
  void record_manifest(const Manifest& m);        // kept on commit()
  void forget_node(const std::string& node);      // its manifest is removed on commit()

  // The leaves (re)issued by this run so far, "<owner>/<name>" -> reason ("new", "SAN set changed", ...).
  std::map<std::string, std::string> reissued() const;
  // The certificate (never the key) of every leaf the state holds now, by "<owner>/<name>". Called
  // before a plan issues anything, it is what the state directory holds (`kbundle certs`).
  std::map<std::string, std::string> leaf_certificates() const;
  bool read_only() const;

  // Rotations in progress (generator/rotation.h), kept IN state.json so that the record and the
  // pins of the rotation files change in one atomic commit.
  const std::vector<Rotation>& rotations() const;
  const Rotation* rotation(const std::string& name) const;  // nullptr: none in progress
  void set_rotation(const Rotation& r);                     // add or replace by name; kept on commit()
  void clear_rotation(const std::string& name);             // kept on commit()
  // Key material a rotation adds, below STATE/rotation/ ("etcd-ca.crt", "encryption-2.key", ...):
  // 0600, pinned in state.json as "rotation/<rel>" like the CAs and keys (a swapped, missing or
  // unpinned file there is refused on open, naming it), written at commit() with state.json as the
  // commit point (the rotate_signing_key() pattern). `rel` is [a-z0-9.-]+, starting with [a-z0-9].
  std::optional<std::string> rotation_file(const std::string& rel) const;
  void set_rotation_file(const std::string& rel, std::string content);  // kept on commit()
  void remove_rotation_file(const std::string& rel);                    // kept on commit()
  // Completing a rotation: the new material becomes the long-lived pinned file ("ca/etcd-ca.crt",
  // "keys/encryption.key", ...; one of the files pinned since init), its pin changing in the same
  // commit. The accessors above (ca(), service_account_key_pem(), ...) keep the old material until
  // the next open.
  void replace_pinned_file(const std::string& rel, std::string content);
  // gen calls this before commit(): every rotation in progress gets generated = true.
  void mark_rotations_generated();
  // The new CA of a CA rotation in progress (rotation files "<name>.crt" and "<name>.key"), nullptr
  // when there is none. generator/rotation.h's trust_bundle() and signing_ca() use it.
  const CertificateAuthority* rotation_ca(CaName which) const;

  // Writes newly issued leaves, changed serials and manifests (atomically), then the rotation
  // changes above: their new files beside the old ones (".next"), state.json (the commit point),
  // then the renames; open() finishes or discards a commit cut short. Leaves of owners not seen in
  // this run are kept. Throws kb::Error on a read-only State. `crash_at` (tests) is called with
  // each rotation step's name and may throw to stop there as a crash would.
  void commit(const std::function<void(const std::string& step)>& crash_at = {});

 private:
  State() = default;
  static std::unique_ptr<State> blank(const std::string& dir, std::time_t now);  // dir normalized, nothing read
  void commit_rotations(const std::function<void(const std::string& step)>& crash_at);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string dir_, cluster_id_;
  bool created_ = false;
  std::string sa_key_pem_, sa_pub_pem_, encryption_key_b64_, signing_key_pem_, signing_pub_pem_;
  RolloverChain rollover_;
  std::string note_;
};

}  // namespace kb
