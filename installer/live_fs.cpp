#include "installer/live_fs.h"

#include <cerrno>
#include <climits>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sstream>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/file_io.h"
#include "base/hash.h"
#include "base/unique_fd.h"

namespace kb::installer {

const char* to_string(LiveState::Kind k) {
  switch (k) {
    case LiveState::Kind::Absent: return "absent";
    case LiveState::Kind::File: return "file";
    case LiveState::Kind::Dir: return "directory";
    case LiveState::Kind::Symlink: return "symlink";
    case LiveState::Kind::Other: return "other";
  }
  return "?";
}

namespace {

// O_NOFOLLOW: a symlink that replaced the file since lstat() is refused, never followed.
std::string hash_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) throw_errno("cannot read " + path);
  return sha256_fd(fd.get(), path).sha256;
}

// name:x:id:... lines of a passwd or group file; a missing file is empty.
template <typename Id>
std::map<std::string, Id> read_ids(const std::string& path) {
  std::map<std::string, Id> out;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return out;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);) {
    auto a = line.find(':');
    if (a == std::string::npos) continue;
    auto b = line.find(':', a + 1);
    if (b == std::string::npos) continue;
    auto c = line.find(':', b + 1);
    std::string id = line.substr(b + 1, c == std::string::npos ? std::string::npos : c - b - 1);
    if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos || id.size() > 9) continue;
    out.emplace(line.substr(0, a), static_cast<Id>(std::stoul(id)));
  }
  return out;
}

}  // namespace

LiveState inspect(const std::string& path, bool hash) {
  LiveState s;
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return s;
    throw_errno("cannot stat " + path);
  }
  s.mode = st.st_mode & 07777;
  s.uid = st.st_uid;
  s.gid = st.st_gid;
  s.size = static_cast<uint64_t>(st.st_size);
  if (S_ISREG(st.st_mode)) {
    s.kind = LiveState::Kind::File;
    if (hash) s.sha256 = hash_file(path);
  } else if (S_ISDIR(st.st_mode)) {
    s.kind = LiveState::Kind::Dir;
  } else if (S_ISLNK(st.st_mode)) {
    s.kind = LiveState::Kind::Symlink;
    char buf[PATH_MAX];
    ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
    if (n < 0) throw_errno("cannot read link " + path);
    s.sha256.assign(buf, static_cast<size_t>(n));
  } else {
    s.kind = LiveState::Kind::Other;
  }
  return s;
}

Accounts::Accounts(const std::string& root)
    : users_(read_ids<uid_t>(root + "/etc/passwd")), groups_(read_ids<gid_t>(root + "/etc/group")) {
  users_.emplace("root", 0);
  groups_.emplace("root", 0);
}

uid_t Accounts::uid(const std::string& user) const {
  auto it = users_.find(user);
  if (it == users_.end()) throw Error("user \"" + user + "\": not in the node's /etc/passwd");
  return it->second;
}

gid_t Accounts::gid(const std::string& group) const {
  auto it = groups_.find(group);
  if (it == groups_.end()) throw Error("group \"" + group + "\": not in the node's /etc/group");
  return it->second;
}

void install_file(const std::string& src, const std::string& dest, unsigned mode, uid_t uid, gid_t gid) {
  UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (in.get() < 0) throw_errno("cannot read " + src);
  AtomicFile out(dest, mode);
  std::string buf(256 * 1024, '\0');
  for (;;) {
    ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot read " + src);
    }
    if (n == 0) break;
    out.write(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  // Owner before mode: chown may clear mode bits; commit() does fchmod, fsync, rename, fsync(dir).
  if (::fchown(out.fd(), uid, gid) != 0) throw_errno("cannot chown " + out.temp_path());
  out.commit();
}

void make_dir(const std::string& path, unsigned mode, uid_t uid, gid_t gid) {
  if (::mkdir(path.c_str(), 0700) != 0) throw_errno("cannot create directory " + path);
  set_dir_mode_owner(path, mode, uid, gid);
  fsync_dir(parent_dir(path));
}

void set_dir_mode_owner(const std::string& path, unsigned mode, uid_t uid, gid_t gid) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) throw_errno("cannot open " + path);
  if (::fchown(fd.get(), uid, gid) != 0 || ::fchmod(fd.get(), mode) != 0 || ::fsync(fd.get()) != 0)
    throw_errno("cannot set mode and owner of " + path);
}

void ensure_dir(const std::string& dir, unsigned mode, std::vector<std::string>* created) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw Error(dir + ": exists and is not a directory");
    return;
  }
  std::string parent = parent_dir(dir);
  if (parent != dir) ensure_dir(parent, 0755, created);
  if (::mkdir(dir.c_str(), 0700) != 0) throw_errno("cannot create directory " + dir);
  if (::chmod(dir.c_str(), mode) != 0) throw_errno("cannot chmod " + dir);
  if (created) created->push_back(dir);
  fsync_dir(parent);
}

FreeSpace free_space(const std::string& path) {
  std::string p = path;
  struct stat st;
  while (::stat(p.c_str(), &st) != 0 && p != "/" && p != ".") p = parent_dir(p);
  struct statvfs vfs;
  if (::statvfs(p.c_str(), &vfs) != 0) throw_errno("cannot statvfs " + p);
  FreeSpace f;
  f.block = vfs.f_frsize ? vfs.f_frsize : 4096;
  f.bytes = static_cast<uint64_t>(vfs.f_bavail) * f.block;
  f.inodes = vfs.f_files == 0 ? UINT64_MAX : static_cast<uint64_t>(vfs.f_favail);
  return f;
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d))
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) out.emplace_back(e->d_name);
  ::closedir(d);
  return out;
}

}  // namespace kb::installer
