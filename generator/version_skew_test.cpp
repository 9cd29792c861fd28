#include "generator/version_skew.h"

#include <catch2/catch.hpp>

namespace {

using Versions = std::map<std::string, kb::NodeVersion>;

kb::NodeVersion cp(const std::string& k, const std::string& e = "v3.5.21") { return {"control-plane", k, e}; }
kb::NodeVersion both(const std::string& k, const std::string& e = "v3.5.21") { return {"both", k, e}; }
kb::NodeVersion worker(const std::string& k) { return {"worker", k, ""}; }

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& p : v) s += p + "\n";
  return s;
}

bool mentions(const std::vector<std::string>& v, const std::string& a, const std::string& b = "") {
  for (const auto& p : v)
    if (p.find(a) != std::string::npos && p.find(b) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("version skew: patch and one-minor upgrades of the whole cluster are allowed", "[version_skew]") {
  Versions v1 = {{"c0", cp("v1.32.3")}, {"c1", cp("v1.32.3")}, {"w0", worker("v1.32.3")}};
  Versions v2 = {{"c0", cp("v1.32.4")}, {"c1", cp("v1.32.4")}, {"w0", worker("v1.32.4")}};
  Versions v3 = {{"c0", cp("v1.33.3")}, {"c1", cp("v1.33.3")}, {"w0", worker("v1.33.3")}};
  CHECK(kb::version_skew_problems({}, v1).empty());  // a first gen
  CHECK(kb::version_skew_problems(v1, v1).empty());
  CHECK(kb::version_skew_problems(v1, v2).empty());
  CHECK(kb::version_skew_problems(v2, v3).empty());
  // A patch downgrade within a minor (rolling back a bad patch) is allowed.
  CHECK(kb::version_skew_problems(v2, v1).empty());
  // Control plane first, workers later: each step is allowed.
  Versions cp_done = {{"c0", cp("v1.33.3")}, {"c1", cp("v1.33.3")}, {"w0", worker("v1.32.4")}};
  Versions one_cp = {{"c0", cp("v1.33.3")}, {"c1", cp("v1.32.4")}, {"w0", worker("v1.32.4")}};
  CHECK(kb::version_skew_problems(v2, one_cp).empty());
  CHECK(kb::version_skew_problems(one_cp, cp_done).empty());
  CHECK(kb::version_skew_problems(cp_done, v3).empty());
}

TEST_CASE("version skew: a skipped minor is refused, naming the node and the step to take", "[version_skew]") {
  Versions before = {{"c0", cp("v1.32.3")}, {"w0", worker("v1.32.3")}};
  Versions after = {{"c0", cp("v1.34.0")}, {"w0", worker("v1.34.0")}};
  auto p = kb::version_skew_problems(before, after);
  INFO(joined(p));
  CHECK(mentions(p, "node c0: Kubernetes v1.32.3 -> v1.34.0 skips a minor", "first to a v1.33.x release"));
  CHECK(mentions(p, "node w0:", "skips a minor"));
}

TEST_CASE("version skew: a minor downgrade is refused", "[version_skew]") {
  Versions before = {{"c0", cp("v1.33.3")}, {"w0", worker("v1.33.3")}};
  Versions after = {{"c0", cp("v1.32.4")}, {"w0", worker("v1.32.4")}};
  auto p = kb::version_skew_problems(before, after);
  INFO(joined(p));
  CHECK(mentions(p, "node c0: Kubernetes v1.33.3 -> v1.32.4 downgrades the minor", "v1.33.x"));
  CHECK(mentions(p, "node w0:", "downgrades"));
}

TEST_CASE("version skew: a worker upgraded before the control plane is refused", "[version_skew]") {
  Versions before = {{"c0", cp("v1.32.4")}, {"c1", cp("v1.32.4")}, {"w0", worker("v1.32.4")}, {"w1", worker("v1.32.4")}};
  Versions after = before;
  after["w0"] = worker("v1.33.3");  // `gen --node w0` with a newer version
  auto p = kb::version_skew_problems(before, after);
  INFO(joined(p));
  REQUIRE(p.size() == 1);
  CHECK(mentions(p, "node w0: kubelet and kube-proxy v1.33.3 would be newer than kube-apiserver v1.32.4 on c0",
                 "upgrade the control-plane nodes to v1.33 first"));
  // Still refused while one apiserver is old, allowed once none is.
  after["c0"] = cp("v1.33.3");
  CHECK(mentions(kb::version_skew_problems(before, after), "on c1"));
  after["c1"] = cp("v1.33.3");
  CHECK(kb::version_skew_problems(before, after).empty());
  // A new worker joining newer than the control plane is refused too.
  Versions join = before;
  join["w9"] = worker("v1.33.0");
  CHECK(mentions(kb::version_skew_problems(before, join), "node w9: kubelet"));
}

TEST_CASE("version skew: control-plane nodes more than one minor apart are refused", "[version_skew]") {
  Versions before = {{"c0", cp("v1.32.4")}, {"c1", cp("v1.33.3")}};
  Versions after = {{"c0", cp("v1.32.4")}, {"c1", cp("v1.34.1")}};
  auto p = kb::version_skew_problems(before, after);
  INFO(joined(p));
  CHECK(mentions(p, "control-plane nodes c1 (v1.34.1) and c0 (v1.32.4) are more than one minor apart", "upgrade c0 first"));
  // A new control-plane node two minors ahead of the rest: refused, though it has no previous version.
  Versions join = {{"c0", cp("v1.32.4")}, {"c2", cp("v1.34.0")}};
  CHECK(mentions(kb::version_skew_problems({{"c0", cp("v1.32.4")}}, join), "more than one minor apart"));
}

TEST_CASE("version skew: kubelets more than three minors behind the newest apiserver are refused", "[version_skew]") {
  Versions before = {{"c0", cp("v1.34.0")}, {"w0", worker("v1.31.0")}};
  Versions after = {{"c0", cp("v1.35.0")}, {"w0", worker("v1.31.0")}};
  CHECK(kb::version_skew_problems(before, before).empty());  // three behind: allowed
  auto p = kb::version_skew_problems(before, after);
  INFO(joined(p));
  CHECK(mentions(p, "node w0: kubelet and kube-proxy v1.31.0 would be more than 3 minors older", "upgrade w0 first"));
}

TEST_CASE("version skew: a node of role both goes with its own apiserver", "[version_skew]") {
  Versions before = {{"b0", both("v1.32.4")}, {"b1", both("v1.32.4")}};
  Versions after = {{"b0", both("v1.33.3")}, {"b1", both("v1.32.4")}};
  CHECK(kb::version_skew_problems(before, after).empty());
}

TEST_CASE("version skew: etcd is never downgraded and moves one minor at a time", "[version_skew]") {
  Versions before = {{"c0", cp("v1.32.4", "v3.5.21")}, {"c1", cp("v1.32.4", "v3.5.21")}};
  auto down = before;
  down["c0"] = cp("v1.32.4", "v3.4.30");
  auto p = kb::version_skew_problems(before, down);
  INFO(joined(p));
  CHECK(mentions(p, "node c0: etcd v3.5.21 -> v3.4.30 is a downgrade"));
  auto skip = before;
  skip["c0"] = cp("v1.33.0", "v3.7.0");
  p = kb::version_skew_problems(before, skip);
  INFO(joined(p));
  CHECK(mentions(p, "node c0: etcd v3.5.21 -> v3.7.0 skips an etcd minor", "v3.6.x"));
  CHECK(mentions(p, "etcd members c0 (v3.7.0) and c1 (v3.5.21) are more than one etcd minor apart"));
  auto next = before;
  next["c0"] = cp("v1.33.0", "v3.6.1");
  CHECK(kb::version_skew_problems(before, next).empty());
  // An etcd patch downgrade is allowed, like a Kubernetes one.
  next["c0"] = cp("v1.32.4", "v3.5.20");
  CHECK(kb::version_skew_problems(before, next).empty());
}

TEST_CASE("version skew: unreadable versions are problems, not crashes", "[version_skew]") {
  for (const char* bad : {"", "1.32.4", "v1.32", "v1.32.4-rc.1", "v1.32.4\n", "v99999.1.1", "vx.y.z"}) {
    Versions before = {{"c0", cp(bad)}, {"w0", worker("v1.32.4")}};
    Versions after = {{"c0", cp("v1.32.4")}, {"w0", worker(bad)}};
    auto p = kb::version_skew_problems(before, after);
    INFO(bad);
    CHECK(mentions(p, "node c0: the recorded Kubernetes version", "the state's manifests/c0.json) is not vX.Y.Z; if that record is wrong, remove"));
    CHECK(mentions(p, "node w0: Kubernetes version", "regenerate the node with a supported kubernetesVersion"));
    CHECK(p.size() == 2);
  }
  // A node kept at an unreadable recorded version (a --node run elsewhere) is named once, for its record.
  Versions before = {{"c0", cp("v1.32.4")}, {"w0", worker("v1.32+x")}};
  auto p = kb::version_skew_problems(before, before);
  INFO(joined(p));
  REQUIRE(p.size() == 1);
  CHECK(mentions(p, "node w0: the recorded Kubernetes version 'v1.32+x'"));
}

TEST_CASE("versions before and after a gen: previous manifests, the topology, --node subsets", "[version_skew]") {
  std::map<std::string, kb::Manifest> previous;
  auto manifest = [](const std::string& role, const std::string& version) {
    kb::Manifest m;
    m.role = role;
    m.kubernetes_version = version;
    return m;
  };
  previous["c0"] = manifest("control-plane", "v1.32.4");
  previous["w0"] = manifest("worker", "v1.32.4");
  previous["old"] = manifest("worker", "v1.32.4");          // left the topology
  previous["ancient"] = manifest("control-plane", "v1.20.1");  // a minor the catalog no longer has
  auto before = kb::versions_before(previous);
  CHECK(before["c0"].etcd == "v3.5.21");  // from the catalog
  CHECK(before["w0"].etcd.empty());
  CHECK(before["ancient"].etcd.empty());
  CHECK(before["ancient"].kubernetes == "v1.20.1");

  kb::Topology t;
  t.cluster.kubernetes_version = "v1.33.3";
  kb::Node c0, w0, w1, b0;
  c0.name = "c0", c0.role = kb::Role::ControlPlane;
  w0.name = "w0", w0.role = kb::Role::Worker;
  w1.name = "w1", w1.role = kb::Role::Worker;  // new, never generated
  b0.name = "b0", b0.role = kb::Role::Both;
  t.nodes = {c0, w0, w1, b0};

  auto all = kb::versions_after(t, {}, before);
  CHECK(all.size() == 4);
  CHECK(all["w1"].kubernetes == "v1.33.3");
  CHECK(all["b0"].role == "both");
  CHECK(all["b0"].etcd == "v3.5.21");
  CHECK(all.count("old") == 0);
  CHECK(kb::version_skew_problems(before, all).empty());

  // `gen --node w0` at v1.33.3: c0 keeps v1.32.4; w1 and b0 were never generated: left out.
  auto subset = kb::versions_after(t, {"w0"}, before);
  CHECK(subset.size() == 2);
  CHECK(subset["c0"].kubernetes == "v1.32.4");
  CHECK(subset["w0"].kubernetes == "v1.33.3");
  auto p = kb::version_skew_problems(before, subset);
  INFO(joined(p));
  CHECK(mentions(p, "node w0: kubelet and kube-proxy v1.33.3 would be newer than kube-apiserver v1.32.4 on c0"));
  // The control plane first is allowed.
  CHECK(kb::version_skew_problems(before, kb::versions_after(t, {"c0"}, before)).empty());
}
