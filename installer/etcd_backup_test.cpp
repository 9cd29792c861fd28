#include "installer/etcd_backup.h"

#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "base/atomic_file.h"
#include "base/etcd_backup.h"
#include "base/file_io.h"
#include "base/temp_dir.h"
#include "bundles/path_policy.h"

using namespace kb;
using namespace kb::installer;

namespace {

constexpr int64_t kDay = 86400;
constexpr int64_t kNow = 1796300000;

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

bool exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

// Writes a snapshot pair as the installer names it, `age` seconds before kNow.
std::string put(const std::string& dir, const std::string& node, int64_t age, bool sha = true) {
  std::string name = snapshot_file_name(node, kNow - age);
  write_file_atomic(dir + "/" + name, "db", 0600);
  if (sha) write_file_atomic(dir + "/" + name + ".sha256", "x  " + name + "\n", 0600);
  return name;
}

}  // namespace

TEST_CASE("pruning keeps the newest `keep` within maxAgeDays, and always the newest", "[etcd_backup]") {
  std::vector<std::pair<std::string, int64_t>> s;
  for (int i = 0; i < 10; ++i) s.emplace_back("s" + std::to_string(i), kNow - i * 3600);  // hourly, s0 newest
  CHECK(snapshots_to_prune(s, 24, 7, kNow).empty());
  CHECK(sorted(snapshots_to_prune(s, 3, 7, kNow)) == sorted({"s3", "s4", "s5", "s6", "s7", "s8", "s9"}));
  CHECK(sorted(snapshots_to_prune(s, 1, 7, kNow)).size() == 9);
  // Order of the input does not matter: the times decide.
  std::reverse(s.begin(), s.end());
  CHECK(sorted(snapshots_to_prune(s, 3, 7, kNow)) == sorted({"s3", "s4", "s5", "s6", "s7", "s8", "s9"}));
  // By age: older than maxAgeDays goes, even within keep.
  std::vector<std::pair<std::string, int64_t>> days{{"d0", kNow}, {"d3", kNow - 3 * kDay}, {"d8", kNow - 8 * kDay}};
  CHECK(snapshots_to_prune(days, 24, 7, kNow) == std::vector<std::string>{"d8"});
  // The newest stays even when it is too old (the timer stopped): never left with nothing.
  std::vector<std::pair<std::string, int64_t>> old{{"o1", kNow - 30 * kDay}, {"o2", kNow - 40 * kDay}};
  CHECK(snapshots_to_prune(old, 24, 7, kNow) == std::vector<std::string>{"o2"});
  CHECK(snapshots_to_prune({{"only", kNow - 99 * kDay}}, 1, 1, kNow).empty());
  CHECK(snapshots_to_prune({}, 1, 1, kNow).empty());
}

TEST_CASE("pruning a directory removes only this node's snapshots, never through symlinks", "[etcd_backup]") {
  TempDir tmp;
  const std::string dir = tmp.path;
  std::vector<std::string> mine;
  for (int i = 0; i < 5; ++i) mine.push_back(put(dir, "control-0", i * 3600));
  std::string ancient = put(dir, "control-0", 30 * kDay);
  std::string other_node = put(dir, "control-1", 40 * kDay);  // another node's (a shared directory): not ours
  // Files we would never have made, whatever their age.
  for (const char* n : {"my-backup.db", "etcd-control-0-20200101T000000Z.db.bak", "etcd-control-0-20200231T000000Z.db",
                        "etcd-control-0-2020010T000000Z.db", "notes.txt"})
    write_file_atomic(dir + "/" + n, "keep me", 0600);
  // A symlink with our name pattern, pointing at a file outside: neither followed nor removed.
  write_file_atomic(tmp.path + "/../kb-prune-victim-" + std::to_string(::getpid()), "victim", 0600);
  const std::string victim = parent_dir(tmp.path) + "/kb-prune-victim-" + std::to_string(::getpid());
  std::string link = snapshot_file_name("control-0", kNow - 50 * kDay);
  REQUIRE(::symlink(victim.c_str(), (dir + "/" + link).c_str()) == 0);
  // A directory with our name pattern.
  std::string dname = snapshot_file_name("control-0", kNow - 60 * kDay);
  make_dirs(dir + "/" + dname, 0700);
  // A .sha256 whose snapshot is gone (pruned before a crash) goes; a snapshot without one counts.
  std::string orphan = snapshot_file_name("control-0", kNow - 2 * kDay) + ".sha256";
  write_file_atomic(dir + "/" + orphan, "x", 0600);
  std::string no_sha = put(dir, "control-0", 20, false);

  auto removed = prune_snapshots(dir, "control-0", 3, 7, kNow);
  // Kept: the 3 newest (no_sha at 20 s, mine[0] at 0 s, mine[1] at 1 h).
  CHECK(exists(dir + "/" + mine[0]));
  CHECK(exists(dir + "/" + no_sha));
  CHECK(exists(dir + "/" + mine[1]));
  CHECK(exists(dir + "/" + mine[1] + ".sha256"));
  for (size_t i = 2; i < mine.size(); ++i) {
    CHECK_FALSE(exists(dir + "/" + mine[i]));
    CHECK_FALSE(exists(dir + "/" + mine[i] + ".sha256"));
  }
  CHECK_FALSE(exists(dir + "/" + ancient));
  CHECK_FALSE(exists(dir + "/" + orphan));
  CHECK(exists(dir + "/" + other_node));
  for (const char* n : {"my-backup.db", "etcd-control-0-20200101T000000Z.db.bak", "etcd-control-0-20200231T000000Z.db",
                        "etcd-control-0-2020010T000000Z.db", "notes.txt"})
    CHECK(exists(dir + "/" + n));
  CHECK(exists(dir + "/" + link));
  CHECK(read_file(victim) == "victim");
  CHECK(exists(dir + "/" + dname));
  CHECK(removed.size() == 2 * 3 + 2 + 1);  // 3 pairs, the ancient pair, the orphan
  ::unlink(victim.c_str());
}

