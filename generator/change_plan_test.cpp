#include "generator/change_plan.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <regex>
#include <set>

#include "base/atomic_file.h"
#include "base/file_io.h"
#include "base/temp_dir.h"
#include "generator/bundle_output.h"
#include "generator/plan.h"
#include "generator/state.h"
#include "topology/topology.h"

using namespace kb;

namespace {

ManifestEntry file(const std::string& path, char sha, EntryClass cls = EntryClass::Config, unsigned mode = 0600) {
  ManifestEntry e;
  e.path = path;
  e.mode = mode;
  e.size = 10;
  e.sha256 = std::string(64, sha);
  e.cls = cls;
  return e;
}

ManifestEntry dir(const std::string& path) {
  ManifestEntry e;
  e.path = path;
  e.type = EntryType::Directory;
  e.mode = 0700;
  return e;
}

Manifest control_plane(uint64_t serial = 1) {
  Manifest m;
  m.cluster_name = "kthw";
  m.cluster_id = "c0ffee00-1234";
  m.node_name = "control-0";
  m.role = "control-plane";
  m.hostname = "control-0";
  m.private_ip = "10.0.1.10";
  m.serial = serial;
  m.created_at = "2026-11-22T04:56:21Z";
  m.kubernetes_version = "v1.32.3";
  m.signing_key_sha256 = std::string(64, 'b');
  m.units = {"etcd.service", "kube-apiserver.service", "kube-scheduler.service"};
  m.entries = {file("/etc/etcd/ca.crt", '1'),
               file("/etc/etcd/server.key", '2', EntryClass::Secret),
               file("/etc/systemd/system/etcd.service", '3', EntryClass::Unit, 0644),
               file("/etc/systemd/system/kube-apiserver.service", '4', EntryClass::Unit, 0644),
               file("/etc/systemd/system/kube-scheduler.service", '5', EntryClass::Unit, 0644),
               file("/var/lib/kubernetes/bootstrap/objects.json", '6'),
               dir("/var/lib/etcd")};
  return m;
}

ManifestEntry& entry(Manifest& m, const std::string& path) {
  for (auto& e : m.entries)
    if (e.path == path) return e;
  FAIL("no entry " << path);
  throw;
}

const FileChange* change_of(const NodeChange& n, const std::string& path) {
  for (const auto& f : n.files)
    if (f.path == path) return &f;
  return nullptr;
}

ChangePlan one(const Manifest* before, const Manifest& after, std::map<std::string, std::string> reissued = {}) {
  std::map<std::string, Manifest> previous;
  if (before) previous[before->node_name] = *before;
  return make_change_plan("kthw", previous, {after}, reissued, false, {});
}

}  // namespace

TEST_CASE("change plan: nothing changed is one line, exit-0 material", "[change_plan]") {
  Manifest m = control_plane();
  ChangePlan p = one(&m, m);
  CHECK(!p.changes());
  CHECK(p.nodes.at(0).status == "unchanged");
  CHECK(p.nodes.at(0).restart.empty());
  CHECK(change_plan_text(p) == "cluster kthw: no changes (1 node as before)\n");
  auto j = change_plan_json(p);
  CHECK(j["changes"] == false);
  CHECK(j["totals"]["unchanged"] == 1);
}

TEST_CASE("change plan: a new node has every path added and starts every unit", "[change_plan]") {
  Manifest m = control_plane();
  ChangePlan p = one(nullptr, m, {{"control-0/etcd-server", "new"}});
  REQUIRE(p.changes());
  const NodeChange& n = p.nodes.at(0);
  CHECK(n.status == "new");
  CHECK(n.old_serial == 0);
  CHECK(n.new_serial == 1);
  CHECK(n.files.size() == m.entries.size());
  CHECK(n.restart == m.units);
  REQUIRE(n.certs.size() == 1);
  CHECK(n.certs[0].reason == "new");
  std::string text = change_plan_text(p);
  CHECK_THAT(text, Catch::StartsWith("cluster kthw: 0 changed, 1 new, 0 removed, 0 unchanged\n"));
  CHECK_THAT(text, Catch::Contains("node control-0 (control-plane): new, serial 1, 7 paths (1 secret), 1 certificate issued"));
  auto j = change_plan_json(p);
  CHECK(j["nodes"][0]["oldSerial"].is_null());
  CHECK(j["nodes"][0]["files"][0]["change"] == "added");
}

