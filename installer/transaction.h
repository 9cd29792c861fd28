#pragma once
// One switch between generations, as data: the transaction (which paths change
// and how), the backup of everything a transaction touches, the journal that records
// each step before it happens, and the restore that undoes a partial or whole switch.
// ("Transaction", not "plan": the generator's NodePlan is what a node gets, this is
// one apply on a node.)
// Restore is idempotent: it compares each path with its backup record first, so
// it can be interrupted and run again any number of times.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bundles/manifest.h"
#include "bundles/unit_restart.h"
#include "installer/fault.h"
#include "installer/layout.h"
#include "installer/live_fs.h"

namespace kb::installer {

// What a path looked like before the switch.
struct BackupRecord {
  std::string path;  // node path
  LiveState::Kind kind = LiveState::Kind::Absent;
  unsigned mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string sha256;  // File: content hash; Symlink: link target
};

struct Op {
  enum class Kind {
    Parent,  // a missing ancestor that the manifest does not list: created 0755 root
    Dir,     // a manifest directory: created, or its mode/owner set if the installer created it
    File,    // a manifest file: installed from staging
    Remove,  // in the installed manifest but not in the new one
  };
  Kind kind;
  std::string path;
  unsigned mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// What one apply changes on the node, computed before anything is written.
struct Transaction {
  std::vector<Op> ops;              // in execution order
  std::vector<BackupRecord> before; // one per op, same order
  std::vector<std::string> restart; // units to (re)start, in manifest order
  std::vector<std::string> removed_units;  // installed units the new manifest drops
};

// Compares `next` with the live root (and `installed`, the current generation's
// manifest, for removals and new units). Throws kb::Error when something on the
// node is in the way (a directory where a file goes, a symlink among the parents,
// an unknown owner); nothing has been written then. A directory that exists and is not
// in read_created_dirs() is left exactly as it is, whatever mode the manifest gives it.
Transaction make_transaction(const Layout& layout, const Manifest& next, const Manifest* installed);

// One installed path that no longer matches the installed manifest, and how ("missing", "content",
// "mode 0644 (want 0600)", "owner 0:0 (want etcd:etcd)", "is a directory").
struct Drift {
  std::string path;
  std::vector<std::string> why;
  std::string text() const;  // "content, mode 0644 (want 0600)"
};
// Every path of `installed` that differs on the node, in manifest order. A directory the installer
// did not create is compared by kind only: its mode and owner are never changed (G21). `verify`
// lists these, `status` counts them, and `apply` of the installed serial repairs them.
std::vector<Drift> find_drift(const Layout& layout, const Manifest& installed);

// The directories the installer created (layout.created_dirs()); empty when none are recorded.
std::set<std::string> read_created_dirs(const Layout& layout);

// Adds to the record the directories `records` (one apply's backups) say did not exist and that
// are directories now, drops recorded ones that are gone, and writes it atomically.
// Idempotent, so a commit finished by `recover` may run it again.
void record_created_dirs(const Layout& layout, const std::vector<BackupRecord>& records);

// unit_paths() and units_to_restart(): bundles/unit_restart.h (`kbundle plan` uses the same rule).

// Every bundle carries kbundle-recover.service: enabled, never started by apply (it runs
// `kbundle-installer recover` at boot, before the cluster's units, when a journal is left).
inline constexpr const char* kRecoverUnit = "kbundle-recover.service";
bool has_recover_unit(const Manifest& m);

struct Journal {
  std::string op = "apply";  // or "rollback"
  uint64_t serial = 0;       // the generation being installed
  std::optional<uint64_t> old_serial;  // the generation being left (none: first apply)
  std::string phase;         // backup, switch, services, health, commit, rollback
  std::vector<std::string> done;       // paths already switched
  std::vector<std::string> restarted;  // units restarted so far
  std::vector<std::string> removed_units;

  // The generation directory holding the backups this journal's restore uses.
  std::string backup_dir(const Layout& layout) const {
    return op == "apply" ? layout.generation(old_serial) : layout.generation(serial);
  }
};

// Atomic write + fsync of the journal (G8); kb::Error on failure.
void write_journal(const Layout& layout, const Journal& j);
std::optional<Journal> read_journal(const Layout& layout);

// Links (or copies, across file systems) every existing path of the transaction into
// `dir`/files and writes `dir`/backup.json last.
void take_backups(const Layout& layout, const std::string& dir, const Transaction& tx, const FaultPoints& faults);
std::vector<BackupRecord> read_backups(const std::string& dir);

// Makes every path of `records` what it was (see the header comment). Returns the paths it changed.
std::vector<std::string> restore_backups(const Layout& layout, const std::string& dir,
                                         const std::vector<BackupRecord>& records, const FaultPoints& faults);

// Runs one op of a transaction (idempotent); `staging` holds the verified payload.
void run_op(const Layout& layout, const Op& op, const std::string& staging);

nlohmann::json to_json(const BackupRecord& r);
BackupRecord backup_from_json(const nlohmann::json& j);

}  // namespace kb::installer
