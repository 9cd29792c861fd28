#include "base/dir_lock.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kb {

namespace {

std::string read_pid(int fd) {
  char buf[32] = {};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  size_t begin = pid.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return pid.substr(begin, pid.find_last_not_of(" \t\r\n") - begin + 1);
}

int open_lock_file(const std::string& path, mode_t mode) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) throw_errno("cannot open lock file " + path);
  return fd;
}

}  // namespace

DirLock::DirLock(const std::string& dir, mode_t mode, const BusyError& busy)
    : fd_(open_lock_file(dir + "/" + kFileName, mode)) {
  const std::string path = dir + "/" + kFileName;
  if (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) throw busy(read_pid(fd_.get()));
    throw_errno("cannot lock " + path);
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::fchmod(fd_.get(), mode) != 0 || ::ftruncate(fd_.get(), 0) != 0 ||
      ::pwrite(fd_.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
    throw_errno("cannot write lock file " + path);
}

}  // namespace kb
