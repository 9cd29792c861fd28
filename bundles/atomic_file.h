#pragma once
// Atomic file and directory writes (leveldb's recipe): write a temp file in the
// target's directory, fsync it, rename it over the target, fsync the directory.
// A crash leaves either the old file or the new one, never a mix.

#include <string>
#include <string_view>
#include <sys/types.h>

namespace kb {

// Writes `content` to `path` atomically with exactly `mode` (umask is ignored).
// Throws kb::Error naming the path and the cause; on failure the target is untouched.
void write_file_atomic(const std::string& path, std::string_view content, mode_t mode);

// A file being written: commit() publishes it under its final name; destroying
// it before commit() removes the temp file (ccache's AtomicFile).
class AtomicFile {
 public:
  AtomicFile(std::string path, mode_t mode);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::string_view data);
  int fd() const { return fd_; }
  const std::string& temp_path() const { return temp_; }
  void commit();

 private:
  std::string path_, temp_;
  mode_t mode_;
  int fd_ = -1;
  bool committed_ = false;
};

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
