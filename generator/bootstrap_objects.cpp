#include "generator/bootstrap_objects.h"

#include "base/error.h"
#include "binaries/catalog.h"
#include "generator/node_paths.h"
#include "generator/pki.h"

namespace kb {

namespace {

using json = nlohmann::json;

constexpr const char* kRbacGroup = "rbac.authorization.k8s.io";
constexpr const char* kRbacApiVersion = "rbac.authorization.k8s.io/v1";
constexpr const char* kKubeSystem = "kube-system";
constexpr const char* kDnsApp = "kube-dns";  // CoreDNS keeps kube-dns's labels and Service name
constexpr const char* kCoreDns = "coredns";

// The CoreDNS image runs as distroless "nonroot"; a name cannot prove non-root to the kubelet,
// so the pod names the uid.
constexpr int kCoreDnsUid = 65532;

json strings(std::initializer_list<const char*> list) {
  json a = json::array();
  for (const char* s : list) a.push_back(s);
  return a;
}

json metadata(const std::string& name, const std::string& ns, json labels = json::object()) {
  labels[kManagedByLabel] = kBootstrapFieldManager;
  json m = {{"name", name}, {"labels", labels}};
  if (!ns.empty()) m["namespace"] = ns;
  return m;
}

json object(const char* api_version, const char* kind, json meta) {
  return {{"apiVersion", api_version}, {"kind", kind}, {"metadata", std::move(meta)}};
}

json dns_labels() { return {{"k8s-app", kDnsApp}, {"app.kubernetes.io/name", kCoreDns}}; }

// Users and groups of a client certificate, as RBAC subjects.
json subjects_of(const CertRequest& cert) {
  json s = json::array({{{"apiGroup", kRbacGroup}, {"kind", "User"}, {"name", cert.common_name}}});
  for (const auto& o : cert.organizations) s.push_back({{"apiGroup", kRbacGroup}, {"kind", "Group"}, {"name", o}});
  return s;
}

json cluster_role_binding(const std::string& name, const std::string& role, json subjects, json labels = json::object()) {
  json b = object(kRbacApiVersion, "ClusterRoleBinding", metadata(name, "", std::move(labels)));
  b["roleRef"] = {{"apiGroup", kRbacGroup}, {"kind", "ClusterRole"}, {"name", role}};
  b["subjects"] = std::move(subjects);
  return b;
}

// Kubernetes The Hard Way's RBAC for kubelet authorization: kube-apiserver reaches the kubelet API
// (logs, exec, port-forward, metrics) as its kubelet client cert's user, and the kubelet
// (authorization mode Webhook) asks the API whether that user may.
void add_apiserver_to_kubelet(std::vector<json>& out) {
  const char* name = "system:kube-apiserver-to-kubelet";
  json role = object(kRbacApiVersion, "ClusterRole", metadata(name, "", {{"kubernetes.io/bootstrapping", "rbac-defaults"}}));
  role["metadata"]["annotations"] = {{"rbac.authorization.kubernetes.io/autoupdate", "true"}};
  role["rules"] = json::array({{{"apiGroups", strings({""})},
                                {"resources", strings({"nodes/proxy", "nodes/stats", "nodes/log", "nodes/spec", "nodes/metrics"})},
                                {"verbs", strings({"*"})}}});
  out.push_back(std::move(role));
  out.push_back(cluster_role_binding(name, name, subjects_of(apiserver_kubelet_client_request()),
                                     {{"kubernetes.io/bootstrapping", "rbac-defaults"}}));
}

// The Corefile of coredns/deployment's kubernetes/coredns.yaml.sed, for the cluster domain; the
// upstream is the node's resolver (dnsPolicy Default gives the pod the kubelet's resolvConf).
std::string corefile(const std::string& cluster_domain) {
  return ".:53 {\n"
         "    errors\n"
         "    health {\n"
         "        lameduck 5s\n"
         "    }\n"
         "    ready\n"
         "    kubernetes " + cluster_domain + " in-addr.arpa ip6.arpa {\n"
         "        pods insecure\n"
         "        fallthrough in-addr.arpa ip6.arpa\n"
         "        ttl 30\n"
         "    }\n"
         "    prometheus :9153\n"
         "    forward . /etc/resolv.conf {\n"
         "        max_concurrent 1000\n"
         "    }\n"
         "    cache 30\n"
         "    loop\n"
         "    reload\n"
         "    loadbalance\n"
         "}\n";
}

json coredns_deployment(const std::string& image) {
  json container = {
      {"name", kCoreDns},
      {"image", image},
      // The image is imported from the worker bundle's coredns.tar; a pull is only a fallback.
      {"imagePullPolicy", "IfNotPresent"},
      {"args", strings({"-conf", "/etc/coredns/Corefile"})},
      {"resources", {{"limits", {{"memory", "170Mi"}}}, {"requests", {{"cpu", "100m"}, {"memory", "70Mi"}}}}},
      {"volumeMounts", json::array({{{"name", "config-volume"}, {"mountPath", "/etc/coredns"}, {"readOnly", true}}})},
      {"ports", json::array({{{"name", "dns"}, {"containerPort", 53}, {"protocol", "UDP"}},
                             {{"name", "dns-tcp"}, {"containerPort", 53}, {"protocol", "TCP"}},
                             {{"name", "metrics"}, {"containerPort", 9153}, {"protocol", "TCP"}}})},
      {"securityContext",
       {{"allowPrivilegeEscalation", false},
        {"capabilities", {{"add", strings({"NET_BIND_SERVICE"})}, {"drop", strings({"ALL"})}}},
        {"readOnlyRootFilesystem", true},
        {"runAsNonRoot", true}}},
      {"livenessProbe",
       {{"httpGet", {{"path", "/health"}, {"port", 8080}, {"scheme", "HTTP"}}},
        {"initialDelaySeconds", 60},
        {"timeoutSeconds", 5},
        {"successThreshold", 1},
        {"failureThreshold", 5}}},
      {"readinessProbe", {{"httpGet", {{"path", "/ready"}, {"port", 8181}, {"scheme", "HTTP"}}}}},
  };
  json pod_spec = {
      {"priorityClassName", "system-cluster-critical"},
      {"serviceAccountName", kCoreDns},
      {"nodeSelector", {{"kubernetes.io/os", "linux"}}},
      {"tolerations", json::array({{{"key", "CriticalAddonsOnly"}, {"operator", "Exists"}},
                                   {{"key", "node-role.kubernetes.io/control-plane"},
                                    {"operator", "Exists"},
                                    {"effect", "NoSchedule"}}})},
      // Preferred, not required: a cluster with one schedulable node still runs both replicas.
      {"affinity",
       {{"podAntiAffinity",
         {{"preferredDuringSchedulingIgnoredDuringExecution",
           json::array({{{"weight", 100},
                         {"podAffinityTerm",
                          {{"labelSelector",
                            {{"matchExpressions",
                              json::array({{{"key", "k8s-app"}, {"operator", "In"}, {"values", strings({kDnsApp})}}})}}},
                           {"topologyKey", "kubernetes.io/hostname"}}}}})}}}}},
      // allowPrivilegeEscalation=false (no_new_privs) voids the binary's file capability, so a
      // non-root process binds port 53 through this namespaced, "safe" sysctl, as upstream does.
      {"securityContext",
       {{"runAsNonRoot", true},
        {"runAsUser", kCoreDnsUid},
        {"runAsGroup", kCoreDnsUid},
        {"seccompProfile", {{"type", "RuntimeDefault"}}},
        {"sysctls", json::array({{{"name", "net.ipv4.ip_unprivileged_port_start"}, {"value", "53"}}})}}},
      {"dnsPolicy", "Default"},
      {"containers", json::array({container})},
      {"volumes", json::array({{{"name", "config-volume"},
                                {"configMap",
                                 {{"name", kCoreDns},
                                  {"items", json::array({{{"key", "Corefile"}, {"path", "Corefile"}}})}}}}})},
  };
  json d = object("apps/v1", "Deployment", metadata(kCoreDns, kKubeSystem, dns_labels()));
  d["spec"] = {{"replicas", 2},
               {"strategy", {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxUnavailable", 1}}}}},
               {"selector", {{"matchLabels", {{"k8s-app", kDnsApp}}}}},
               {"template", {{"metadata", {{"labels", dns_labels()}}}, {"spec", pod_spec}}}};
  return d;
}

void add_coredns(const Topology& t, std::vector<json>& out) {
  const std::string role_name = "system:coredns";
  out.push_back(object("v1", "ServiceAccount", metadata(kCoreDns, kKubeSystem, dns_labels())));

  json role = object(kRbacApiVersion, "ClusterRole", metadata(role_name, ""));
  role["rules"] = json::array({{{"apiGroups", strings({""})},
                                {"resources", strings({"endpoints", "services", "pods", "namespaces"})},
                                {"verbs", strings({"list", "watch"})}},
                               {{"apiGroups", strings({"discovery.k8s.io"})},
                                {"resources", strings({"endpointslices"})},
                                {"verbs", strings({"list", "watch"})}}});
  out.push_back(std::move(role));
  out.push_back(cluster_role_binding(
      role_name, role_name,
      json::array({{{"kind", "ServiceAccount"}, {"name", kCoreDns}, {"namespace", kKubeSystem}}})));

  json config = object("v1", "ConfigMap", metadata(kCoreDns, kKubeSystem, dns_labels()));
  config["data"] = {{"Corefile", corefile(t.cluster.cluster_domain)}};
  out.push_back(std::move(config));

  // The Service before the Deployment: its IP is the kubelets' clusterDNS, reserved first.
  json labels = dns_labels();
  labels["kubernetes.io/cluster-service"] = "true";
  labels["kubernetes.io/name"] = "CoreDNS";
  json service = object("v1", "Service", metadata(kDnsApp, kKubeSystem, labels));
  service["spec"] = {{"selector", {{"k8s-app", kDnsApp}}},
                     {"clusterIP", t.cluster_dns_ip()},
                     {"ports", json::array({{{"name", "dns"}, {"port", 53}, {"protocol", "UDP"}, {"targetPort", 53}},
                                            {{"name", "dns-tcp"}, {"port", 53}, {"protocol", "TCP"}, {"targetPort", 53}},
                                            {{"name", "metrics"}, {"port", 9153}, {"protocol", "TCP"}, {"targetPort", 9153}}})}};
  out.push_back(std::move(service));

  out.push_back(coredns_deployment(coredns_image(t.cluster.kubernetes_version)));

  json pdb = object("policy/v1", "PodDisruptionBudget", metadata(kCoreDns, kKubeSystem, dns_labels()));
  pdb["spec"] = {{"maxUnavailable", 1}, {"selector", {{"matchLabels", {{"k8s-app", kDnsApp}}}}}};
  out.push_back(std::move(pdb));
}

struct KindInfo {
  const char* kind;
  const char* plural;
  bool namespaced;
};
constexpr KindInfo kKinds[] = {
    {"ServiceAccount", "serviceaccounts", true},      {"ConfigMap", "configmaps", true},
    {"Service", "services", true},                    {"Deployment", "deployments", true},
    {"PodDisruptionBudget", "poddisruptionbudgets", true}, {"ClusterRole", "clusterroles", false},
    {"ClusterRoleBinding", "clusterrolebindings", false},
};

}  // namespace

const Node* bootstrap_node(const Topology& topology) {
  auto cps = topology.control_planes();
  return cps.empty() ? nullptr : cps.front();
}

std::string coredns_image(const std::string& kubernetes_version) {
  for (const auto& image : catalog_entry(kubernetes_version).images)
    if (image.component == kCoreDns) return image.ref;
  throw Error("release catalog " + kubernetes_version + ": no coredns image (binaries/catalog/)");
}

std::string api_path_of(const json& object) {
  const std::string api_version = object.at("apiVersion").get<std::string>();
  const std::string kind = object.at("kind").get<std::string>();
  const json& meta = object.at("metadata");
  for (const auto& k : kKinds) {
    if (kind != k.kind) continue;
    std::string path = api_version.find('/') == std::string::npos ? "/api/" + api_version : "/apis/" + api_version;
    if (k.namespaced) path += "/namespaces/" + meta.at("namespace").get<std::string>();
    return path + "/" + k.plural + "/" + meta.at("name").get<std::string>();
  }
  throw Error("internal error: bootstrap object of kind " + kind + " has no REST path in generator/bootstrap_objects.cpp");
}

std::vector<BootstrapObject> bootstrap_objects(const Topology& topology) {
  std::vector<json> objects;
  add_apiserver_to_kubelet(objects);
  add_coredns(topology, objects);
  std::vector<BootstrapObject> out;
  for (auto& o : objects) {
    std::string path = api_path_of(o);
    out.push_back({std::move(path), std::move(o)});
  }
  return out;
}

std::string render_bootstrap_objects(const Topology& topology) {
  json list = json::array();
  for (const auto& o : bootstrap_objects(topology)) list.push_back({{"api_path", o.api_path}, {"object", o.object}});
  json doc = {{"version", 1},
              {"api_server", "https://127.0.0.1:" + std::to_string(topology.cluster.api_port)},
              {"ca_file", paths::kCaCert},
              {"cert_file", paths::kBootstrapCert},
              {"key_file", paths::kBootstrapKey},
              {"field_manager", kBootstrapFieldManager},
              {"objects", std::move(list)}};
  // Keys sorted (nlohmann::json is a std::map): the same topology always gives the same bytes.
  return doc.dump(2) + "\n";
}

}  // namespace kb