TEST_CASE("backup.json: every hostile or malformed policy is refused, naming the field", "[etcd_backup]") {
  const std::string where = "/etc/etcd/backup.json";
  auto p = parse_backup_policy(R"({"version": 1, "dir": "/var/backups/etcd", "keep": 24, "maxAgeDays": 7})", where);
  CHECK(p.dir == "/var/backups/etcd");
  CHECK(p.keep == 24);
  CHECK(p.max_age_days == 7);
  const std::pair<const char*, const char*> bad[] = {
      {"", "not a JSON object"},
      {"[]", "not a JSON object"},
      {R"({"version": 2, "dir": "/var/backups/etcd", "keep": 1, "maxAgeDays": 1})", "version"},
      {R"({"version": 1, "dir": "/etc", "keep": 1, "maxAgeDays": 1})", "dir"},
      {R"({"version": 1, "dir": "/var/lib/etcd/x", "keep": 1, "maxAgeDays": 1})", "dir"},
      {R"({"version": 1, "dir": "/var/backups/../../etc", "keep": 1, "maxAgeDays": 1})", "dir"},
      {R"({"version": 1, "dir": "var/backups", "keep": 1, "maxAgeDays": 1})", "dir"},
      {R"({"version": 1, "dir": 7, "keep": 1, "maxAgeDays": 1})", "dir"},
      {R"({"version": 1, "dir": "/var/backups/etcd", "keep": 0, "maxAgeDays": 1})", "keep"},
      {R"({"version": 1, "dir": "/var/backups/etcd", "keep": -5, "maxAgeDays": 1})", "keep"},
      {R"({"version": 1, "dir": "/var/backups/etcd", "keep": 1.5, "maxAgeDays": 1})", "keep"},
      {R"({"version": 1, "dir": "/var/backups/etcd", "keep": "24", "maxAgeDays": 1})", "keep"},
      {R"({"version": 1, "dir": "/var/backups/etcd", "keep": 1, "maxAgeDays": 99999})", "maxAgeDays"},
      {R"({"version": 1, "dir": "/var/backups/etcd", "keep": 1})", "maxAgeDays"},
      {R"({"version": 1, "dir": "/var/backups/etcd", "keep": 1, "maxAgeDays": 1, "exec": "rm -rf /"})", "exec"},
  };
  for (const auto& [text, field] : bad) {
    INFO(text);
    try {
      parse_backup_policy(text, where);
      FAIL("accepted");
    } catch (const InstallerError& e) {
      CHECK(e.code() == ExitCode::BadBundle);
      CHECK(std::string(e.what()).find(where) == 0);
      CHECK(std::string(e.what()).find(field) != std::string::npos);
    }
  }
  CHECK_THROWS_AS(parse_backup_policy(std::string(70000, ' '), where), InstallerError);
}

TEST_CASE("restore.json: hostile specs are refused before anything is written", "[etcd_backup]") {
  Manifest m;
  m.node_name = "control-0";
  m.private_ip = "10.0.0.1";
  ManifestEntry snap;
  snap.path = kEtcdRestoreSnapshot;
  snap.sha256 = std::string(64, 'a');
  m.entries.push_back(snap);
  auto spec = [](const std::string& over) {
    std::string s = R"({"version": 1, "id": "20261203t120000z-abc", "token": "kthw-etcd-restore-1", "name": "control-0",)"
                    R"( "peerURL": "https://10.0.0.1:2380", "initialCluster": "control-0=https://10.0.0.1:2380,control-1=https://10.0.0.2:2380",)"
                    R"( "snapshotSha256": ")" + std::string(64, 'a') + "\"";
    return s + over + "}";
  };
  RestoreSpec ok = parse_restore_spec(spec(""), "w", m);
  CHECK(ok.token == "kthw-etcd-restore-1");
  // Later keys win in nlohmann's parser: each case overrides one field.
  const std::pair<std::string, const char*> bad[] = {
      {R"(, "id": "../../x")", "id"},
      {R"(, "id": "")", "id"},
      {R"(, "token": "a b")", "token"},
      {R"(, "token": "--force-new-cluster")", ""},
      {R"(, "name": "control-1")", "name"},
      {R"(, "peerURL": "https://10.0.0.2:2380")", "peerURL"},
      {R"(, "peerURL": "http://10.0.0.1:2380")", "peerURL"},
      {R"(, "initialCluster": "control-1=https://10.0.0.2:2380")", "initialCluster"},
      {R"(, "initialCluster": "control-0=https://10.0.0.1:2380,x")", "initialCluster"},
      {R"(, "initialCluster": "control-0=https://10.0.0.1:2380 --data-dir=/")", "initialCluster"},
      {R"(, "snapshotSha256": ")" + std::string(64, 'b') + "\"", "snapshotSha256"},
      {R"(, "extra": 1)", "extra"},
      {R"(, "version": 2)", "version"},
  };
  for (const auto& [over, field] : bad) {
    INFO(over);
    try {
      parse_restore_spec(spec(over), "w", m);
      // "--force-new-cluster" as a token is only letters and '-': harmless as the value of
      // --initial-cluster-token=, so it passes; every other case must not.
      CHECK(std::string(field).empty());
    } catch (const InstallerError& e) {
      CHECK(e.code() == ExitCode::BadBundle);
      CHECK(std::string(e.what()).find(field) != std::string::npos);
    }
  }
  Manifest none = m;
  none.entries.clear();
  CHECK_THROWS_AS(parse_restore_spec(spec(""), "w", none), InstallerError);
}
