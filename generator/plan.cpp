#include "generator/plan.h"

#include <algorithm>

#include "base/error.h"
#include "generator/bootstrap_objects.h"
#include "generator/encryption_config.h"
#include "generator/etcd_membership.h"
#include "generator/etcd_restore.h"
#include "generator/key_rotation.h"
#include "generator/kubeconfig.h"
#include "generator/node_paths.h"
#include "generator/parallel.h"
#include "generator/render.h"
#include "generator/rotation.h"
#include "generator/state.h"

namespace kb {

const char* to_string(FileClass c) {
  switch (c) {
    case FileClass::Secret: return "secret";
    case FileClass::Config: return "config";
    case FileClass::Unit: return "unit";
    case FileClass::Binary: return "binary";
  }
  return "?";
}

namespace {

constexpr const char* kCluster = "cluster";  // owner of the certs every node of a role shares

// Everything one node's plan needs, shared read-only by the worker threads.
struct Context {
  const Topology& topology;
  State& state;
  std::string local_api = "";  // https://127.0.0.1:<port>
  EtcdMembershipChange etcd;   // the record after this generation gives each member its flags
};

class NodeBuilder {
 public:
  NodeBuilder(const Context& ctx, const Node& node) : ctx_(ctx), plan_{} { plan_.node = node; }

  void add(const std::string& path, FileClass cls, std::string content) {
    PlannedFile f;
    f.path = path;
    f.mode = paths::kFileMode;
    f.cls = cls;
    f.content = std::move(content);
    add(std::move(f));
  }

  // A "both" node is asked for some files (ca.crt) by both roles: the same file once is fine.
  void add(PlannedFile f) {
    for (const auto& g : plan_.files)
      if (g.path == f.path) {
        if (g.content == f.content && g.mode == f.mode) return;
        throw Error("internal error: " + plan_.node.name + " plans " + f.path + " twice with different content");
      }
    plan_.files.push_back(std::move(f));
  }

  // Issues (or reuses) a leaf and adds its cert and key files.
  IssuedCert add_cert(const std::string& owner, const std::string& name, CaName issuer, const CertRequest& req,
                      const char* cert_path, const char* key_path) {
    IssuedCert c = ctx_.state.leaf(owner, name, issuer, req);
    if (cert_path) add(cert_path, FileClass::Config, c.cert_pem);
    if (key_path) add(key_path, FileClass::Secret, c.key_pem);
    return c;
  }

  void add_kubeconfig(const char* path, const std::string& server, const std::string& user, const IssuedCert& cert) {
    KubeconfigSpec k{ctx_.topology.cluster.name, server, trust_bundle(ctx_.state, CaName::Kubernetes), user,
                     cert.cert_pem, cert.key_pem};
    add(path, FileClass::Secret, render_kubeconfig(k));
  }

  NodePlan finish() {
    std::sort(plan_.files.begin(), plan_.files.end(),
              [](const PlannedFile& a, const PlannedFile& b) { return a.path < b.path; });
    std::sort(plan_.directories.begin(), plan_.directories.end());
    plan_.directories.erase(std::unique(plan_.directories.begin(), plan_.directories.end()), plan_.directories.end());
    return std::move(plan_);
  }

  NodePlan& plan() { return plan_; }

