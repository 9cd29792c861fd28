#include "base/etcd_backup.h"

#include <catch2/catch.hpp>
#include <unistd.h>

#include "base/atomic_file.h"
#include "base/etcd_backup_test_util.h"
#include "base/hash.h"
#include "base/temp_dir.h"

using namespace kb;

TEST_CASE("a snapshot's own integrity hash is checked offline; damage of every kind is named", "[etcd_backup]") {
  TempDir tmp;
  const std::string good = tmp.path + "/good.db";
  write_file_atomic(good, fake_etcd_snapshot(), 0600);
  CHECK(etcd_snapshot_problem(good).empty());

  std::string s = fake_etcd_snapshot();
  auto bad = [&](const std::string& name, const std::string& bytes) {
    std::string p = tmp.path + "/" + name;
    write_file_atomic(p, bytes, 0600);
    std::string why = etcd_snapshot_problem(p);
    INFO(name << ": " << why);
    CHECK(why.find(p) == 0);
    return why;
  };
  std::string flipped = s;
  flipped[1000] ^= 1;
  CHECK(bad("flipped.db", flipped).find("integrity hash mismatch") != std::string::npos);
  std::string tail = s;
  tail[s.size() - 1] ^= 1;
  CHECK(bad("tail.db", tail).find("integrity hash mismatch") != std::string::npos);
  CHECK(bad("truncated.db", s.substr(0, s.size() - 100)).find("truncated") != std::string::npos);
  CHECK(bad("cut-at-page.db", s.substr(0, 2048)).find("truncated") != std::string::npos);
  CHECK(bad("no-hash.db", s.substr(0, s.size() - 32)).find("truncated") != std::string::npos);
  CHECK(bad("empty.db", "").find("truncated") != std::string::npos);
  std::string text(8 * 512 + 32, 'x');
  CHECK(bad("text.db", text).find("no bbolt database header") != std::string::npos);
  CHECK(etcd_snapshot_problem(tmp.path + "/missing.db").find("cannot open") != std::string::npos);
  CHECK(etcd_snapshot_problem(tmp.path).find("not a regular file") != std::string::npos);
  ::symlink(good.c_str(), (tmp.path + "/link.db").c_str());
  CHECK(etcd_snapshot_problem(tmp.path + "/link.db").find("cannot open") != std::string::npos);
}

TEST_CASE("backup directories: only a directory of its own, outside the system's and kbundle's", "[etcd_backup]") {
  for (const char* ok : {"/var/backups/etcd", "/srv/etcd-backups", "/mnt/backup/etcd.snapshots", "/data/etcd_1"})
    CHECK(backup_dir_problem(ok).empty());
  for (const char* no : {"", "var/backups", "/", "/var", "/var/backups/", "/var//backups", "/var/backups/../lib/etcd",
                         "/var/./backups", "/etc/etcd/backups", "/var/lib/etcd", "/var/lib/etcd/member", "/usr/local",
                         "/var/lib/kbundle/x", "/proc/self", "/tmp/etcd", "/var/backups/et cd", "/var/backups/e\ntcd",
                         "/var/backups/$(reboot)", "/var/backups/e*"}) {
    INFO(no);
    CHECK_FALSE(backup_dir_problem(no).empty());
  }
  CHECK_FALSE(backup_dir_problem("/var/" + std::string(250, 'a')).empty());
}

TEST_CASE("snapshot names: only exactly what the installer writes is recognised", "[etcd_backup]") {
  const int64_t t = 1796300000;  // 2026-12-03T...
  std::string name = snapshot_file_name("control-0", t);
  CHECK(name.rfind("etcd-control-0-", 0) == 0);
  CHECK(snapshot_name_time("control-0", name) == t);
  CHECK_FALSE(snapshot_name_time("control-1", name));
  CHECK_FALSE(snapshot_name_time("control", name));
  for (const char* no : {"etcd-control-0-20261203T120000Z.db.sha256", "etcd-control-0-20261203T120000Z.db.part",
                         "etcd-control-0-20261203T120000Z", "Etcd-control-0-20261203T120000Z.db",
                         "etcd-control-0-20261203t120000Z.db", "etcd-control-0-2026120xT120000Z.db",
                         "etcd-control-0-20260231T120000Z.db", "etcd-control-0-20261203T250000Z.db",
                         "etcd-control-0-+0261203T120000Z.db", "my-backup.db", "../etcd-control-0-20261203T120000Z.db",
                         ".etcd-control-0-20261203T120000Z.db", "etcd-control-0-20261203T120000Z.dbx"}) {
    INFO(no);
    CHECK_FALSE(snapshot_name_time("control-0", no));
  }
  CHECK(snapshot_name_time("control-0", "etcd-control-0-20261203T120000Z.db"));
}
