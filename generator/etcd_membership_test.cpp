#include "generator/etcd_membership.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/temp_dir.h"

using namespace kb;

namespace {

// Control-plane nodes NAME=IP (and one worker, which is never an etcd member).
Topology cps(const std::vector<std::pair<std::string, std::string>>& nodes) {
  Topology t;
  t.source_path = "topology.yaml";
  t.cluster.name = "c";
  for (const auto& [name, ip] : nodes) {
    Node n;
    n.name = n.hostname = name;
    n.role = Role::ControlPlane;
    n.private_ip = ip;
    t.nodes.push_back(n);
  }
  Node w;
  w.name = w.hostname = "worker-0";
  w.role = Role::Worker;
  w.private_ip = "10.0.0.99";
  t.nodes.push_back(w);
  return t;
}

Topology three() { return cps({{"cp-0", "10.0.0.1"}, {"cp-1", "10.0.0.2"}, {"cp-2", "10.0.0.3"}}); }

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

}  // namespace

TEST_CASE("etcd membership: the first gen bootstraps every control-plane node with state new") {
  auto c = plan_etcd_membership(std::nullopt, three());
  CHECK_FALSE(c.bootstrapped);
  CHECK(c.problems.empty());
  CHECK(c.added.empty());
  CHECK(c.removed.empty());
  REQUIRE(c.after.size() == 3);
  CHECK(c.epoch == 1);
  REQUIRE(c.record.members.size() == 3);
  for (const auto& m : c.record.members) {
    CHECK(m.initial_cluster_state == "new");
    CHECK(m.initial_cluster == "cp-0=https://10.0.0.1:2380,cp-1=https://10.0.0.2:2380,cp-2=https://10.0.0.3:2380");
  }
  CHECK(joined(c.describe()).find("new cluster of 3 members") != std::string::npos);
}

TEST_CASE("etcd membership: a node added later joins the existing cluster; the others keep their unit") {
  auto first = plan_etcd_membership(std::nullopt, three());
  auto four = cps({{"cp-0", "10.0.0.1"}, {"cp-1", "10.0.0.2"}, {"cp-2", "10.0.0.3"}, {"cp-3", "10.0.0.4"}});
  auto c = plan_etcd_membership(first.record, four);
  CHECK(c.bootstrapped);
  CHECK(c.problems.empty());
  REQUIRE(c.added.size() == 1);
  CHECK(c.added[0] == EtcdMember{"cp-3", "https://10.0.0.4:2380"});
  CHECK(c.removed.empty());
  CHECK(c.epoch == 2);
  const auto* joiner = c.record.find("cp-3");
  REQUIRE(joiner);
  CHECK(joiner->initial_cluster_state == "existing");
  CHECK(joiner->initial_cluster ==
        "cp-0=https://10.0.0.1:2380,cp-1=https://10.0.0.2:2380,cp-2=https://10.0.0.3:2380,cp-3=https://10.0.0.4:2380");
  CHECK(joiner->joined_epoch == 2);
  // The initial members' record (and so their etcd unit) is unchanged.
  CHECK(c.record.find("cp-0")->initial_cluster_state == "new");
  CHECK(c.record.find("cp-0")->initial_cluster == first.record.find("cp-0")->initial_cluster);
  // Four members: allowed, with the risk said.
  REQUIRE(c.risks.size() == 1);
  CHECK(c.risks[0].find("4 members tolerate as many failures as 3") != std::string::npos);

  // Nothing changes next time: the same epoch, the same record.
  auto again = plan_etcd_membership(c.record, four);
  CHECK_FALSE(again.changed());
  CHECK(again.epoch == 2);
  CHECK(again.record.find("cp-3")->initial_cluster_state == "existing");
}

TEST_CASE("etcd membership: a replacement (same name, new IP) removes the old member, then adds the new one") {
  auto first = plan_etcd_membership(std::nullopt, three());
  auto c = plan_etcd_membership(first.record, cps({{"cp-0", "10.0.0.1"}, {"cp-1", "10.0.0.12"}, {"cp-2", "10.0.0.3"}}));
  CHECK(c.problems.empty());
  REQUIRE(c.removed.size() == 1);
  REQUIRE(c.added.size() == 1);
  CHECK(c.removed[0] == EtcdMember{"cp-1", "https://10.0.0.2:2380"});
  CHECK(c.added[0] == EtcdMember{"cp-1", "https://10.0.0.12:2380"});
  auto lines = c.describe();
  REQUIRE(lines.size() >= 2);
  CHECK(lines[0].find("remove member cp-1 (https://10.0.0.2:2380): replaced") != std::string::npos);
  CHECK(lines[1].find("add member cp-1 (https://10.0.0.12:2380)") != std::string::npos);
  CHECK(c.record.find("cp-1")->initial_cluster_state == "existing");
}

