#include "base/atomic_file.h"

#include <cerrno>
#include <fcntl.h>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/file_io.h"

namespace kb {

namespace {

std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string s(8, '0');
  for (auto& c : s) c = digits[rng() % 36];
  return s;
}

}  // namespace

AtomicFile::AtomicFile(std::string path, mode_t mode) : path_(std::move(path)), mode_(mode) {
  auto slash = path_.find_last_of('/');
  std::string base = slash == std::string::npos ? path_ : path_.substr(slash + 1);
  std::string dir = parent_dir(path_);
  for (int attempt = 0; attempt < 10 && fd_ < 0; ++attempt) {
    temp_ = dir + "/." + base + ".tmp-" + random_suffix();
    // 0600 while writing so that a secret is never readable by others, even briefly.
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd_ < 0 && errno != EEXIST) throw_errno("cannot create " + temp_);
  }
  if (fd_ < 0) throw_errno("cannot create a temporary file next to " + path_);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
}

void AtomicFile::write(std::string_view data) { write_all(fd_, data, temp_); }

void AtomicFile::commit() {
  if (::fchmod(fd_, mode_) != 0) throw_errno("cannot chmod " + temp_);
  if (::fsync(fd_) != 0) throw_errno("cannot fsync " + temp_);
  if (::close(fd_) != 0) {
    fd_ = -1;
    throw_errno("cannot close " + temp_);
  }
  fd_ = -1;
  if (::rename(temp_.c_str(), path_.c_str()) != 0) throw_errno("cannot rename " + temp_ + " to " + path_);
  committed_ = true;
  fsync_dir(parent_dir(path_));
}

void write_file_atomic(const std::string& path, std::string_view content, mode_t mode) {
  AtomicFile f(path, mode);
  f.write(content);
  f.commit();
}

}  // namespace kb