 private:
  const Context& ctx_;
  NodePlan plan_;
};

std::vector<std::string> node_ips(const Node& n) {
  std::vector<std::string> ips{n.private_ip};
  if (!n.public_ip.empty()) ips.push_back(n.public_ip);
  return ips;
}

std::vector<std::string> unique_sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

bool is_ip(const std::string& s) { return parse_ipv4(s).has_value(); }

void plan_control_plane(const Context& ctx, const Node& n, NodeBuilder& b) {
  const Topology& t = ctx.topology;
  const Cluster& c = t.cluster;
  State& s = ctx.state;

  // Kubernetes CA: cert and key (kube-controller-manager signs kubelet CSRs with it). The trust
  // files hold both CAs during a rotation (generator/rotation.h); the signing pair is one CA's.
  b.add(paths::kCaCert, FileClass::Config, trust_bundle(s, CaName::Kubernetes));
  b.add(paths::kCaKey, FileClass::Secret, signing_ca(s, CaName::Kubernetes).key_pem);
  if (s.rotation(ca_name(CaName::Kubernetes)))
    b.add(paths::kCaSigningCert, FileClass::Config, signing_ca(s, CaName::Kubernetes).cert_pem);
  b.add(paths::kEtcdCaCertForApiserver, FileClass::Config, trust_bundle(s, CaName::Etcd));
  b.add(paths::kFrontProxyCaCert, FileClass::Config, trust_bundle(s, CaName::FrontProxy));
  // During a key rotation (generator/key_rotation.h) these hold the phase's keys: the key file the
  // signer, the .pub file every verifying key, the config every decrypting key.
  ServiceAccountKeys sa = service_account_keys(s);
  b.add(paths::kServiceAccountKey, FileClass::Secret, sa.signing_key_pem);
  b.add(paths::kServiceAccountPub, FileClass::Config, service_account_public_file(sa));
  b.add(paths::kEncryptionConfig, FileClass::Secret, render_encryption_config(encryption_keys(s, t)));
  if (std::string r = render_reencrypt_request(s, t); !r.empty() && bootstrap_node(t) && bootstrap_node(t)->name == n.name)
    b.add(paths::kReencryptRequest, FileClass::Config, r);

  // kube-apiserver serving cert: every name a client may use to reach it.
  CertRequest api;
  api.common_name = "kube-apiserver";
  api.server_auth = true;
  api.dns_names = {"kubernetes", "kubernetes.default", "kubernetes.default.svc",
                   "kubernetes.default.svc." + c.cluster_domain, n.name, n.hostname};
  api.ip_addresses = node_ips(n);
  api.ip_addresses.push_back("127.0.0.1");
  api.ip_addresses.push_back(t.api_service_ip());
  (is_ip(c.api_host) ? api.ip_addresses : api.dns_names).push_back(c.api_host);
  api.dns_names = unique_sorted(api.dns_names);
  api.ip_addresses = unique_sorted(api.ip_addresses);
  b.add_cert(n.name, "kube-apiserver", CaName::Kubernetes, api, paths::kApiserverCert, paths::kApiserverKey);

  b.add_cert(n.name, "apiserver-kubelet-client", CaName::Kubernetes, apiserver_kubelet_client_request(),
             paths::kApiserverKubeletClientCert, paths::kApiserverKubeletClientKey);

  CertRequest etcd_client;
  etcd_client.common_name = "kube-apiserver-etcd-client";
  etcd_client.client_auth = true;
  b.add_cert(n.name, "apiserver-etcd-client", CaName::Etcd, etcd_client, paths::kApiserverEtcdClientCert,
             paths::kApiserverEtcdClientKey);

  CertRequest front_proxy;
  front_proxy.common_name = "front-proxy-client";
  front_proxy.client_auth = true;
  b.add_cert(n.name, "front-proxy-client", CaName::FrontProxy, front_proxy, paths::kFrontProxyClientCert,
             paths::kFrontProxyClientKey);

  // etcd serving and peer certs: both usages, since etcd members dial each other with the peer cert.
  CertRequest etcd;
  etcd.common_name = n.name;
  etcd.server_auth = etcd.client_auth = true;
  etcd.dns_names = unique_sorted({n.name, n.hostname, "localhost"});
  etcd.ip_addresses = unique_sorted({n.private_ip, "127.0.0.1"});
  b.add(paths::kEtcdCaCert, FileClass::Config, trust_bundle(s, CaName::Etcd));
  b.add_cert(n.name, "etcd-server", CaName::Etcd, etcd, paths::kEtcdServerCert, paths::kEtcdServerKey);
  b.add_cert(n.name, "etcd-peer", CaName::Etcd, etcd, paths::kEtcdPeerCert, paths::kEtcdPeerKey);
  // For the installer: how this member joins, and which members the cluster drops (docs/etcd.md).
  b.add(paths::kEtcdMembership, FileClass::Config, render_etcd_membership_file(ctx.etcd, t, n));
  // Snapshots on a timer (docs/backup.md): the policy `kbundle-installer etcd snapshot` follows.
  b.add(paths::kEtcdBackupConfig, FileClass::Config, render_etcd_backup_file(t.etcd_backup));

  // Control-plane components reach their own apiserver on loopback.
  CertRequest cm;
  cm.common_name = "system:kube-controller-manager";
  cm.client_auth = true;
  b.add_kubeconfig(paths::kControllerManagerKubeconfig, ctx.local_api, cm.common_name,
                   b.add_cert(kCluster, "kube-controller-manager", CaName::Kubernetes, cm, nullptr, nullptr));
  CertRequest sched;
  sched.common_name = "system:kube-scheduler";
  sched.client_auth = true;
  b.add_kubeconfig(paths::kSchedulerKubeconfig, ctx.local_api, sched.common_name,
                   b.add_cert(kCluster, "kube-scheduler", CaName::Kubernetes, sched, nullptr, nullptr));
  CertRequest admin;
  admin.common_name = "admin";
  admin.organizations = {"system:masters"};
  admin.client_auth = true;
  b.add_kubeconfig(paths::kAdminKubeconfig, ctx.local_api, "admin",
                   b.add_cert(kCluster, "admin", CaName::Kubernetes, admin, nullptr, nullptr));

  // The designated node only: the bootstrap objects and the identity that applies them (the
  // installer there applies them once its apiserver is healthy; docs/bootstrap.md).
  if (const Node* designated = bootstrap_node(t); designated && designated->name == n.name) {
    b.add(paths::kBootstrapObjects, FileClass::Config, render_bootstrap_objects(t));
    b.add_cert(kCluster, "kbundle-bootstrap", CaName::Kubernetes, bootstrap_client_request(), paths::kBootstrapCert,
               paths::kBootstrapKey);
    b.plan().directories.push_back(paths::kBootstrapDir);
  }

  // Directories kbundle owns (created 0700); system ones like /etc/systemd/system are not listed.
  for (const char* d : {paths::kKubernetesDir, paths::kEtcdDir, paths::kEtcdDataDir, paths::kAuditLogDir,
                        paths::kSchedulerConfigDir})
    b.plan().directories.push_back(d);
  for (const char* u : {"etcd.service", "kube-apiserver.service", "kube-controller-manager.service",
                        "kube-scheduler.service", kEtcdSnapshotTimerUnit})
    b.plan().units.push_back(u);

  // etcd reports ready only with quorum: the installer starts it without blocking and checks here.
  b.plan().health_checks.push_back({"etcd", "etcd", "https://127.0.0.1:2379/health", paths::kEtcdCaCertForApiserver,
                                    paths::kApiserverEtcdClientCert, paths::kApiserverEtcdClientKey, 120});
  b.plan().health_checks.push_back({"kube-apiserver", "https", ctx.local_api + "/healthz", paths::kCaCert, "", "", 120});
  // Their serving certs are self-signed on loopback; the check is that they answer.
  b.plan().health_checks.push_back(
      {"kube-controller-manager", "https", "https://127.0.0.1:10257/healthz", "", "", "", 60});
  b.plan().health_checks.push_back({"kube-scheduler", "https", "https://127.0.0.1:10259/healthz", "", "", "", 60});
}

void plan_worker(const Context& ctx, const Node& n, NodeBuilder& b) {
  const Topology& t = ctx.topology;
  State& s = ctx.state;
  b.add(paths::kCaCert, FileClass::Config, trust_bundle(s, CaName::Kubernetes));

  CertRequest kubelet;
  kubelet.common_name = "system:node:" + n.name;
  kubelet.organizations = {"system:nodes"};
  kubelet.server_auth = kubelet.client_auth = true;
  kubelet.dns_names = unique_sorted({n.name, n.hostname});
  kubelet.ip_addresses = unique_sorted(node_ips(n));
  IssuedCert kc = b.add_cert(n.name, "kubelet", CaName::Kubernetes, kubelet, paths::kKubeletCert, paths::kKubeletKey);
  b.add_kubeconfig(paths::kKubeletKubeconfig, t.api_server_url(), kubelet.common_name, kc);

  CertRequest proxy;
  proxy.common_name = "system:kube-proxy";
  proxy.organizations = {"system:node-proxier"};
  proxy.client_auth = true;
  b.add_kubeconfig(paths::kKubeProxyKubeconfig, t.api_server_url(), proxy.common_name,
                   b.add_cert(kCluster, "kube-proxy", CaName::Kubernetes, proxy, nullptr, nullptr));

  for (const char* d : {paths::kKubernetesDir, paths::kKubeletDir, paths::kKubeProxyDir, paths::kContainerdDir,
                        paths::kCniConfDir})
    b.plan().directories.push_back(d);
  for (const char* u : {"containerd.service", "kubelet.service", "kube-proxy.service"}) b.plan().units.push_back(u);
  b.plan().health_checks.push_back({"containerd", "unit", "containerd.service", "", "", "", 60});
  b.plan().health_checks.push_back({"kubelet", "http", "http://127.0.0.1:10248/healthz", "", "", "", 120});
  b.plan().health_checks.push_back({"kube-proxy", "http", "http://127.0.0.1:10256/healthz", "", "", "", 60});
}

NodePlan plan_node(const Context& ctx, const Node& n) {
  NodeBuilder b(ctx, n);
  if (n.is_control_plane()) plan_control_plane(ctx, n, b);
  if (n.is_worker()) plan_worker(ctx, n, b);
  b.plan().units.push_back(kCertMetricsTimerUnit);  // every node, last (docs/certs.md)
  const char* signing_cert = ctx.state.rotation(ca_name(CaName::Kubernetes)) ? paths::kCaSigningCert : nullptr;
  for (auto& f : render_units_and_configs(ctx.topology, n, ctx.etcd.record.find(n.name), signing_cert))
    b.add(std::move(f));
  return b.finish();
}

}  // namespace

ClusterPlan make_cluster_plan(const Topology& topology, State& state, const std::vector<std::string>& only) {
  Context ctx{topology, state, "https://127.0.0.1:" + std::to_string(topology.cluster.api_port),
              plan_etcd_membership(state, topology)};

  std::vector<const Node*> selected;
  for (const auto& n : topology.nodes)
    if (only.empty() || std::find(only.begin(), only.end(), n.name) != only.end()) selected.push_back(&n);
  for (const auto& name : only)
    if (std::none_of(topology.nodes.begin(), topology.nodes.end(), [&](const Node& n) { return n.name == name; }))
      throw Error(topology.source_path + ": no node named '" + name + "' (check --node)");

  ClusterPlan plan;
  plan.cluster_name = topology.cluster.name;
  plan.cluster_id = state.cluster_id();
  plan.nodes.resize(selected.size());

  // Key generation dominates for large clusters: spread the nodes over the cores.
  parallel_for(selected.size(), [&](size_t i) { plan.nodes[i] = plan_node(ctx, *selected[i]); });

  // The workstation's admin kubeconfig talks to the load balancer.
  CertRequest admin;
  admin.common_name = "admin";
  admin.organizations = {"system:masters"};
  admin.client_auth = true;
  IssuedCert a = state.leaf(kCluster, "admin", CaName::Kubernetes, admin);
  plan.admin_kubeconfig = render_kubeconfig(
      {topology.cluster.name, topology.api_server_url(), trust_bundle(state, CaName::Kubernetes), "admin", a.cert_pem, a.key_pem});
  return plan;
}

}  // namespace kb
