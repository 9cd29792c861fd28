#pragma once
// The installer's file-system primitives on the live root: what is at a path,
// owner names to ids (from the root's own /etc/passwd and /etc/group), copying
// a file into place atomically with mode and owner, and directory handling.

#include <map>
#include <string>
#include <sys/types.h>
#include <vector>

namespace kb::installer {

struct LiveState {
  enum class Kind { Absent, File, Dir, Symlink, Other };
  Kind kind = Kind::Absent;
  unsigned mode = 0;  // permission bits
  uid_t uid = 0;
  gid_t gid = 0;
  uint64_t size = 0;
  std::string sha256;  // File: content hash (when asked for); Symlink: the link target
};

const char* to_string(LiveState::Kind k);

// lstat()s `path` (a symlink is reported, never followed); hashes a regular file when `hash`.
LiveState inspect(const std::string& path, bool hash);

// User and group names of a root. "root" is 0 even when the root has no /etc/passwd.
class Accounts {
 public:
  explicit Accounts(const std::string& root);
  uid_t uid(const std::string& user) const;   // throws kb::Error for an unknown name
  gid_t gid(const std::string& group) const;

 private:
  std::map<std::string, uid_t> users_;
  std::map<std::string, gid_t> groups_;
};

// Copies `src` to `dest` through a temp file in dest's directory: write, fchown,
// fchmod (umask plays no part), fsync, rename, fsync of the directory.
void install_file(const std::string& src, const std::string& dest, unsigned mode, uid_t uid, gid_t gid);

// mkdir with exactly `mode` and owner (chmod after mkdir: umask plays no part), then fsync of the parent.
void make_dir(const std::string& path, unsigned mode, uid_t uid, gid_t gid);

// Sets mode and owner of an existing directory (never follows a symlink), then fsyncs it.
void set_dir_mode_owner(const std::string& path, unsigned mode, uid_t uid, gid_t gid);

// Creates `dir` with `mode` and any missing parents 0755; appends what it created to `created`.
void ensure_dir(const std::string& dir, unsigned mode, std::vector<std::string>* created = nullptr);

// Free bytes and inodes (as root sees them) on the file system holding `path`
// (the nearest existing ancestor).
struct FreeSpace {
  uint64_t bytes = 0;
  uint64_t inodes = 0;  // UINT64_MAX when the file system does not count inodes
  uint64_t block = 4096;
};
FreeSpace free_space(const std::string& path);

// Names in a directory (not "." or ".."); empty when it does not exist.
std::vector<std::string> list_dir(const std::string& dir);

}  // namespace kb::installer
