#pragma once
// etcd snapshots and restores on a control-plane node (docs/backup.md, G39).
//
// `kbundle-installer etcd snapshot`: run by etcd-snapshot.timer (through etcd-snapshot.service) or by
// hand. It reads the policy the bundle installed (/etc/etcd/backup.json, checked as hostile input),
// asks the local member for a snapshot with etcdctl over mutual TLS with the node's etcd peer
// certificate, writes it to a temp file in the backup directory, checks it (etcd's integrity hash,
// offline, and `snapshot status`), then publishes <name>.db (0600) and <name>.db.sha256 atomically and
// prunes by count and age: never the newest, never a file whose name it would not have made, never
// through a symlink.
//
// Restore (a bundle from `kbundle restore` carries /var/lib/etcd-restore/{snapshot.db,restore.json}):
// during apply, after the switch and before the services, once per restore id: stop etcd, check the
// snapshot again, `snapshot restore` it into a directory beside the data directory, move the old data
// directory aside (/var/lib/etcd.before-restore-<serial>, never deleted) and the restored one in; etcd
// then starts from it and the health gate decides. A failure puts the old data directory back and the
// apply rolls back. A journal (/var/lib/kbundle/etcd-restore.json) makes each step recoverable; the ids
// already restored are kept in /var/lib/kbundle/etcd-restores.json, so applying the bundle again (or a
// later one that still carries it) never restores twice.

#include <cstdint>
#include <string>
#include <vector>

#include "bundles/manifest.h"
#include "installer/installer.h"
#include "installer/run.h"

namespace kb::installer {

struct BackupPolicy {
  std::string dir;  // node path
  int keep = 24;
  int max_age_days = 7;
};
// Parses backup.json; InstallerError(BadBundle) naming `where` and the field for anything else.
BackupPolicy parse_backup_policy(const std::string& bytes, const std::string& where);

// Which snapshots pruning removes, given each complete snapshot's name and time: every one past
// the `keep` newest or older than `max_age_days`, never the newest. Pure.
std::vector<std::string> snapshots_to_prune(std::vector<std::pair<std::string, int64_t>> snapshots, int keep,
                                            int max_age_days, int64_t now);
// Prunes `dir` (an absolute path): only regular files named as snapshot_file_name() names this
// node's, with their .sha256; a .sha256 left without its snapshot goes too. Returns what it removed.
std::vector<std::string> prune_snapshots(const std::string& dir, const std::string& node, int keep, int max_age_days,
                                         int64_t now);

// `kbundle-installer etcd snapshot [--endpoint URL]`.
ExitCode etcd_snapshot(const Options& opt, const Hooks& hooks, Io io, const std::string& endpoint);

struct RestoreSpec {
  std::string id, token, name, peer_url, initial_cluster, snapshot_sha256;
};
// Parses restore.json and checks it against the manifest that installs it; InstallerError(BadBundle).
RestoreSpec parse_restore_spec(const std::string& bytes, const std::string& where, const Manifest& m);
// apply, after staging and before any live write: a restore bundle's spec and snapshot (etcd's
// integrity hash) are checked, so a corrupt or truncated snapshot changes nothing (exit 3).
void check_staged_etcd_restore(const Manifest& m, const std::string& staged_files, const std::string& bundle);

// A restore done by this apply, to undo if the apply fails.
struct EtcdRestore {
  bool active = false;
  std::string id;
};
// After the switch, before the services: restores when the bundle asks and this id was not restored
// yet; adds etcd.service to `restart`. Throws (after putting the old data back) on failure.
EtcdRestore etcd_restore_before_start(Run& r, const Manifest& m, std::vector<std::string>& restart);
// Undo of this apply's restore (and of one found in the journal by recovery): stops etcd, puts the
// old data directory back. Idempotent.
void etcd_restore_undo(Run& r);
// The apply commits: the id counts as restored, the journal goes. Idempotent.
void etcd_restore_commit(Run& r);

}  // namespace kb::installer
