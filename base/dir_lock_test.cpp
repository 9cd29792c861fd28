#include "base/temp_dir.h"
#include "base/dir_lock.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file_io.h"

using namespace kb;

namespace {

using kb::TempDir;

DirLock::BusyError busy_with_pid() {
  return [](const std::string& pid) { return Error("busy, held by pid " + pid); };
}

}  // namespace

TEST_CASE("DirLock refuses a second holder, naming the first one's pid, until released", "[dir_lock]") {
  TempDir dir;
  {
    DirLock first(dir.path, 0600, busy_with_pid());
    // flock locks belong to the open file, so a second open in this process is refused too.
    CHECK_THROWS_WITH(DirLock(dir.path, 0600, busy_with_pid()), "busy, held by pid " + std::to_string(::getpid()));
    CHECK(read_file(dir.path + "/.lock") == std::to_string(::getpid()) + "\n");
  }
  CHECK_NOTHROW(DirLock(dir.path, 0600, busy_with_pid()));
}

TEST_CASE("DirLock creates the lock file with the mode asked for", "[dir_lock]") {
  TempDir dir;
  DirLock lock(dir.path, 0644, busy_with_pid());
  struct stat st{};
  REQUIRE(::stat((dir.path + "/.lock").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0644);
}

TEST_CASE("DirLock names the lock file when it cannot open it", "[dir_lock]") {
  TempDir dir;
  std::filesystem::create_symlink(dir.path + "/elsewhere", dir.path + "/.lock");  // never followed
  CHECK_THROWS_WITH(DirLock(dir.path, 0600, busy_with_pid()), Catch::StartsWith("cannot open lock file " + dir.path + "/.lock"));
}
