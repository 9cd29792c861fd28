#pragma once
// One process at a time in a directory (the generator's state, the binary cache): an exclusive
// flock(2) on <dir>/.lock, held while the DirLock lives and dropped by the kernel if the process
// dies, so a crash never leaves a stale lock. The file holds the holder's pid, for the message the
// refused process prints. It is the one file never replaced atomically: a new inode would be a
// second, independent lock.

#include <functional>
#include <string>
#include <sys/types.h>

#include "base/error.h"
#include "base/unique_fd.h"

namespace kb {

class DirLock {
 public:
  // What to throw when another process holds the lock; `holder_pid` is "" when unreadable.
  using BusyError = std::function<Error(const std::string& holder_pid)>;

  // Takes the lock on <dir>/.lock, creating it with `mode` (never through a symlink), and writes
  // our pid into it. Throws busy(pid) when it is held, kb::Error naming the file otherwise.
  DirLock(const std::string& dir, mode_t mode, const BusyError& busy);
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

  static constexpr const char* kFileName = ".lock";

 private:
  UniqueFd fd_;  // closing it releases the flock
};

}  // namespace kb
