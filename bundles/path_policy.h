#pragma once
// The path policy (bundles/FORMAT.md §5.3): what a validly signed bundle may manage on a node.
// A signature proves who made a bundle, not that it is harmless: this is the second gate, the
// same everywhere it is checked (kbundle-installer apply/verify before any write, kbundle
// inspect, and gen on its own plan). The allowed set is exactly what gen writes, by role.

#include <string>
#include <vector>

#include "bundles/manifest.h"

namespace kb {

struct PolicyViolation {
  std::string path;  // the entry's path, or the unit name for a rule about `units`
  std::string what;  // what is wrong, e.g. "outside the paths a bundle may manage"
  std::string rule;  // the rule it breaks, e.g. "allowed paths for role worker: ..."
  std::string message() const { return path + ": " + what + " (rule: " + rule + ")"; }
};

// Every violation of the policy in `m` (empty: the manifest passes), in entry order after the
// unit-list violations.
std::vector<PolicyViolation> path_policy_violations(const Manifest& m);

// Throws BundleError(PolicyViolation) whose text is `where` + ": " + the first violation's
// message (plus how many more there are) when `m` breaks the policy.
void check_path_policy(const Manifest& m, const std::string& where);

// The bootstrap objects and their applier's identity (docs/bootstrap.md): gen writes them into the
// designated control-plane node's bundle, the policy allows nothing else in that directory, and the
// installer applies them. No unit reads them, so changing them restarts nothing.
inline constexpr const char* kBootstrapDir = "/var/lib/kubernetes/bootstrap";
inline constexpr const char* kBootstrapObjects = "/var/lib/kubernetes/bootstrap/objects.json";
inline constexpr const char* kBootstrapCert = "/var/lib/kubernetes/bootstrap/kbundle-bootstrap.crt";
inline constexpr const char* kBootstrapKey = "/var/lib/kubernetes/bootstrap/kbundle-bootstrap.key";
// Phase 3 of an encryption-key rotation (docs/rotation.md): on the designated node, the installer
// rewrites every Secret through the API with the bootstrap identity once the node is healthy.
inline constexpr const char* kReencryptRequestFile = "/var/lib/kubernetes/reencrypt-secrets.json";

// etcd membership (docs/etcd.md): every control-plane bundle carries this file for its installer
// (its own name and peer URL, the members, the members to remove, the epoch); the installer reads
// it, no unit does, so changing it restarts nothing. The installer reaches the other members'
// JSON gateway with the node's etcd peer certificate (clientAuth and serverAuth) and etcd's CA.
inline constexpr const char* kEtcdMembershipFile = "/etc/etcd/membership.json";
inline constexpr const char* kEtcdCaCertFile = "/etc/etcd/ca.crt";
inline constexpr const char* kEtcdPeerCertFile = "/etc/etcd/peer.crt";
inline constexpr const char* kEtcdPeerKeyFile = "/etc/etcd/peer.key";
inline constexpr const char* kEtcdDataDirPath = "/var/lib/etcd";

// Certificate expiry metrics (docs/certs.md): every bundle carries a timer (in its units, last) and
// the oneshot service it starts, which runs `kbundle-installer status --metrics-file` into
// node_exporter's textfile directory when that directory exists.
inline constexpr const char* kCertMetricsTimerUnit = "kbundle-cert-metrics.timer";
inline constexpr const char* kCertMetricsServiceFile = "/etc/systemd/system/kbundle-cert-metrics.service";
// etcd snapshots (docs/backup.md): every control-plane bundle carries the backup policy (read by
// `kbundle-installer etcd snapshot`, which etcd-snapshot.timer starts through etcd-snapshot.service,
// a unit file the timer names but the manifest's units do not list). A restore bundle (`kbundle
// restore`) also carries the snapshot and what to restore in kEtcdRestoreDir; the installer restores
// once per restore id, never on a re-apply.
inline constexpr const char* kEtcdBackupFile = "/etc/etcd/backup.json";
inline constexpr const char* kEtcdSnapshotServiceFile = "/etc/systemd/system/etcd-snapshot.service";
inline constexpr const char* kEtcdSnapshotTimerUnit = "etcd-snapshot.timer";
inline constexpr const char* kEtcdRestoreDir = "/var/lib/etcd-restore";
inline constexpr const char* kEtcdRestoreSnapshot = "/var/lib/etcd-restore/snapshot.db";
inline constexpr const char* kEtcdRestoreSpec = "/var/lib/etcd-restore/restore.json";

// True when `path` is `prefix` or lies below it, compared by path components
// ("/etc/kubernetesX" is not under "/etc/kubernetes").
bool path_is_under(const std::string& path, const std::string& prefix);

}  // namespace kb