TEST_CASE("change plan: every kind of file change, with the units the installer would restart", "[change_plan]") {
  Manifest before = control_plane(4);
  Manifest after = control_plane(5);
  entry(after, "/etc/etcd/server.key").sha256 = std::string(64, '9');                   // content (a secret)
  entry(after, "/etc/systemd/system/kube-scheduler.service").mode = 0600;                // mode
  entry(after, "/etc/systemd/system/kube-apiserver.service").owner = "kube";             // owner
  entry(after, "/var/lib/kubernetes/bootstrap/objects.json").sha256 = std::string(64, '8');  // restarts nothing
  after.entries.erase(after.entries.begin());                                            // /etc/etcd/ca.crt removed
  after.entries.push_back(file("/etc/kubernetes/new.yaml", 'a'));                          // added
  std::sort(after.entries.begin(), after.entries.end(), [](auto& a, auto& b) { return a.path < b.path; });

  ChangePlan p = one(&before, after, {{"control-0/etcd-server", "SAN set changed: +IP:10.0.1.99"}});
  const NodeChange& n = p.nodes.at(0);
  CHECK(n.status == "changed");
  CHECK(n.old_serial == 4);
  CHECK(n.new_serial == 5);
  REQUIRE(n.files.size() == 6);
  const FileChange* key = change_of(n, "/etc/etcd/server.key");
  REQUIRE(key);
  CHECK(key->kind == "changed");
  CHECK(key->cls == "secret");
  CHECK(key->old_sha256 == std::string(64, '2'));
  CHECK(key->new_sha256 == std::string(64, '9'));
  CHECK(key->what == std::vector<std::string>{"content"});
  CHECK(change_of(n, "/etc/systemd/system/kube-scheduler.service")->what ==
        std::vector<std::string>{"mode 0644 -> 0600"});
  CHECK(change_of(n, "/etc/systemd/system/kube-apiserver.service")->what ==
        std::vector<std::string>{"owner root:root -> kube:root"});
  CHECK(change_of(n, "/etc/etcd/ca.crt")->kind == "removed");
  CHECK(change_of(n, "/etc/etcd/ca.crt")->new_sha256.empty());
  CHECK(change_of(n, "/etc/kubernetes/new.yaml")->kind == "added");
  // etcd (its key and CA), the apiserver (its unit, /etc/kubernetes), the scheduler (its unit and
  // /etc/kubernetes); the bootstrap objects alone would restart nothing.
  CHECK(n.restart == std::vector<std::string>{"etcd.service", "kube-apiserver.service", "kube-scheduler.service"});
  REQUIRE(n.certs.size() == 1);
  CHECK(n.certs[0].name == "etcd-server");

  std::string text = change_plan_text(p);
  CHECK_THAT(text, Catch::Contains("node control-0 (control-plane): serial 4 -> 5\n"));
  CHECK_THAT(text, Catch::Contains("  ~ secret /etc/etcd/server.key  sha256 222222222222 -> 999999999999  (content)\n"));
  CHECK_THAT(text, Catch::Contains("  - config /etc/etcd/ca.crt  sha256 111111111111 -> -\n"));
  CHECK_THAT(text, Catch::Contains("  + config /etc/kubernetes/new.yaml  sha256 - -> aaaaaaaaaaaa\n"));
  CHECK_THAT(text, Catch::Contains("  certificate etcd-server reissued: SAN set changed: +IP:10.0.1.99\n"));
  CHECK_THAT(text, Catch::Contains("  apply restarts: etcd.service kube-apiserver.service kube-scheduler.service\n"));
}