TEST_CASE("etcd membership: a removal of one of four is allowed; the remaining nodes remove it") {
  auto first = plan_etcd_membership(std::nullopt, cps({{"a", "10.0.0.1"}, {"b", "10.0.0.2"}, {"c", "10.0.0.3"}, {"d", "10.0.0.4"}}));
  auto c = plan_etcd_membership(first.record, cps({{"a", "10.0.0.1"}, {"b", "10.0.0.2"}, {"d", "10.0.0.4"}}));
  CHECK(c.problems.empty());
  REQUIRE(c.removed.size() == 1);
  CHECK(c.removed[0].name == "c");
  CHECK(c.added.empty());
  CHECK(c.risks.empty());  // 3 is odd
  CHECK(c.record.members.size() == 3);
}

TEST_CASE("etcd membership: more than one change at once is refused, naming each member") {
  auto first = plan_etcd_membership(std::nullopt, three());
  SECTION("two added") {
    auto c = plan_etcd_membership(first.record, cps({{"cp-0", "10.0.0.1"}, {"cp-1", "10.0.0.2"}, {"cp-2", "10.0.0.3"},
                                                    {"cp-3", "10.0.0.4"}, {"cp-4", "10.0.0.5"}}));
    REQUIRE(c.problems.size() == 1);
    CHECK(c.problems[0].find("changes 2 etcd members at once (cp-3, cp-4)") != std::string::npos);
  }
  SECTION("one added and one removed") {
    auto c = plan_etcd_membership(first.record, cps({{"cp-0", "10.0.0.1"}, {"cp-1", "10.0.0.2"}, {"cp-3", "10.0.0.4"}}));
    REQUIRE_FALSE(c.problems.empty());
    CHECK(c.problems[0].find("(cp-2, cp-3)") != std::string::npos);
  }
  SECTION("two replaced") {
    auto c = plan_etcd_membership(first.record, cps({{"cp-0", "10.0.0.11"}, {"cp-1", "10.0.0.12"}, {"cp-2", "10.0.0.3"}}));
    REQUIRE_FALSE(c.problems.empty());
    CHECK(c.problems[0].find("changes 2 etcd members") != std::string::npos);
  }
  SECTION("a renamed node (new name, old IP) is a removal and an addition") {
    auto c = plan_etcd_membership(first.record, cps({{"cp-0", "10.0.0.1"}, {"cp-1", "10.0.0.2"}, {"cp-9", "10.0.0.3"}}));
    REQUIRE_FALSE(c.problems.empty());
  }
  SECTION("a control-plane node turned worker plus a new one") {
    Topology t = cps({{"cp-0", "10.0.0.1"}, {"cp-1", "10.0.0.2"}, {"cp-2", "10.0.0.3"}, {"cp-3", "10.0.0.4"}});
    t.nodes[2].role = Role::Worker;
    auto c = plan_etcd_membership(first.record, t);
    REQUIRE_FALSE(c.problems.empty());
  }
  SECTION("every problem appears in describe()") {
    auto c = plan_etcd_membership(first.record, cps({{"cp-0", "10.0.0.1"}}));
    CHECK(c.problems.size() == 2);  // two removed at once, and below quorum
    auto text = joined(c.describe());
    CHECK(text.find("refused: this topology changes 2") != std::string::npos);
    CHECK(text.find("below the quorum of 2") != std::string::npos);
  }
}

TEST_CASE("etcd membership: removals below the recorded quorum are refused") {
  SECTION("2 -> 1") {
    auto first = plan_etcd_membership(std::nullopt, cps({{"a", "10.0.0.1"}, {"b", "10.0.0.2"}}));
    auto c = plan_etcd_membership(first.record, cps({{"a", "10.0.0.1"}}));
    REQUIRE(c.problems.size() == 1);
    CHECK(c.problems[0].find("from 2 recorded members leaves 1, below the quorum of 2") != std::string::npos);
  }
  SECTION("replacing one of two") {
    auto first = plan_etcd_membership(std::nullopt, cps({{"a", "10.0.0.1"}, {"b", "10.0.0.2"}}));
    auto c = plan_etcd_membership(first.record, cps({{"a", "10.0.0.1"}, {"b", "10.0.0.3"}}));
    REQUIRE(c.problems.size() == 1);
    CHECK(c.problems[0].find("below the quorum") != std::string::npos);
  }
  SECTION("the last member") {
    auto first = plan_etcd_membership(std::nullopt, cps({{"a", "10.0.0.1"}}));
    auto c = plan_etcd_membership(first.record, cps({}));
    REQUIRE_FALSE(c.problems.empty());
    CHECK(c.problems[0].find("would leave no etcd member") != std::string::npos);
  }
  SECTION("replacing a single member") {
    auto first = plan_etcd_membership(std::nullopt, cps({{"a", "10.0.0.1"}}));
    auto c = plan_etcd_membership(first.record, cps({{"a", "10.0.0.2"}}));
    REQUIRE_FALSE(c.problems.empty());
    CHECK(c.problems[0].find("would leave no etcd member") != std::string::npos);
  }
  SECTION("adding to one or two is fine") {
    auto first = plan_etcd_membership(std::nullopt, cps({{"a", "10.0.0.1"}}));
    auto c = plan_etcd_membership(first.record, cps({{"a", "10.0.0.1"}, {"b", "10.0.0.2"}}));
    CHECK(c.problems.empty());
    CHECK(c.risks.size() == 1);  // even
  }
  SECTION("3 -> 2 is allowed, with the risk said") {
    auto first = plan_etcd_membership(std::nullopt, three());
    auto c = plan_etcd_membership(first.record, cps({{"cp-0", "10.0.0.1"}, {"cp-1", "10.0.0.2"}}));
    CHECK(c.problems.empty());
    REQUIRE(c.risks.size() == 1);
    CHECK(c.risks[0].find("2 members tolerate as many failures as 1") != std::string::npos);
  }
}

