// The bootstrap objects (contract A of issue 14, docs/bootstrap.md): only the designated node's
// plan carries them; their facts agree with the one place each comes from (the kubelet client
// cert's subject, the kubelets' clusterDNS, the catalog's CoreDNS image); order and bytes are fixed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <map>
#include <unistd.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <yaml-cpp/yaml.h>

#include "base/temp_dir.h"
#include "base/error.h"
#include "binaries/catalog.h"
#include "generator/bootstrap_objects.h"
#include "generator/node_paths.h"
#include "generator/pki.h"
#include "generator/plan.h"
#include "generator/state.h"

using namespace kb;
using json = nlohmann::json;
namespace p = kb::paths;

namespace {

using kb::TempDir;

constexpr std::time_t kNow = 1790000000;  // a fixed clock (2026-09-21)

// Workers first: the designated node is the first control-plane node, not the first node.
std::string topology_text(const std::string& version = "v1.32.3", const std::string& first_cp_role = "control-plane") {
  return "cluster:\n"
         "  name: demo\n"
         "  kubernetesVersion: " + version + "\n"
         "  apiEndpoint:\n"
         "    host: api.demo.example.com\n"
         "    port: 7443\n"
         "  serviceCIDR: 10.96.0.0/16\n"
         "  clusterDomain: corp.internal\n"
         "nodes:\n"
         "  - name: worker-a\n"
         "    role: worker\n"
         "    privateIP: 10.0.1.20\n"
         "  - name: cp-b\n"
         "    role: " + first_cp_role + "\n"
         "    privateIP: 10.0.1.10\n"
         "  - name: cp-a\n"
         "    role: control-plane\n"
         "    privateIP: 10.0.1.11\n"
         "  - name: worker-b\n"
         "    role: worker\n"
         "    privateIP: 10.0.1.21\n";
}

Topology parse(const std::string& text) {
  TopologyResult r = parse_topology(text, "topology.yaml");
  for (const auto& d : r.diagnostics) INFO(d.format());
  REQUIRE(r.ok());
  return *r.topology;
}

const NodePlan& node(const ClusterPlan& plan, const std::string& name) {
  for (const auto& n : plan.nodes)
    if (n.node.name == name) return n;
  FAIL("no node " << name);
  throw 0;
}

const PlannedFile* find_file(const NodePlan& n, const std::string& path) {
  for (const auto& f : n.files)
    if (f.path == path) return &f;
  return nullptr;
}

const std::string& content(const NodePlan& n, const std::string& path) {
  const PlannedFile* f = find_file(n, path);
  INFO(n.node.name << " " << path);
  REQUIRE(f != nullptr);
  return f->content;
}

std::string subject_field(X509* cert, int nid) {
  char buf[256];
  int len = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), nid, buf, sizeof buf);
  return len < 0 ? "" : std::string(buf, static_cast<size_t>(len));
}

std::vector<std::string> subject_orgs(X509* cert) {
  std::vector<std::string> out;
  X509_NAME* name = X509_get_subject_name(cert);
  for (int i = -1; (i = X509_NAME_get_index_by_NID(name, NID_organizationName, i)) >= 0;) {
    ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<size_t>(ASN1_STRING_length(s)));
  }
  return out;
}

const json& object_named(const json& doc, const std::string& kind, const std::string& name) {
  for (const auto& o : doc["objects"])
    if (o["object"]["kind"] == kind && o["object"]["metadata"]["name"] == name) return o["object"];
  FAIL("no " << kind << " " << name);
  throw 0;
}

}  // namespace

TEST_CASE("only the first control-plane node gets objects.json and the bootstrap identity", "[bootstrap]") {
  for (const std::string role : {"control-plane", "both"}) {
    INFO("first control plane of role " << role);
    Topology t = parse(topology_text("v1.32.3", role));
    REQUIRE(bootstrap_node(t)->name == "cp-b");
    TempDir tmp;
    auto state = State::open(tmp.path + "/state", t, kNow);
    ClusterPlan plan = make_cluster_plan(t, *state);
    for (const auto& n : plan.nodes) {
      INFO(n.node.name);
      const bool designated = n.node.name == "cp-b";
      size_t under = 0;
      for (const auto& f : n.files) under += f.path.rfind(std::string(p::kBootstrapDir) + "/", 0) == 0;
      CHECK(under == (designated ? 3u : 0u));
      CHECK((std::find(n.directories.begin(), n.directories.end(), p::kBootstrapDir) != n.directories.end()) == designated);
      if (!designated) continue;
      for (const char* path : {p::kBootstrapObjects, p::kBootstrapCert, p::kBootstrapKey}) {
        const PlannedFile* f = find_file(n, path);
        REQUIRE(f != nullptr);
        CHECK(f->mode == 0600);
        CHECK(f->owner == "root");
        CHECK(f->group == "root");
      }
      CHECK(find_file(n, p::kBootstrapKey)->cls == FileClass::Secret);
      CHECK(content(n, p::kBootstrapObjects) == render_bootstrap_objects(t));
    }
  }
}

