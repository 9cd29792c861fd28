#include "bundles/atomic_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <random>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundles/error.h"

namespace kb {

void throw_errno(const std::string& what) { throw Error(what + ": " + std::strerror(errno)); }

namespace {

std::string dir_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string s(8, '0');
  for (auto& c : s) c = digits[rng() % 36];
  return s;
}

void write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write " + path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

AtomicFile::AtomicFile(std::string path, mode_t mode) : path_(std::move(path)), mode_(mode) {
  auto slash = path_.find_last_of('/');
  std::string base = slash == std::string::npos ? path_ : path_.substr(slash + 1);
  std::string dir = dir_of(path_);
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
  fsync_dir(dir_of(path_));
}

void write_file_atomic(const std::string& path, std::string_view content, mode_t mode) {
  AtomicFile f(path, mode);
  f.write(content);
  f.commit();
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open directory " + dir);
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  errno = saved;
  if (rc != 0) throw_errno("cannot fsync directory " + dir);
}

void make_dirs(const std::string& path, mode_t mode) {
  if (path.empty()) return;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw Error(path + ": exists and is not a directory");
    return;
  }
  std::string parent = dir_of(path);
  if (parent != path) make_dirs(parent, mode);
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) throw_errno("cannot create directory " + path);
  if (::chmod(path.c_str(), mode) != 0) throw_errno("cannot chmod " + path);
}

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot read " + path);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      ::close(fd);
      errno = saved;
      throw_errno("cannot read " + path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

void exchange_or_rename(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_EXCHANGE) == 0) {
    fsync_dir(dir_of(to));
    return;
  }
  if (errno != ENOENT) throw_errno("cannot swap " + from + " and " + to);
  if (::rename(from.c_str(), to.c_str()) != 0) throw_errno("cannot rename " + from + " to " + to);
  fsync_dir(dir_of(to));
}

void remove_tree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) throw Error("cannot remove " + path + ": " + ec.message());
}

}  // namespace kb
