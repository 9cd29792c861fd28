#include "generator/output_dir.h"

#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/file_io.h"

namespace fs = std::filesystem;

namespace kb {

namespace {

constexpr const char* kMarker = ".kbundle-output";

std::string parent_of(const std::string& dir) {
  fs::path p = fs::absolute(fs::path(dir)).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();
  return p.parent_path().string();
}

std::string base_of(const std::string& dir) {
  fs::path p = fs::absolute(fs::path(dir)).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();
  return p.filename().string();
}

void link_tree(const fs::path& from, const fs::path& to) {
  if (fs::is_directory(fs::symlink_status(from))) {
    make_dirs(to.string(), 0700);
    for (const auto& e : fs::directory_iterator(from)) link_tree(e.path(), to / e.path().filename());
  } else if (::link(from.c_str(), to.c_str()) != 0) {
    throw_errno("cannot link " + from.string() + " into the new output");
  }
}

}  // namespace

OutputDir::OutputDir(std::string dir) : dir_(std::move(dir)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  struct stat st;
  if (::lstat(dir_.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw Error(dir_ + ": exists and is not a directory; choose another --out");
    bool empty = fs::is_empty(dir_);
    if (!empty && ::access((dir_ + "/" + kMarker).c_str(), F_OK) != 0)
      throw Error(dir_ + ": not empty and not made by kbundle (no " + kMarker +
                  "); choose another --out or empty it first");
  } else if (errno != ENOENT) {
    throw_errno("cannot use output directory " + dir_);
  }
  std::string parent = parent_of(dir_);
  make_dirs(parent, 0755);
  // Stale staging directories of a crashed run are ours to remove.
  std::string prefix = "." + base_of(dir_) + ".staging-";
  for (const auto& e : fs::directory_iterator(parent))
    if (e.path().filename().string().rfind(prefix, 0) == 0) remove_tree(e.path().string());
  staging_ = parent + "/" + prefix + std::to_string(::getpid());
  make_dirs(staging_, 0700);
  write(kMarker, "This directory is written by kbundle gen and replaced as a whole on every run.\n", 0644);
}

OutputDir::~OutputDir() {
  if (!committed_) {
    try {
      remove_tree(staging_);
    } catch (...) {  // best effort: the next run removes stale staging directories
    }
  }
}

std::string OutputDir::staged_path(const std::string& relative) {
  std::string path = staging_ + "/" + relative;
  make_dirs(fs::path(path).parent_path().string(), 0700);
  return path;
}

void OutputDir::write(const std::string& relative, std::string_view content, unsigned mode) {
  std::string path = staged_path(relative);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw_errno("cannot create " + path);
  try {
    write_all(fd, content, path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (::fchmod(fd, mode) != 0 || ::close(fd) != 0) throw_errno("cannot finish " + path);
}

void OutputDir::keep_unwritten_entries() {
  if (!fs::is_directory(dir_)) return;
  for (const auto& e : fs::directory_iterator(dir_)) {
    fs::path target = fs::path(staging_) / e.path().filename();
    if (!fs::exists(fs::symlink_status(target))) link_tree(e.path(), target);
  }
}

void OutputDir::commit() {
  // One syncfs instead of an fsync per file: thousands of files for a large cluster.
  int fd = ::open(staging_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open " + staging_);
  int rc = ::syncfs(fd);
  ::close(fd);
  if (rc != 0) throw_errno("cannot sync " + staging_);
  exchange_or_rename(staging_, dir_);
  committed_ = true;
  // After an exchange the old output sits at the staging path.
  remove_tree(staging_);
}

}  // namespace kb
