#pragma once
// etcd snapshots (docs/backup.md): the rules both programs apply to them. `kbundle` checks a
// snapshot before putting it in restore bundles and validates the topology's backup directory;
// `kbundle-installer` checks both again on the node (a bundle's backup.json is read as hostile
// input) and names its snapshots so that pruning never touches a file it did not make.

#include <cstdint>
#include <optional>
#include <string>

namespace kb {

// What `etcdctl snapshot save` writes (etcd's snapshot package, checked against 3.4 and 3.5): a
// bbolt file (meta page magic 0xED0CDAED at byte 16) followed by the SHA-256 of everything before
// it, so that its size modulo 512 is 32. `etcdctl snapshot restore` checks that hash unless told
// --skip-hash-check, which kbundle never passes. "" when the file is such a snapshot, otherwise
// why not ("truncated or not a snapshot: ...", "integrity hash mismatch: ..."), naming `path`.
std::string etcd_snapshot_problem(const std::string& path);

// Where snapshots may be kept: an absolute, normalised path of [A-Za-z0-9._-] components, at
// least two of them, outside the system's and kbundle's own directories (/etc, /usr, /proc,
// /var/lib/etcd, /var/lib/kbundle, ...). "" when allowed, otherwise why not.
std::string backup_dir_problem(const std::string& dir);

// A snapshot the installer made: "etcd-<node>-<YYYYMMDDTHHMMSSZ>.db".
std::string snapshot_file_name(const std::string& node, int64_t unix_seconds);
// Its time when `name` is exactly such a name for `node` (and a real calendar time); else nothing.
std::optional<int64_t> snapshot_name_time(const std::string& node, const std::string& name);

}  // namespace kb
