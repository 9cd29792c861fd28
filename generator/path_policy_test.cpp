// gen and the bundle path policy (bundles/path_policy.h) cannot drift apart: every file,
// directory and unit make_cluster_plan plans for the example topologies (every role, with and
// without the options that change files), plus every binary and image of every catalog version,
// passes the policy; a plan with one file outside it is refused before anything is written.
#include <catch2/catch.hpp>

#include <ctime>
#include <filesystem>
#include <unistd.h>

#include "base/temp_dir.h"
#include "base/atomic_file.h"
#include "base/error.h"
#include "binaries/catalog.h"
#include "bundles/path_policy.h"
#include "generator/bundle_output.h"
#include "generator/plan.h"
#include "generator/state.h"

using namespace kb;

namespace {

using kb::TempDir;

std::string replace_once(std::string s, const std::string& from, const std::string& to) {
  auto at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

// The example topology and variants of it: every role ("both" too), hardening off, EC2-bound nodes.
std::vector<std::pair<std::string, std::string>> topologies() {
  const std::string example = read_file(std::string(KB_SOURCE_DIR) + "/examples/aws-ha.yaml");
  std::string both = replace_once(example, "role: control-plane           # control-plane | worker | both", "role: both");
  std::string hardening_off = replace_once(example, "  encryption:\n",
                                           "  hardening:\n    alwaysPullImages: false\n    denyServiceExternalIPs: false\n"
                                           "  encryption:\n");
  std::string ec2 = replace_once(example, "    hostname: ip-10-0-1-10\n", "    hostname: ip-10-0-1-10\n    instanceId: i-0123456789abcdef0\n");
  ec2 = replace_once(ec2, "    hostname: ip-10-0-1-20\n", "    hostname: ip-10-0-1-20\n    instanceId: i-0fedcba9876543210\n");
  return {{"aws-ha.yaml", example}, {"aws-ha.yaml with a node of role both", both},
          {"aws-ha.yaml with hardening off", hardening_off}, {"aws-ha.yaml with instance ids", ec2}};
}

// What gen's add_binaries() adds for `entry`: every catalog file and image of the node's roles.
void add_catalog(NodePlan& n, const CatalogEntry& entry) {
  auto wanted = [&](bool cp, bool worker) { return (cp && n.node.is_control_plane()) || (worker && n.node.is_worker()); };
  auto add = [&](const std::string& path, unsigned mode) {
    PlannedFile f;
    f.path = path;
    f.mode = mode;
    f.cls = FileClass::Binary;
    f.source_path = "/nonexistent";
    f.source_sha256 = std::string(64, 'a');
    n.files.push_back(f);
  };
  for (const auto& a : entry.artifacts)
    for (const auto& f : a.files)
      if (wanted(f.control_plane, f.worker)) add(f.node_path, f.mode);
  for (const auto& i : entry.images)
    if (wanted(i.control_plane, i.worker)) add(i.node_path, i.mode);
}

}  // namespace

TEST_CASE("every file gen plans for the example topologies passes the path policy", "[policy]") {
  size_t roles_seen = 0, files_checked = 0;
  for (const auto& [name, text] : topologies()) {
    INFO(name);
    TopologyResult t = parse_topology(text, name);
    REQUIRE(t.ok());
    TempDir tmp;
    auto state = State::open(tmp.path + "/state", *t.topology, std::time(nullptr));
    ClusterPlan plan = make_cluster_plan(*t.topology, *state);
    CHECK_NOTHROW(check_plan_policy(plan, t.topology->cluster.kubernetes_version));
    for (const auto& entry : catalog_entries()) {
      INFO("catalog " << entry.kubernetes_version);
      ClusterPlan with_binaries = plan;
      for (auto& n : with_binaries.nodes) {
        add_catalog(n, entry);
        Manifest m = node_manifest(with_binaries, n, entry.kubernetes_version);
        for (const auto& v : path_policy_violations(m)) FAIL_CHECK(n.node.name << ": " << v.message());
        files_checked += m.entries.size();
        roles_seen |= n.node.role == Role::ControlPlane ? 1 : n.node.role == Role::Worker ? 2 : 4;
      }
      CHECK_NOTHROW(check_plan_policy(with_binaries, entry.kubernetes_version));
    }
  }
  CHECK(roles_seen == 7);  // control-plane, worker and both were all planned
  CHECK(files_checked > 500);
}

TEST_CASE("gen refuses a plan with a file outside the policy, naming node, path and rule", "[policy]") {
  TopologyResult t = parse_topology(topologies()[0].second, "aws-ha.yaml");
  REQUIRE(t.ok());
  TempDir tmp;
  auto state = State::open(tmp.path + "/state", *t.topology, std::time(nullptr));
  ClusterPlan plan = make_cluster_plan(*t.topology, *state);
  PlannedFile extra;
  extra.path = "/etc/kubernetes/new-component.yaml";  // a new file gen might add without updating the policy
  extra.content = "x";
  plan.nodes[0].files.push_back(extra);
  plan.nodes[4].units.push_back("node-problem-detector.service");
  try {
    check_plan_policy(plan, "v1.32.3");
    FAIL("no refusal");
  } catch (const Error& e) {
    std::string what = e.what();
    CHECK(what.find("internal error: the plan breaks the bundle path policy") == 0);
    CHECK(what.find("in 2 places; nothing was written") != std::string::npos);
    CHECK(what.find("\n  control-0: /etc/kubernetes/new-component.yaml: outside the paths a bundle may manage (rule: "
                    "allowed paths for role control-plane: below /var/lib/kubernetes") != std::string::npos);
    CHECK(what.find("\n  worker-1: node-problem-detector.service: not a unit a worker bundle may run") != std::string::npos);
  }
}