TEST_CASE("gen --node: the designated node is the topology's, not the selection's", "[bootstrap]") {
  Topology t = parse(topology_text());
  TempDir tmp;
  auto state = State::open(tmp.path + "/state", t, kNow);
  ClusterPlan other = make_cluster_plan(t, *state, {"cp-a", "worker-a"});
  for (const auto& n : other.nodes) CHECK(find_file(n, p::kBootstrapObjects) == nullptr);
  ClusterPlan only = make_cluster_plan(t, *state, {"cp-b"});
  CHECK(find_file(only.nodes.at(0), p::kBootstrapObjects) != nullptr);
}

TEST_CASE("the bootstrap identity: kubernetes-ca, client auth, kbundle:bootstrap in system:masters, reused", "[bootstrap]") {
  Topology t = parse(topology_text());
  TempDir tmp;
  std::string cert_pem, key_pem;
  {
    auto state = State::open(tmp.path + "/state", t, kNow);
    ClusterPlan plan = make_cluster_plan(t, *state);
    const NodePlan& n = node(plan, "cp-b");
    cert_pem = content(n, p::kBootstrapCert);
    key_pem = content(n, p::kBootstrapKey);
    X509Ptr cert = parse_cert(cert_pem, "bootstrap cert");
    PkeyPtr key = parse_private_key(key_pem, "bootstrap key");
    CHECK(key_matches_cert(key.get(), cert.get()));
    CHECK(subject_field(cert.get(), NID_commonName) == "kbundle:bootstrap");
    CHECK(subject_orgs(cert.get()) == std::vector<std::string>{"system:masters"});
    CHECK(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_CLIENT, 0) == 1);
    CHECK((X509_get_extended_key_usage(cert.get()) & XKU_SSL_SERVER) == 0);
    CHECK(X509_check_issued(state->ca(CaName::Kubernetes).cert.get(), cert.get()) == X509_V_OK);
    state->commit();
  }
  // A second run with the same state reuses the cert and key, so objects.json and the files are unchanged.
  auto again = State::open(tmp.path + "/state", t, kNow + 3600);
  ClusterPlan plan = make_cluster_plan(t, *again);
  CHECK(content(node(plan, "cp-b"), p::kBootstrapCert) == cert_pem);
  CHECK(content(node(plan, "cp-b"), p::kBootstrapKey) == key_pem);
}

