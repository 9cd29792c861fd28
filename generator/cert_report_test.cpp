#include "generator/cert_report.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <set>

#include "base/atomic_file.h"
#include "base/exit_code.h"
#include "base/file_io.h"
#include "base/temp_dir.h"
#include "generator/bundle_output.h"
#include "generator/plan.h"
#include "generator/state.h"
#include "topology/topology.h"

using namespace kb;

namespace {

constexpr std::time_t kDay = 86400;

// Every file below `dir` and its bytes: the report must leave them exactly so.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    out[e.path().string()] = e.is_regular_file() ? read_file(e.path().string()) : "(dir)";
  return out;
}

struct Fixture {
  TempDir tmp;
  std::string topo = tmp / "t.yaml", state_dir = tmp / "state";
  std::time_t now = std::time(nullptr);

  Fixture() { write_file_atomic(topo, read_file(std::string(KB_SOURCE_DIR) + "/examples/aws-ha.yaml"), 0600); }

  Topology topology() const {
    TopologyResult r = load_topology(topo);
    REQUIRE(r.ok());
    return *r.topology;
  }
  // What gen does to the state: issue, record the manifests, commit.
  void gen(std::time_t at) {
    Topology t = topology();
    auto s = State::open(state_dir, t, at);
    ClusterPlan plan = make_cluster_plan(t, *s);
    for (const auto& n : plan.nodes)
      s->record_manifest(bundle_manifest(plan, n, t.cluster.kubernetes_version, *s, "2026-01-01T00:00:00Z"));
    s->commit();
  }
  CertReport report(std::time_t at) const {
    Topology t = topology();
    auto s = State::open_read_only(state_dir, t, at);
    std::map<std::string, std::string> stored = s->leaf_certificates();
    ClusterPlan plan = make_cluster_plan(t, *s);
    return make_cert_report(t, *s, plan, stored, at);
  }
};

const CertRow& row(const CertReport& r, const std::string& id) {
  for (const auto& row : r.rows)
    if (row.id == id) return row;
  FAIL("no row " << id);
  throw std::logic_error("unreachable");
}

std::set<std::string> places(const CertRow& r) {
  std::set<std::string> out;
  for (const auto& p : r.places) out.insert(p.node + " " + p.source);
  return out;
}

}  // namespace

TEST_CASE("certs without a state: CAs in memory, every leaf new, exit 0, nothing written", "[cert_report]") {
  Fixture f;
  CertReport r = f.report(f.now);
  CHECK_FALSE(r.state_exists);
  CHECK(r.exit_code() == kExitOk);
  CHECK(r.count("new") == r.rows.size() - 3);
  CHECK(r.count("ok") == 3);
  CHECK(row(r, "kubernetes-ca").ca);
  CHECK_FALSE(std::filesystem::exists(f.state_dir));
  CHECK_THAT(cert_report_text(r), Catch::Contains("no state yet: the first gen issues every certificate"));
}

TEST_CASE("certs after gen: every certificate placed on its nodes, all ok, exit 0", "[cert_report]") {
  Fixture f;
  f.gen(f.now);
  auto before = snapshot(f.state_dir);
  CertReport r = f.report(f.now);
  CHECK(snapshot(f.state_dir) == before);
  CHECK(r.state_exists);
  CHECK(r.exit_code() == kExitOk);
  CHECK(r.count("new") == 0);
  CHECK(r.count("ok") == r.rows.size());
  for (const auto& row : r.rows) {
    INFO(row.id);
    CHECK_FALSE(row.id.empty());
    CHECK_FALSE(row.places.empty());
    CHECK(row.next_gen == "keeps it");
  }
  CHECK(places(row(r, "worker-1/kubelet")) ==
        std::set<std::string>{"worker-1 /var/lib/kubelet/kubelet.crt",
                              "worker-1 /var/lib/kubelet/kubeconfig#users[0].client-certificate-data"});
  CHECK(places(row(r, "control-0/etcd-server")) == std::set<std::string>{"control-0 /etc/etcd/server.crt"});
  // The admin certificate: each control plane's admin.kubeconfig and the workstation's.
  auto admin = places(row(r, "cluster/admin"));
  CHECK(admin.count(" admin.kubeconfig#users[0].client-certificate-data") == 1);
  CHECK(admin.count("control-2 /var/lib/kubernetes/admin.kubeconfig#users[0].client-certificate-data") == 1);
  // The kubernetes CA is on every node, in files and in kubeconfigs.
  std::set<std::string> ca_nodes;
  for (const auto& p : row(r, "kubernetes-ca").places) ca_nodes.insert(p.node);
  CHECK(ca_nodes.size() == 7);  // 6 nodes and the workstation
  const CertRow& kubelet = row(r, "worker-1/kubelet");
  CHECK(kubelet.info.subject == "CN=system:node:worker-1,O=system:nodes");
  CHECK(kubelet.info.issuer == "CN=kubernetes-ca");
  CHECK(std::find(kubelet.info.ip_addresses.begin(), kubelet.info.ip_addresses.end(), "10.0.1.21") !=
        kubelet.info.ip_addresses.end());

  nlohmann::json j = cert_report_json(r);
  CHECK(j["attention"] == false);
  CHECK(j["certificates"].size() == r.rows.size());
  CHECK(j["certificates"][0].contains("notAfter"));
  CHECK(j.dump().find("PRIVATE KEY") == std::string::npos);
}

