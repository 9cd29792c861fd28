#include "base/etcd_backup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "base/hash.h"
#include "base/unique_fd.h"

namespace kb {

namespace {

constexpr uint64_t kHashSize = 32;
constexpr uint32_t kBoltMagic = 0xED0CDAED;

// Directories a snapshot must never be written into (or below): the system's, etcd's live data and
// kbundle's own. A backup directory there could overwrite what the node runs on.
constexpr const char* kForbiddenDirs[] = {"/bin",  "/boot", "/dev",         "/etc",           "/lib",
                                          "/lib32", "/lib64", "/proc",      "/root",          "/run",
                                          "/sbin", "/sys",  "/tmp",         "/usr",           "/var/tmp",
                                          "/var/lib/etcd", "/var/lib/kbundle", "/var/lib/kubernetes",
                                          "/var/lib/kubelet", "/var/lib/etcd-restore", "/var/run", "/var/log"};

bool under(const std::string& path, const std::string& prefix) {
  return path == prefix || (path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
                            path[prefix.size()] == '/');
}

}  // namespace

std::string etcd_snapshot_problem(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) return path + ": cannot open (" + std::strerror(errno) + ")";
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return path + ": cannot stat (" + std::strerror(errno) + ")";
  if (!S_ISREG(st.st_mode)) return path + ": not a regular file";
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 4096 + kHashSize || size % 512 != kHashSize)
    return path + ": truncated or not an etcd snapshot: " + std::to_string(size) +
           " bytes (a snapshot from `etcdctl snapshot save` is a bbolt file plus a 32-byte SHA-256, so its size "
           "modulo 512 is 32)";
  std::array<unsigned char, 20> head{};
  if (::pread(fd.get(), head.data(), head.size(), 0) != static_cast<ssize_t>(head.size()))
    return path + ": cannot read its header";
  uint32_t magic = head[16] | (head[17] << 8) | (head[18] << 16) | (static_cast<uint32_t>(head[19]) << 24);
  if (magic != kBoltMagic) return path + ": not an etcd snapshot (no bbolt database header)";
  Sha256 h;
  std::string buf(1 << 20, '\0');
  uint64_t left = size - kHashSize, off = 0;
  while (left > 0) {
    ssize_t n = ::pread(fd.get(), buf.data(), std::min<uint64_t>(left, buf.size()), static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return path + ": read error (" + std::string(n < 0 ? std::strerror(errno) : "short file") + ")";
    h.update(buf.data(), static_cast<size_t>(n));
    left -= static_cast<uint64_t>(n);
    off += static_cast<uint64_t>(n);
  }
  std::array<unsigned char, kHashSize> tail{};
  if (::pread(fd.get(), tail.data(), tail.size(), static_cast<off_t>(size - kHashSize)) != static_cast<ssize_t>(kHashSize))
    return path + ": cannot read its integrity hash";
  auto digest = h.digest();
  if (!std::equal(digest.begin(), digest.end(), tail.begin()))
    return path + ": integrity hash mismatch: the file was changed or damaged after `etcdctl snapshot save` wrote it (" +
           to_hex(tail.data(), tail.size()) + " recorded, " + to_hex(digest.data(), digest.size()) + " computed)";
  return "";
}

std::string backup_dir_problem(const std::string& dir) {
  if (dir.empty() || dir[0] != '/') return "'" + dir + "' is not an absolute path";
  if (dir.size() > 200) return "longer than 200 characters";
  size_t components = 0;
  for (size_t pos = 1; pos <= dir.size();) {
    size_t end = std::min(dir.find('/', pos), dir.size());
    std::string c = dir.substr(pos, end - pos);
    if (c.empty()) return "'" + dir + "' has an empty component (a '//' or a trailing '/')";
    if (c == "." || c == "..") return "'" + dir + "' has a '" + c + "' component";
    if (!std::all_of(c.begin(), c.end(), [](char ch) {
          return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                 ch == '_' || ch == '-';
        }))
      return "'" + dir + "' has a character other than letters, digits, '.', '_', '-' and '/'";
    ++components;
    pos = end + 1;
  }
  if (components < 2) return "'" + dir + "' is a top-level directory; use a directory of its own such as /var/backups/etcd";
  for (const char* f : kForbiddenDirs)
    if (under(dir, f)) return "'" + dir + "' lies in " + f + ", which a snapshot must never be written into";
  return "";
}

std::string snapshot_file_name(const std::string& node, int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  return "etcd-" + node + "-" + stamp + ".db";
}

std::optional<int64_t> snapshot_name_time(const std::string& node, const std::string& name) {
  const std::string prefix = "etcd-" + node + "-";
  // prefix + 8 digits + 'T' + 6 digits + 'Z' + ".db"
  if (name.size() != prefix.size() + 19 || name.compare(0, prefix.size(), prefix) != 0 || !name.ends_with(".db"))
    return std::nullopt;
  std::string stamp = name.substr(prefix.size(), 16);
  for (size_t i = 0; i < stamp.size(); ++i) {
    bool digit = stamp[i] >= '0' && stamp[i] <= '9';
    if (i == 8 ? stamp[i] != 'T' : i == 15 ? stamp[i] != 'Z' : !digit) return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = std::stoi(stamp.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(stamp.substr(4, 2)) - 1;
  tm.tm_mday = std::stoi(stamp.substr(6, 2));
  tm.tm_hour = std::stoi(stamp.substr(9, 2));
  tm.tm_min = std::stoi(stamp.substr(11, 2));
  tm.tm_sec = std::stoi(stamp.substr(13, 2));
  std::tm check = tm;
  int64_t t = timegm(&tm);
  // timegm normalises 2026-02-31 into March: such a name was not made by snapshot_file_name.
  if (tm.tm_year != check.tm_year || tm.tm_mon != check.tm_mon || tm.tm_mday != check.tm_mday ||
      tm.tm_hour != check.tm_hour || tm.tm_min != check.tm_min || tm.tm_sec != check.tm_sec)
    return std::nullopt;
  if (snapshot_file_name(node, t) != name) return std::nullopt;
  return t;
}

}  // namespace kb
