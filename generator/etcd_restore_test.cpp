#include "generator/etcd_restore.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/etcd_backup_test_util.h"
#include "base/hash.h"
#include "base/temp_dir.h"
#include "bundles/path_policy.h"
#include "generator/plan.h"

using namespace kb;

namespace {

std::string refusal(const std::string& path) {
  try {
    check_restore_snapshot(path, "kthw", 1796300000);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("restore: the snapshot is checked before anything is written", "[etcd_restore]") {
  TempDir tmp;
  const std::string snap = tmp / "s.db";
  write_file_atomic(snap, fake_etcd_snapshot(), 0600);
  EtcdRestoreInput in = check_restore_snapshot(snap, "kthw", 1796300000);
  CHECK(in.sha256 == sha256_hex(fake_etcd_snapshot()));
  CHECK(in.size == fake_etcd_snapshot().size());
  CHECK_FALSE(in.sidecar_checked);
  CHECK(in.token.rfind("kthw-etcd-restore-", 0) == 0);
  CHECK(in.token != "kthw-etcd");
  CHECK(in.id.find(in.sha256.substr(0, 12)) != std::string::npos);
  // A different time gives another id (the installer restores each id once).
  CHECK(check_restore_snapshot(snap, "kthw", 1796300001).id != in.id);

  // sha256sum's output beside it must agree.
  write_file_atomic(snap + ".sha256", in.sha256 + "  s.db\n", 0600);
  CHECK(check_restore_snapshot(snap, "kthw", 1796300000).sidecar_checked);
  write_file_atomic(snap + ".sha256", in.sha256 + "\n", 0600);
  CHECK(check_restore_snapshot(snap, "kthw", 1796300000).sidecar_checked);
  write_file_atomic(snap + ".sha256", std::string(64, '0') + "  s.db\n", 0600);
  CHECK(refusal(snap).find("the snapshot was changed or replaced") != std::string::npos);
  write_file_atomic(snap + ".sha256", "not a digest\n", 0600);
  CHECK(refusal(snap).find("does not start with a lowercase sha256 digest") != std::string::npos);
  write_file_atomic(snap + ".sha256", std::string(8000, 'a'), 0600);
  CHECK(refusal(snap).find("not a small regular file") != std::string::npos);
  ::unlink((snap + ".sha256").c_str());

  std::string s = fake_etcd_snapshot();
  std::string flipped = s;
  flipped[777] ^= 0x40;
  write_file_atomic(tmp / "corrupt.db", flipped, 0600);
  CHECK(refusal(tmp / "corrupt.db").find("integrity hash mismatch") != std::string::npos);
  write_file_atomic(tmp / "short.db", s.substr(0, s.size() - 600), 0600);
  CHECK(refusal(tmp / "short.db").find("truncated") != std::string::npos);
  CHECK(refusal(tmp / "missing.db").find("cannot read the snapshot") != std::string::npos);
  REQUIRE(::symlink(snap.c_str(), (tmp / "link.db").c_str()) == 0);
  CHECK(refusal(tmp / "link.db").find("a symlink") != std::string::npos);
  CHECK(refusal(tmp.path).find("not a regular file") != std::string::npos);
  // Every refusal names the file and says nothing was written.
  CHECK(refusal(tmp / "corrupt.db").find(tmp / "corrupt.db") == 0);
  CHECK(refusal(tmp / "corrupt.db").find("nothing was written") != std::string::npos);
}

TEST_CASE("restore files go to every control-plane node and nowhere else", "[etcd_restore]") {
  Topology t;
  t.cluster.name = "kthw";
  for (int i = 0; i < 4; ++i) {
    Node n;
    n.name = "n" + std::to_string(i);
    n.role = i < 2 ? Role::ControlPlane : i == 2 ? Role::Both : Role::Worker;
    n.private_ip = "10.0.1.1" + std::to_string(i);
    t.nodes.push_back(n);
  }
  ClusterPlan plan;
  for (const auto& n : t.nodes) plan.nodes.push_back(NodePlan{n, {}, {}, {}, {}});
  EtcdRestoreInput in{"/snap.db", std::string(64, 'c'), 4128, "20261203t120000z-cccccccccccc", "kthw-etcd-restore-x", true};
  add_restore_files(plan, t, in);
  for (const auto& n : plan.nodes) {
    INFO(n.node.name);
    if (!n.node.is_control_plane()) {
      CHECK(n.files.empty());
      continue;
    }
    REQUIRE(n.files.size() == 2);
    const PlannedFile& snap = n.files[0].path == kEtcdRestoreSnapshot ? n.files[0] : n.files[1];
    const PlannedFile& spec = n.files[0].path == kEtcdRestoreSpec ? n.files[0] : n.files[1];
    CHECK(snap.path == kEtcdRestoreSnapshot);
    CHECK(snap.cls == FileClass::Secret);
    CHECK(snap.mode == 0600);
    CHECK(snap.source_sha256 == in.sha256);
    auto j = nlohmann::json::parse(spec.content);
    CHECK(j["name"] == n.node.name);
    CHECK(j["peerURL"] == "https://" + n.node.private_ip + ":2380");
    CHECK(j["initialCluster"] == "n0=https://10.0.1.10:2380,n1=https://10.0.1.11:2380,n2=https://10.0.1.12:2380");
    CHECK(j["token"] == in.token);
    CHECK(j["snapshotSha256"] == in.sha256);
    CHECK(n.directories == std::vector<std::string>{kEtcdRestoreDir});
  }
}

TEST_CASE("the backup policy file carries the topology's settings", "[etcd_restore]") {
  EtcdBackup b;
  b.keep = 5;
  b.max_age_days = 3;
  b.dir = "/srv/etcd";
  auto j = nlohmann::json::parse(render_etcd_backup_file(b));
  CHECK(j == nlohmann::json{{"version", 1}, {"dir", "/srv/etcd"}, {"keep", 5}, {"maxAgeDays", 3}});
}