TEST_CASE("change plan: the restart rule is the installer's (bundles/unit_restart.h)", "[change_plan]") {
  Manifest before = control_plane(1), after = control_plane(2);
  entry(after, "/var/lib/kubernetes/bootstrap/objects.json").sha256 = std::string(64, '8');
  CHECK(one(&before, after).nodes[0].restart.empty());
  after = control_plane(2);
  entry(after, "/etc/etcd/ca.crt").sha256 = std::string(64, '8');
  CHECK(one(&before, after).nodes[0].restart == std::vector<std::string>{"etcd.service"});
  // A unit new in this bundle starts; one it drops is stopped.
  after = control_plane(2);
  after.units = {"etcd.service", "kube-apiserver.service", "containerd.service"};
  ChangePlan p = one(&before, after);
  CHECK(p.nodes[0].restart == std::vector<std::string>{"containerd.service"});
  CHECK(p.nodes[0].units_removed == std::vector<std::string>{"kube-scheduler.service"});
  CHECK_THAT(change_plan_text(p), Catch::Contains("  apply stops: kube-scheduler.service\n"));
}

TEST_CASE("change plan: identity and metadata changes are named", "[change_plan]") {
  Manifest before = control_plane(1), after = control_plane(2);
  after.kubernetes_version = "v1.33.1";
  after.private_ip = "10.0.1.99";
  after.signing_key_sha256 = std::string(64, 'c');
  after.health_checks = {nlohmann::json{{"name", "etcd"}}};
  auto d = one(&before, after).nodes[0].details;
  CHECK(std::find(d.begin(), d.end(), "kubernetes version v1.32.3 -> v1.33.1") != d.end());
  CHECK(std::find(d.begin(), d.end(), "private IP 10.0.1.10 -> 10.0.1.99") != d.end());
  CHECK(std::find(d.begin(), d.end(), "signing key sha256 " + std::string(64, 'b') + " -> " + std::string(64, 'c')) != d.end());
  CHECK(std::find(d.begin(), d.end(), "health checks changed") != d.end());
}

TEST_CASE("change plan: nodes removed (not with --node), shared certificates, problems, order", "[change_plan]") {
  Manifest cp = control_plane(3);
  Manifest gone = control_plane(7);
  gone.node_name = gone.hostname = "control-9";
  std::map<std::string, Manifest> previous = {{"control-0", cp}, {"control-9", gone}};
  ChangeInputs in{{"remove member control-9 (https://10.0.1.19:2380)"}, {}, {{"control-0"}}, {}};
  ChangePlan p = make_change_plan("kthw", previous, {cp}, {{"cluster/admin", "expires in 3 days (renewBeforeDays 30)"}}, false, in);
  REQUIRE(p.nodes.size() == 2);
  CHECK(p.nodes[1].status == "removed");
  CHECK(p.nodes[1].old_serial == 7);
  REQUIRE(p.shared_certs.size() == 1);
  CHECK(p.changes());
  std::string text = change_plan_text(p);
  CHECK_THAT(text, Catch::StartsWith("cluster kthw: 0 changed, 0 new, 1 removed, 1 unchanged, 1 shared certificate (re)issued\n"));
  CHECK_THAT(text, Catch::Contains("node control-9 (control-plane): removed (its last bundle was serial 7)\n"));
  CHECK_THAT(text, Catch::Contains("shared certificate cluster/admin renewed: expires in 3 days (renewBeforeDays 30)\n"));
  CHECK_THAT(text, Catch::Contains("etcd membership:\n  remove member control-9"));
  CHECK_THAT(text, Catch::EndsWith("apply order: control-0\n"));  // the order last

  // A --node run compares only the nodes it names.
  ChangePlan subset = make_change_plan("kthw", previous, {cp}, {}, true, {});
  CHECK(subset.nodes.size() == 1);
  CHECK(!subset.changes());

  // Problems refuse the change, and say why.
  ChangePlan refused = make_change_plan("kthw", previous, {cp}, {}, true, {{}, {"worker-0: kubelet v1.34 is newer than the apiserver"}, {}, {}});
  CHECK(refused.refused());
  CHECK_THAT(change_plan_text(refused), Catch::Contains("REFUSED: 1 problem"));
  CHECK_THAT(change_plan_text(refused), Catch::Contains("  worker-0: kubelet v1.34 is newer than the apiserver\n"));
  CHECK(change_plan_json(refused)["refused"] == true);
}