TEST_CASE("the kubelet-API binding names the subject of kube-apiserver's kubelet client cert", "[bootstrap]") {
  Topology t = parse(topology_text());
  TempDir tmp;
  auto state = State::open(tmp.path + "/state", t, kNow);
  ClusterPlan plan = make_cluster_plan(t, *state);
  const json doc = json::parse(content(node(plan, "cp-b"), p::kBootstrapObjects));
  const json& role = object_named(doc, "ClusterRole", "system:kube-apiserver-to-kubelet");
  REQUIRE(role["rules"].size() == 1);
  CHECK(role["rules"][0]["apiGroups"] == json::array({""}));
  CHECK(role["rules"][0]["resources"] ==
        json::array({"nodes/proxy", "nodes/stats", "nodes/log", "nodes/spec", "nodes/metrics"}));
  CHECK(role["rules"][0]["verbs"] == json::array({"*"}));
  const json& binding = object_named(doc, "ClusterRoleBinding", "system:kube-apiserver-to-kubelet");
  CHECK(binding["roleRef"] == json({{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "ClusterRole"},
                                    {"name", "system:kube-apiserver-to-kubelet"}}));

  // Every control-plane node's cert, as issued, has exactly the subject the binding names.
  for (const char* name : {"cp-a", "cp-b"}) {
    X509Ptr cert = parse_cert(content(node(plan, name), p::kApiserverKubeletClientCert), name);
    json expected = json::array({{{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "User"},
                                  {"name", subject_field(cert.get(), NID_commonName)}}});
    for (const auto& o : subject_orgs(cert.get()))
      expected.push_back({{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Group"}, {"name", o}});
    CHECK(binding["subjects"] == expected);
    CHECK(subject_field(cert.get(), NID_commonName) == apiserver_kubelet_client_request().common_name);
  }
}

TEST_CASE("kube-dns's IP is the kubelets' clusterDNS and CoreDNS serves the cluster domain", "[bootstrap]") {
  for (const std::string cidr : {"10.96.0.0/16", "10.32.0.0/24", "172.20.128.0/20"}) {
    INFO(cidr);
    std::string text = topology_text();
    text.replace(text.find("10.96.0.0/16"), 12, cidr);
    Topology t = parse(text);
    TempDir tmp;
    auto state = State::open(tmp.path + "/state", t, kNow);
    ClusterPlan plan = make_cluster_plan(t, *state);
    const json doc = json::parse(content(node(plan, "cp-b"), p::kBootstrapObjects));
    const json& service = object_named(doc, "Service", "kube-dns");
    for (const char* worker : {"worker-a", "worker-b"}) {
      YAML::Node kubelet = YAML::Load(content(node(plan, worker), p::kKubeletConfig));
      REQUIRE(kubelet["clusterDNS"].size() == 1);
      CHECK(service["spec"]["clusterIP"] == kubelet["clusterDNS"][0].as<std::string>());
      CHECK(kubelet["clusterDomain"].as<std::string>() == "corp.internal");
    }
    CHECK(service["metadata"]["namespace"] == "kube-system");
    CHECK(service["spec"]["selector"] == json({{"k8s-app", "kube-dns"}}));
    const std::string corefile = object_named(doc, "ConfigMap", "coredns")["data"]["Corefile"];
    for (const char* line : {"    kubernetes corp.internal in-addr.arpa ip6.arpa {\n", "    forward . /etc/resolv.conf {\n",
                             "    cache 30\n", "    loop\n", "    reload\n", "    health {\n", "    ready\n", "    errors\n"})
      CHECK(corefile.find(line) != std::string::npos);
  }
}

TEST_CASE("the CoreDNS image is the catalog's, the one the worker bundles carry", "[bootstrap]") {
  for (const auto& entry : catalog_entries()) {
    INFO(entry.kubernetes_version);
    Topology t = parse(topology_text(entry.kubernetes_version));
    std::string shipped;
    for (const auto& i : entry.images)
      if (i.worker && i.node_path == "/var/lib/kbundle-images/coredns.tar") shipped = i.ref;
    REQUIRE(!shipped.empty());
    CHECK(coredns_image(entry.kubernetes_version) == shipped);
    bool found = false;
    for (const auto& o : bootstrap_objects(t))
      if (o.object["kind"] == "Deployment") {
        CHECK(o.object["spec"]["template"]["spec"]["containers"][0]["image"] == shipped);
        found = true;
      }
    CHECK(found);
  }
  CHECK_THROWS_WITH(coredns_image("v0.0.1"), Catch::Contains("v0.0.1"));
}

TEST_CASE("objects are in apply order, each with its REST path and the kbundle label", "[bootstrap]") {
  Topology t = parse(topology_text());
  const auto objects = bootstrap_objects(t);
  std::vector<std::string> order;
  for (const auto& o : objects) order.push_back(o.object["kind"].get<std::string>() + "/" + o.object["metadata"]["name"].get<std::string>());
  CHECK(order == std::vector<std::string>{
                     "ClusterRole/system:kube-apiserver-to-kubelet", "ClusterRoleBinding/system:kube-apiserver-to-kubelet",
                     "ServiceAccount/coredns", "ClusterRole/system:coredns", "ClusterRoleBinding/system:coredns",
                     "ConfigMap/coredns", "Service/kube-dns", "Deployment/coredns", "PodDisruptionBudget/coredns"});
  CHECK(objects[0].api_path == "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:kube-apiserver-to-kubelet");
  CHECK(objects[1].api_path == "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/system:kube-apiserver-to-kubelet");
  CHECK(objects[2].api_path == "/api/v1/namespaces/kube-system/serviceaccounts/coredns");
  CHECK(objects[5].api_path == "/api/v1/namespaces/kube-system/configmaps/coredns");
  CHECK(objects[6].api_path == "/api/v1/namespaces/kube-system/services/kube-dns");
  CHECK(objects[7].api_path == "/apis/apps/v1/namespaces/kube-system/deployments/coredns");
  CHECK(objects[8].api_path == "/apis/policy/v1/namespaces/kube-system/poddisruptionbudgets/coredns");

  // Whatever a binding or a pod refers to comes before it.
  std::map<std::string, size_t> at;
  for (size_t i = 0; i < order.size(); ++i) at[order[i]] = i;
  for (size_t i = 0; i < objects.size(); ++i) {
    const json& o = objects[i].object;
    INFO(order[i]);
    CHECK(o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kbundle");
    const bool cluster_scoped = o["kind"].get<std::string>().rfind("Cluster", 0) == 0;
    CHECK(o["metadata"].contains("namespace") == !cluster_scoped);
    if (o["kind"] == "ClusterRoleBinding") {
      CHECK(at.at("ClusterRole/" + o["roleRef"]["name"].get<std::string>()) < i);
      for (const auto& s : o["subjects"])
        if (s["kind"] == "ServiceAccount") CHECK(at.at("ServiceAccount/" + s["name"].get<std::string>()) < i);
    }
  }
  CHECK(at.at("ConfigMap/coredns") < at.at("Deployment/coredns"));
  CHECK(at.at("ClusterRoleBinding/system:coredns") < at.at("Deployment/coredns"));

  json unknown = {{"apiVersion", "v1"}, {"kind", "Secret"}, {"metadata", {{"name", "x"}, {"namespace", "y"}}}};
  CHECK_THROWS_WITH(api_path_of(unknown), Catch::StartsWith("internal error: bootstrap object of kind Secret"));
}

TEST_CASE("the CoreDNS Deployment: two spread replicas, critical, non-root, read-only, probes", "[bootstrap]") {
  Topology t = parse(topology_text());
  const json doc = json::parse(render_bootstrap_objects(t));
  const json& d = object_named(doc, "Deployment", "coredns");
  CHECK(d["spec"]["replicas"] == 2);
  const json& pod = d["spec"]["template"]["spec"];
  CHECK(d["spec"]["selector"]["matchLabels"]["k8s-app"] == d["spec"]["template"]["metadata"]["labels"]["k8s-app"]);
  CHECK(pod["priorityClassName"] == "system-cluster-critical");
  CHECK(pod["serviceAccountName"] == "coredns");
  CHECK(pod["nodeSelector"] == json({{"kubernetes.io/os", "linux"}}));
  CHECK(pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"] ==
        "kubernetes.io/hostname");
  bool control_plane_toleration = false;
  for (const auto& tol : pod["tolerations"]) control_plane_toleration |= tol["key"] == "node-role.kubernetes.io/control-plane";
  CHECK(control_plane_toleration);
  CHECK(pod["securityContext"]["runAsNonRoot"] == true);
  CHECK(pod["securityContext"]["runAsUser"] == 65532);
  const json& c = pod["containers"][0];
  CHECK(c["securityContext"]["readOnlyRootFilesystem"] == true);
  CHECK(c["securityContext"]["allowPrivilegeEscalation"] == false);
  CHECK(c["securityContext"]["capabilities"] == json({{"add", {"NET_BIND_SERVICE"}}, {"drop", {"ALL"}}}));
  CHECK(c["resources"]["requests"].contains("cpu"));
  CHECK(c["resources"]["limits"].contains("memory"));
  CHECK(c["livenessProbe"]["httpGet"] == json({{"path", "/health"}, {"port", 8080}, {"scheme", "HTTP"}}));
  CHECK(c["readinessProbe"]["httpGet"] == json({{"path", "/ready"}, {"port", 8181}, {"scheme", "HTTP"}}));
  const json& pdb = object_named(doc, "PodDisruptionBudget", "coredns");
  CHECK(pdb["spec"]["maxUnavailable"] == 1);
  CHECK(pdb["spec"]["selector"] == d["spec"]["selector"]);
}

TEST_CASE("objects.json: the contract's header, and the same bytes for the same topology", "[bootstrap]") {
  Topology t = parse(topology_text());
  const std::string text = render_bootstrap_objects(t);
  const json doc = json::parse(text);
  CHECK(doc["version"] == 1);
  CHECK(doc["api_server"] == "https://127.0.0.1:7443");
  CHECK(doc["ca_file"] == "/var/lib/kubernetes/ca.crt");
  CHECK(doc["cert_file"] == "/var/lib/kubernetes/bootstrap/kbundle-bootstrap.crt");
  CHECK(doc["key_file"] == "/var/lib/kubernetes/bootstrap/kbundle-bootstrap.key");
  CHECK(doc["field_manager"] == "kbundle");
  CHECK(doc["objects"].size() == 9);
  for (const auto& o : doc["objects"]) CHECK(o.size() == 2);  // api_path and object, nothing else
  CHECK(text.back() == '\n');
  CHECK(text.find("BEGIN") == std::string::npos);  // names the key file, never holds a key

  // Two states (other CAs, other keys): objects.json does not depend on them.
  TempDir a, b;
  auto sa = State::open(a.path + "/state", t, kNow);
  auto sb = State::open(b.path + "/state", t, kNow + 86400);
  CHECK(content(node(make_cluster_plan(t, *sa), "cp-b"), p::kBootstrapObjects) ==
        content(node(make_cluster_plan(t, *sb), "cp-b"), p::kBootstrapObjects));
  CHECK(render_bootstrap_objects(t) == text);
}

TEST_CASE("hostile topology values never reach objects.json: the parser refuses them at their key", "[bootstrap]") {
  // What objects.json takes from the topology: clusterDomain (into the Corefile), serviceCIDR
  // (kube-dns's IP), apiEndpoint.port (api_server) and kubernetesVersion (the catalog's image).
  struct Case {
    std::string from, to, key;
  };
  const std::vector<Case> cases = {
      {"clusterDomain: corp.internal", "clusterDomain: \"corp.internal {\\n}\\n. {\\n forward . 203.0.113.9\"", "clusterDomain"},
      {"clusterDomain: corp.internal", "clusterDomain: \"corp internal\"", "clusterDomain"},
      {"clusterDomain: corp.internal", "clusterDomain: \"corp.internal}\"", "clusterDomain"},
      {"clusterDomain: corp.internal", "clusterDomain: \"corp.internal\\\"\"", "clusterDomain"},
      {"clusterDomain: corp.internal", "clusterDomain: \"\"", "clusterDomain"},
      {"clusterDomain: corp.internal", "clusterDomain: corp..internal", "clusterDomain"},
      {"clusterDomain: corp.internal", "clusterDomain: " + std::string(300, 'a'), "clusterDomain"},
      {"clusterDomain: corp.internal", "clusterDomain: [a, b]", "clusterDomain"},
      {"serviceCIDR: 10.96.0.0/16", "serviceCIDR: 10.96.0.0/30", "serviceCIDR"},  // no .10 in it
      {"serviceCIDR: 10.96.0.0/16", "serviceCIDR: \"10.96.0.0/16\\n\"", "serviceCIDR"},
      {"serviceCIDR: 10.96.0.0/16", "serviceCIDR: 10.96.0.300/16", "serviceCIDR"},
      {"    port: 7443", "    port: 70000", "port"},
      {"    port: 7443", "    port: \"7443/../x\"", "port"},
      {"kubernetesVersion: v1.32.3", "kubernetesVersion: v1.31.0", "kubernetesVersion"},  // no catalog entry
      {"kubernetesVersion: v1.32.3", "kubernetesVersion: \"v1.32.3\\\"}\"", "kubernetesVersion"},
  };
  for (const auto& c : cases) {
    INFO(c.to);
    std::string text = topology_text();
    REQUIRE(text.find(c.from) != std::string::npos);
    text.replace(text.find(c.from), c.from.size(), c.to);
    TopologyResult r = parse_topology(text, "topology.yaml");
    CHECK_FALSE(r.ok());
    bool at_key = false;
    for (const auto& d : r.diagnostics) at_key |= d.severity == Diagnostic::Severity::Error && d.message.find(c.key) != std::string::npos;
    CHECK(at_key);
  }
}
