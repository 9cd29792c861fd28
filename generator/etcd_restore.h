#pragma once
// etcd snapshots and `kbundle restore` on the generator side (docs/backup.md, G39).
// Every control-plane bundle carries the snapshot policy (/etc/etcd/backup.json) for the installer's
// `etcd snapshot`. `kbundle restore --snapshot FILE` is a gen whose control-plane bundles also carry
// the snapshot and what each member restores (/var/lib/etcd-restore/): every member from the same
// file, under a new cluster token, with the names and peer URLs of the topology's control plane,
// which must be the members STATE/etcd.json records (a restore never changes membership).

#include <cstdint>
#include <ctime>
#include <string>

#include "topology/topology.h"

namespace kb {

struct ClusterPlan;

// backup.json: {"version": 1, "dir", "keep", "maxAgeDays"}.
std::string render_etcd_backup_file(const EtcdBackup& backup);

struct EtcdRestoreInput {
  std::string snapshot_path;  // as given
  std::string sha256;
  uint64_t size = 0;
  std::string id;     // names this restore on the nodes: the installer restores each id once
  std::string token;  // the new --initial-cluster-token
  bool sidecar_checked = false;  // FILE.sha256 was beside it and matched
};

// Checks the snapshot before anything is written: a regular file (not a symlink), etcd's own
// integrity hash (base/etcd_backup.h), and FILE.sha256 when it is beside it (sha256sum's format:
// the digest, optionally followed by the name). Throws kb::Error naming the file, what is wrong and
// what to do. `now` makes the restore id.
EtcdRestoreInput check_restore_snapshot(const std::string& path, const std::string& cluster_name, std::time_t now);

// Adds the snapshot, restore.json and /var/lib/etcd-restore to every control-plane node of `plan`.
void add_restore_files(ClusterPlan& plan, const Topology& topology, const EtcdRestoreInput& in);

}  // namespace kb