TEST_CASE("change plan: the JSON form has every documented key", "[change_plan]") {
  Manifest before = control_plane(1), after = control_plane(2);
  entry(after, "/etc/etcd/server.key").sha256 = std::string(64, '9');
  auto j = change_plan_json(one(&before, after));
  for (const char* k : {"cluster", "stateCreated", "subset", "changes", "refused", "totals", "nodes", "sharedCertificates",
                        "etcd", "problems", "order"})
    CHECK(j.contains(k));
  const auto& n = j["nodes"][0];
  for (const char* k : {"name", "role", "status", "oldSerial", "newSerial", "details", "files", "certificates", "restart",
                        "unitsRemoved"})
    CHECK(n.contains(k));
  CHECK(n["files"][0] == nlohmann::json{{"path", "/etc/etcd/server.key"},
                                        {"change", "changed"},
                                        {"class", "secret"},
                                        {"oldSha256", std::string(64, '2')},
                                        {"newSha256", std::string(64, '9')},
                                        {"what", {"content"}}});
}

// The real chain: a state, the example topology, the manifests gen would sign; then a SAN added.
TEST_CASE("change plan: from a real state; secrets are never printed", "[change_plan]") {
  TempDir tmp;
  const std::string example = read_file(std::string(KB_SOURCE_DIR) + "/examples/aws-ha.yaml");
  const std::string topo1 = tmp / "t1.yaml", topo2 = tmp / "t2.yaml";
  write_file_atomic(topo1, example, 0600);
  std::string moved = example;
  const std::string anchor = "    privateIP: 10.0.1.21\n";
  REQUIRE(moved.find(anchor) != std::string::npos);
  moved.replace(moved.find(anchor), anchor.size(), anchor + "    publicIP: 3.3.3.3\n");
  write_file_atomic(topo2, moved, 0600);
  const std::time_t now = std::time(nullptr);
  const std::string state_dir = tmp / "state";

  auto manifests_of = [&](const Topology& t, State& s) {
    ClusterPlan plan = make_cluster_plan(t, s);
    std::vector<Manifest> out;
    for (const auto& n : plan.nodes) out.push_back(bundle_manifest(plan, n, t.cluster.kubernetes_version, s, "2026-01-01T00:00:00Z"));
    return out;
  };
  auto plan_for = [&](const std::string& topo) {
    TopologyResult r = load_topology(topo);
    REQUIRE(r.ok());
    auto s = State::open_read_only(state_dir, *r.topology, now);
    std::vector<Manifest> next = manifests_of(*r.topology, *s);  // before reissued(): it issues
    ChangePlan p = make_change_plan(r.topology->cluster.name, s->previous_manifests(), next, s->reissued(), false, {});
    p.state_created = s->created();
    return p;
  };

  ChangePlan fresh = plan_for(topo1);
  CHECK(fresh.count("new") == 6);
  CHECK_THAT(change_plan_text(fresh), Catch::Contains("; the state will be created"));
  CHECK(!std::filesystem::exists(state_dir));

  {  // what gen does
    TopologyResult r = load_topology(topo1);
    auto s = State::open(state_dir, *r.topology, now);
    for (const auto& m : manifests_of(*r.topology, *s)) s->record_manifest(m);
    s->commit();
  }
  CHECK(!plan_for(topo1).changes());

  ChangePlan p = plan_for(topo2);
  REQUIRE(p.changes());
  CHECK(p.count("changed") == 1);
  CHECK(p.count("unchanged") == 5);
  const NodeChange* w1 = nullptr;
  for (const auto& n : p.nodes)
    if (n.name == "worker-1") w1 = &n;
  REQUIRE(w1);
  CHECK(w1->new_serial == w1->old_serial + 1);
  REQUIRE(w1->certs.size() == 1);
  CHECK(w1->certs[0].name == "kubelet");
  CHECK_THAT(w1->certs[0].reason, Catch::Contains("SAN"));
  CHECK(w1->restart == std::vector<std::string>{"kubelet.service"});
  std::set<std::string> paths;
  for (const auto& f : w1->files) paths.insert(f.path);
  CHECK(paths == std::set<std::string>{"/var/lib/kubelet/kubeconfig", "/var/lib/kubelet/kubelet.crt", "/var/lib/kubelet/kubelet.key"});

  // No private key body of the state, old or new, appears in any output.
  std::string outputs = change_plan_text(fresh) + change_plan_json(fresh).dump() + change_plan_text(p) + change_plan_json(p).dump();
  std::vector<std::string> bodies;
  const std::regex pem("-----BEGIN [A-Z ]*PRIVATE KEY-----\\n([A-Za-z0-9+/=\\n]+)-----END");
  for (const auto& e : std::filesystem::recursive_directory_iterator(state_dir)) {
    if (!e.is_regular_file()) continue;
    std::string text = read_file(e.path().string());
    text = std::regex_replace(text, std::regex("\\\\n"), "\n");  // issued.json holds PEM as JSON strings
    for (std::sregex_iterator it(text.begin(), text.end(), pem), end; it != end; ++it) bodies.push_back((*it)[1]);
  }
  REQUIRE(bodies.size() > 10);
  for (const auto& body : bodies) {
    CHECK(outputs.find(body.substr(0, 40)) == std::string::npos);
  }
  CHECK(outputs.find("PRIVATE KEY") == std::string::npos);
}