TEST_CASE("certs 340 days on: every leaf inside the window, renewed by the next gen and why, still placed; exit 2",
          "[cert_report]") {
  Fixture f;
  f.gen(f.now);
  auto before = snapshot(f.state_dir);
  CertReport r = f.report(f.now + 340 * kDay);
  CHECK(snapshot(f.state_dir) == before);
  CHECK(r.exit_code() == kCertsExitAttention);
  for (const auto& row : r.rows) {
    INFO(row.id);
    if (row.ca) {
      CHECK(row.status == "ok");
      continue;
    }
    CHECK(row.status == "renew");
    CHECK((row.days_left == 24 || row.days_left == 25));
    CHECK_THAT(row.next_gen, Catch::StartsWith("renews it: expires in 2") && Catch::EndsWith(" days (renewBeforeDays 30)"));
    CHECK_FALSE(row.places.empty());
  }
  // The successor of each renewed leaf lands where the leaf is; etcd-server and etcd-peer (same subject) told apart.
  CHECK(places(row(r, "control-1/etcd-server")) == std::set<std::string>{"control-1 /etc/etcd/server.crt"});
  CHECK(places(row(r, "control-1/etcd-peer")) == std::set<std::string>{"control-1 /etc/etcd/peer.crt"});
  CHECK(r.count("new") == 0);
  std::string text = cert_report_text(r);
  CHECK_THAT(text, Catch::Contains("INSIDE the renewal window"));
  CHECK_THAT(text, Catch::Contains("attention: certificates inside the renewal window or expired"));

  // 400 days on: expired.
  CertReport late = f.report(f.now + 400 * kDay);
  CHECK(late.count("expired") == late.rows.size() - 3);
  CHECK(late.exit_code() == kCertsExitAttention);
  CHECK_THAT(row(late, "worker-0/kubelet").next_gen, Catch::StartsWith("renews it: expired 3"));

  // After the next gen (at +340), nothing is inside the window any more.
  f.gen(f.now + 340 * kDay);
  CHECK(f.report(f.now + 340 * kDay).exit_code() == kExitOk);
}

TEST_CASE("certs: a SAN change is said with the SAN; not an expiry, so exit 0", "[cert_report]") {
  Fixture f;
  f.gen(f.now);
  std::string t = read_file(f.topo);
  const std::string anchor = "    privateIP: 10.0.1.21\n";
  REQUIRE(t.find(anchor) != std::string::npos);
  t.replace(t.find(anchor), anchor.size(), anchor + "    publicIP: 3.3.3.3\n");
  write_file_atomic(f.topo, t, 0600);
  CertReport r = f.report(f.now);
  CHECK(row(r, "worker-1/kubelet").next_gen == "renews it: SAN set changed: +IP:3.3.3.3");
  CHECK(places(row(r, "worker-1/kubelet")).size() == 2);
  CHECK(r.exit_code() == kExitOk);
}

TEST_CASE("certs: a node that left the topology keeps its leaves in the state, in no bundle", "[cert_report]") {
  Fixture f;
  f.gen(f.now);
  std::string t = read_file(f.topo);
  size_t at = t.find("  - name: worker-2");
  REQUIRE(at != std::string::npos);
  t = t.substr(0, at) + t.substr(t.find("\n  - ", at + 1) == std::string::npos ? t.size() : t.find("\n  - ", at + 1) + 1);
  write_file_atomic(f.topo, t, 0600);
  TopologyResult tr = load_topology(f.topo);
  REQUIRE(tr.ok());
  CertReport r = f.report(f.now + 340 * kDay);
  const CertRow& gone = row(r, "worker-2/kubelet");
  CHECK(gone.places.empty());
  CHECK_THAT(gone.next_gen, Catch::Contains("renews it") || Catch::Contains("in no bundle"));
}