TEST_CASE("etcd membership: the record round-trips; a damaged one is refused by name") {
  TempDir dir;
  CHECK_FALSE(read_etcd_record(dir.path));
  auto first = plan_etcd_membership(std::nullopt, three());
  write_etcd_record(dir.path, first.record);
  struct stat st{};
  REQUIRE(::stat((dir.path + "/etcd.json").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto back = read_etcd_record(dir.path);
  REQUIRE(back);
  CHECK(back->epoch == 1);
  REQUIRE(back->members.size() == 3);
  CHECK(back->members[1].member == first.record.members[1].member);
  CHECK(back->members[1].initial_cluster == first.record.members[1].initial_cluster);

  const std::string path = dir.path + "/etcd.json";
  for (const char* bad : {"", "[]", "{\"version\":2,\"epoch\":1,\"members\":[]}", "{\"version\":1,\"epoch\":0,\"members\":[]}",
                          "{\"version\":1,\"epoch\":1,\"members\":[]}",
                          "{\"version\":1,\"epoch\":1,\"members\":[{\"name\":\"a\"}]}",
                          "{\"version\":1,\"epoch\":1,\"members\":[{\"name\":\"a\",\"peerURL\":\"u\",\"initialCluster\":\"x\","
                          "\"initialClusterState\":\"maybe\",\"joinedEpoch\":1}]}",
                          "{\"version\":1,\"epoch\":1,\"members\":[{\"name\":\"a\",\"peerURL\":\"u\",\"initialCluster\":\"x\","
                          "\"initialClusterState\":\"new\",\"joinedEpoch\":5}]}",
                          "{\"version\":1,\"epoch\":1,\"members\":[{\"name\":\"a\",\"peerURL\":\"u\",\"initialCluster\":\"x\","
                          "\"initialClusterState\":\"new\",\"joinedEpoch\":1},{\"name\":\"a\",\"peerURL\":\"v\","
                          "\"initialCluster\":\"x\",\"initialClusterState\":\"new\",\"joinedEpoch\":1}]}"}) {
    INFO(bad);
    write_file_atomic(path, bad, 0600);
    try {
      read_etcd_record(dir.path);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find(path + ": damaged state:") == 0);
    }
  }
}

TEST_CASE("etcd membership: the membership file tells a joining node what it needs") {
  auto first = plan_etcd_membership(std::nullopt, three());
  auto four = cps({{"cp-0", "10.0.0.1"}, {"cp-1", "10.0.0.2"}, {"cp-2", "10.0.0.3"}, {"cp-3", "10.0.0.4"}});
  auto c = plan_etcd_membership(first.record, four);
  auto j = nlohmann::json::parse(render_etcd_membership_file(c, four, four.nodes[3]));
  CHECK(j["version"] == 1);
  CHECK(j["epoch"] == 2);
  CHECK(j["name"] == "cp-3");
  CHECK(j["peer_url"] == "https://10.0.0.4:2380");
  CHECK(j["initial_cluster_state"] == "existing");
  CHECK(j["members"].size() == 4);
  CHECK(j["members"][0]["client_url"] == "https://10.0.0.1:2379");
  CHECK(j["remove"].empty());
  auto removal = plan_etcd_membership(c.record, three());
  auto r = nlohmann::json::parse(render_etcd_membership_file(removal, three(), three().nodes[0]));
  CHECK(r["initial_cluster_state"] == "new");
  REQUIRE(r["remove"].size() == 1);
  CHECK(r["remove"][0]["name"] == "cp-3");
  CHECK(r["remove"][0]["peer_url"] == "https://10.0.0.4:2380");
  CHECK(r["epoch"] == 3);
}