TEST_CASE("change plan: rotations in progress are shown, never a change by themselves", "[change_plan][rotation]") {
  Manifest cp = control_plane(3);
  std::map<std::string, Manifest> previous = {{"control-0", cp}};
  ChangeInputs in;
  in.rotations = {{RotationKind::Ca, "etcd-ca", 2, "2026-12-03T11:00:00Z", false},
                  {RotationKind::Ca, "front-proxy-ca", 3, "2026-12-03T12:00:00Z", true}};
  ChangePlan p = make_change_plan("kthw", previous, {cp}, {}, false, in);
  CHECK_FALSE(p.changes());  // plan exits 0: the rotation waits for the operator, not for gen
  const std::string text = change_plan_text(p);
  CHECK(text == no_changes_line(p) + "\n" +
                    "rotation etcd-ca: phase 2/3 (not generated yet): " + phase_title(RotationKind::Ca, 2) + "\n" +
                    "  next: gen writes this phase's bundles; apply them on every node before --advance\n" +
                    "rotation front-proxy-ca: phase 3/3 (generated): " + phase_title(RotationKind::Ca, 3) + "\n" +
                    "  once every node has applied it, --advance: completes it: the new CA becomes the long-lived "
                    "one and the old one leaves the state\n");
  nlohmann::json j = change_plan_json(p);
  REQUIRE(j["rotations"].size() == 2);
  CHECK(j["rotations"][0] == nlohmann::json{{"name", "etcd-ca"},
                                            {"kind", "ca"},
                                            {"phase", 2},
                                            {"lastPhase", 3},
                                            {"phaseTitle", phase_title(RotationKind::Ca, 2)},
                                            {"phaseStartedAt", "2026-12-03T11:00:00Z"},
                                            {"generated", false},
                                            {"advance", "phase 3: " + phase_title(RotationKind::Ca, 3)}});
  // None: the text is exactly as before rotations existed; the JSON key is an empty list.
  ChangePlan none = make_change_plan("kthw", previous, {cp}, {}, false, {});
  CHECK(change_plan_text(none) == no_changes_line(none) + "\n");
  CHECK(change_plan_json(none)["rotations"] == nlohmann::json::array());
}

TEST_CASE("change plan: expiry alone is a renewal, any other reason a reissue", "[change_plan]") {
  Manifest cp = control_plane(3);
  std::map<std::string, Manifest> previous = {{"control-0", cp}};
  ChangePlan p = make_change_plan("kthw", previous, {cp},
                                  {{"cluster/admin", "expired 2 days ago"},
                                   {"cluster/kube-proxy", "SAN set changed: +DNS:x; expires in 3 days (renewBeforeDays 30)"}},
                                  false, {});
  std::string text = change_plan_text(p);
  CHECK_THAT(text, Catch::Contains("shared certificate cluster/admin renewed: expired 2 days ago\n"));
  CHECK_THAT(text, Catch::Contains(
                       "shared certificate cluster/kube-proxy reissued: SAN set changed: +DNS:x; expires in 3 days (renewBeforeDays 30)\n"));
}
