#pragma once
// Atomic file and directory writes (leveldb's recipe): write a temp file in the
// target's directory, fsync it, rename it over the target, fsync the directory.
// A crash leaves either the old file or the new one, never a mix.

#include <string>
#include <string_view>
#include <sys/types.h>

#include "base/file_io.h"

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

}  // namespace kb
