#pragma once
// Small POSIX file helpers shared by every program. Each throws kb::Error naming the path and
// the cause. Writes that must survive a crash go through base/atomic_file.h.

#include <string>
#include <string_view>
#include <sys/types.h>

namespace kb {

// The directory part of `path`: "." without a slash, "/" for a top-level name.
std::string parent_dir(const std::string& path);

// Writes all of `data` to `fd`, retrying short writes and EINTR; `path` names it in errors.
void write_all(int fd, std::string_view data, const std::string& path);

// fsync a directory so that a rename inside it is durable.
void fsync_dir(const std::string& dir);

// mkdir -p with `mode` for every directory it creates (existing ones are left as they are).
void make_dirs(const std::string& path, mode_t mode);

// Reads a whole file; throws kb::Error naming the path on failure.
std::string read_file(const std::string& path);

// Atomically swaps two existing paths (renameat2 RENAME_EXCHANGE), or renames
// `from` to `to` when `to` does not exist. Both must be on one file system.
void exchange_or_rename(const std::string& from, const std::string& to);

// rm -rf; a missing path is not an error.
void remove_tree(const std::string& path);

}  // namespace kb
