#include "generator/render.h"

#include <algorithm>
#include <map>
#include <string_view>

// kainjow's header is third-party: keep its warnings out of our -Werror build.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wcast-align"
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
#pragma GCC diagnostic ignored "-Wpedantic"
#include <kainjow/mustache.hpp>
#pragma GCC diagnostic pop

#include "base/error.h"
#include "generator/node_paths.h"
#include "base/embedded_file.h"

namespace kb {

namespace {

using MustacheData = kainjow::mustache::data;

// TLS 1.2 suites with forward secrecy and AEAD only (CIS 1.2.29, 4.2.12).
// The CHACHA20 names without _SHA256 are the ones etcd 3.4 understands;
// etcd 3.5 and Kubernetes accept them as aliases.
const std::vector<std::string>& strong_cipher_suites() {
  static const std::vector<std::string> suites = {
      "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
      "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",  "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
      "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",   "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
  };
  return suites;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

// Admission plugins on top of the default set (which already holds ServiceAccount,
// NamespaceLifecycle and the others CIS 1.2.12-13 ask to keep): CIS 1.2.3, 1.2.9,
// 1.2.11 and 1.2.14, less what cluster.hardening turns off.
std::vector<std::string> admission_plugins(const Hardening& h) {
  std::vector<std::string> plugins = {"NodeRestriction", "EventRateLimit"};
  if (h.deny_service_external_ips) plugins.emplace_back("DenyServiceExternalIPs");
  if (h.always_pull_images) plugins.emplace_back("AlwaysPullImages");
  return plugins;
}

std::string in_dir(const char* dir, const std::string& name) { return std::string(dir) + "/" + name; }

// Everything any template may refer to. Paths come from node_paths.h only, so
// a flag can never point somewhere the plan does not write.
MustacheData template_data(const Topology& topology, const Node& node, const EtcdRecordMember* etcd,
                           const char* ca_signing_cert) {
  MustacheData d;
  auto set = [&d](const std::string& key, const std::string& value) { d.set(key, value); };

  set("node_name", node.name);
  set("node_ip", node.private_ip);
  set("node_pod_cidr", node.pod_cidr);
  set("cluster_name", topology.cluster.name);
  set("cluster_domain", topology.cluster.cluster_domain);
  set("pod_cidr", topology.cluster.pod_cidr);
  set("service_cidr", topology.cluster.service_cidr);
  set("cluster_dns_ip", topology.cluster_dns_ip());
  set("api_port", std::to_string(topology.cluster.api_port));
  set("api_server_url", topology.api_server_url());
  set("installer_bin", paths::kInstallerBin);
  set("etcd_backup_schedule", topology.etcd_backup.schedule);

  std::vector<std::string> initial_cluster;
  std::vector<std::string> etcd_servers;
  for (const Node* cp : topology.control_planes()) {
    initial_cluster.push_back(cp->name + "=https://" + cp->private_ip + ":2380");
    etcd_servers.push_back("https://" + cp->private_ip + ":2379");
  }
  // A member keeps the flags it was first started with (etcd ignores them once it has data).
  set("etcd_initial_cluster", etcd ? etcd->initial_cluster : join(initial_cluster, ","));
  set("etcd_initial_cluster_state", etcd ? etcd->initial_cluster_state : "new");
  set("etcd_servers", join(etcd_servers, ","));

  set("tls_cipher_suites", join(strong_cipher_suites(), ","));
  set("etcd_cipher_suites", join(strong_cipher_suites(), ","));
  MustacheData suites{MustacheData::type::list};
  for (const auto& s : strong_cipher_suites()) suites.push_back(MustacheData(s));
  d.set("tls_cipher_suite_list", suites);

  set("bin_dir", paths::kBinDir);
  set("renew_before_days", std::to_string(topology.cluster.renew_before_days));
  set("textfile_collector_dir", paths::kTextfileCollectorDir);
  set("cert_metrics_file", paths::kCertMetricsFile);
  set("ca_cert", paths::kCaCert);
  set("ca_key", paths::kCaKey);
  set("ca_signing_cert", ca_signing_cert ? ca_signing_cert : paths::kCaCert);
  set("apiserver_cert", paths::kApiserverCert);
  set("apiserver_key", paths::kApiserverKey);
  set("apiserver_kubelet_client_cert", paths::kApiserverKubeletClientCert);
  set("apiserver_kubelet_client_key", paths::kApiserverKubeletClientKey);
  set("apiserver_etcd_client_cert", paths::kApiserverEtcdClientCert);
  set("apiserver_etcd_client_key", paths::kApiserverEtcdClientKey);
  set("etcd_ca_cert_for_apiserver", paths::kEtcdCaCertForApiserver);
  set("front_proxy_ca_cert", paths::kFrontProxyCaCert);
  set("front_proxy_client_cert", paths::kFrontProxyClientCert);
  set("front_proxy_client_key", paths::kFrontProxyClientKey);
  set("service_account_key", paths::kServiceAccountKey);
  set("service_account_pub", paths::kServiceAccountPub);
  set("encryption_config", paths::kEncryptionConfig);
  set("audit_policy", paths::kAuditPolicy);
  set("admission_control_config", paths::kAdmissionControlConfig);
  set("authentication_config", paths::kAuthenticationConfig);
  set("admission_plugins", join(admission_plugins(topology.cluster.hardening), ","));
  set("audit_log", paths::kAuditLog);
  set("controller_manager_kubeconfig", paths::kControllerManagerKubeconfig);
  set("scheduler_kubeconfig", paths::kSchedulerKubeconfig);
  set("scheduler_config", paths::kSchedulerConfig);
  set("etcd_ca_cert", paths::kEtcdCaCert);
  set("etcd_server_cert", paths::kEtcdServerCert);
  set("etcd_server_key", paths::kEtcdServerKey);
  set("etcd_peer_cert", paths::kEtcdPeerCert);
  set("etcd_peer_key", paths::kEtcdPeerKey);
  set("etcd_data_dir", paths::kEtcdDataDir);
  set("kubelet_cert", paths::kKubeletCert);
  set("kubelet_key", paths::kKubeletKey);
  set("kubelet_kubeconfig", paths::kKubeletKubeconfig);
  set("kubelet_config", paths::kKubeletConfig);
  set("kube_proxy_kubeconfig", paths::kKubeProxyKubeconfig);
  set("kube_proxy_config", paths::kKubeProxyConfig);
  set("containerd_config", paths::kContainerdConfig);
  set("containerd_socket", paths::kContainerdSocket);
  set("cni_bin_dir", paths::kCniBinDir);
  set("cni_conf_dir", paths::kCniConfDir);
  set("resolv_conf", paths::kResolvConf);
  return d;
}

std::string render(const std::string& template_name, const MustacheData& data) {
  kainjow::mustache::mustache tmpl{embedded_template(template_name)};
  if (!tmpl.is_valid()) throw Error("template " + template_name + ": " + tmpl.error_message());
  // Values are paths, IPs and URLs: never HTML-escape them.
  tmpl.set_custom_escape([](const std::string& s) { return s; });
  std::string text = tmpl.render(data);
  if (!tmpl.is_valid()) throw Error("template " + template_name + ": " + tmpl.error_message());
  return text;
}

struct Output {
  const char* template_name;
  std::string path;
  FileClass cls;
};

std::vector<Output> control_plane_outputs() {
  return {
      {"etcd.service.mustache", in_dir(paths::kSystemdDir, "etcd.service"), FileClass::Unit},
      {"kube-apiserver.service.mustache", in_dir(paths::kSystemdDir, "kube-apiserver.service"), FileClass::Unit},
      {"kube-controller-manager.service.mustache", in_dir(paths::kSystemdDir, "kube-controller-manager.service"),
       FileClass::Unit},
      {"kube-scheduler.service.mustache", in_dir(paths::kSystemdDir, "kube-scheduler.service"), FileClass::Unit},
      {"etcd-snapshot.service.mustache", paths::kEtcdSnapshotService, FileClass::Unit},
      {"etcd-snapshot.timer.mustache", paths::kEtcdSnapshotTimer, FileClass::Unit},
      {"kube-scheduler.yaml.mustache", paths::kSchedulerConfig, FileClass::Config},
      {"audit-policy.yaml.mustache", paths::kAuditPolicy, FileClass::Config},
      {"admission-control.yaml.mustache", paths::kAdmissionControlConfig, FileClass::Config},
      {"authentication-config.yaml.mustache", paths::kAuthenticationConfig, FileClass::Config},
  };
}

std::vector<Output> worker_outputs() {
  return {
      {"containerd.service.mustache", in_dir(paths::kSystemdDir, "containerd.service"), FileClass::Unit},
      {"kubelet.service.mustache", in_dir(paths::kSystemdDir, "kubelet.service"), FileClass::Unit},
      {"kube-proxy.service.mustache", in_dir(paths::kSystemdDir, "kube-proxy.service"), FileClass::Unit},
      {"containerd-config.toml.mustache", paths::kContainerdConfig, FileClass::Config},
      {"kubelet-config.yaml.mustache", paths::kKubeletConfig, FileClass::Config},
      {"kube-proxy-config.yaml.mustache", paths::kKubeProxyConfig, FileClass::Config},
      {"10-bridge.conf.mustache", paths::kCniBridgeConf, FileClass::Config},
      {"99-loopback.conf.mustache", paths::kCniLoopbackConf, FileClass::Config},
      {"sysctl-kubernetes.conf.mustache", paths::kSysctlConf, FileClass::Config},
      {"modules-load-kubernetes.conf.mustache", paths::kModulesLoadConf, FileClass::Config},
  };
}

}  // namespace

const std::string& embedded_template(const std::string& name) {
  // Copied once into strings so callers get a stable reference.
  static const std::map<std::string, std::string, std::less<>> table = [] {
    std::map<std::string, std::string, std::less<>> t;
    for (const auto& e : embedded_templates()) t.emplace(std::string(e.name), std::string(e.text));
    return t;
  }();
  auto it = table.find(name);
  if (it == table.end()) throw Error("template " + name + ": not embedded in this build");
  return it->second;
}

std::vector<PlannedFile> render_units_and_configs(const Topology& topology, const Node& node,
                                                  const EtcdRecordMember* etcd, const char* ca_signing_cert) {
  // Every node: the unit that finishes or undoes an interrupted apply at boot.
  std::vector<Output> outputs{{"kbundle-recover.service.mustache", in_dir(paths::kSystemdDir, "kbundle-recover.service"), FileClass::Unit}};
  // Every node: the certificate expiry metrics, refreshed by a timer (docs/certs.md).
  outputs.push_back({"kbundle-cert-metrics.service.mustache", kCertMetricsServiceFile, FileClass::Unit});
  outputs.push_back({"kbundle-cert-metrics.timer.mustache", in_dir(paths::kSystemdDir, kCertMetricsTimerUnit), FileClass::Unit});
  if (node.is_control_plane()) {
    auto cp = control_plane_outputs();
    outputs.insert(outputs.end(), cp.begin(), cp.end());
  }
  if (node.is_worker()) {
    if (node.pod_cidr.empty()) throw Error("node " + node.name + ": worker has no pod CIDR");
    auto w = worker_outputs();
    outputs.insert(outputs.end(), w.begin(), w.end());
  }

  const MustacheData data = template_data(topology, node, etcd, ca_signing_cert);
  std::vector<PlannedFile> files;
  files.reserve(outputs.size());
  for (const auto& o : outputs) {
    PlannedFile f;
    f.path = o.path;
    f.mode = paths::kFileMode;
    f.cls = o.cls;
    f.content = render(o.template_name, data);
    files.push_back(std::move(f));
  }
  std::sort(files.begin(), files.end(), [](const PlannedFile& a, const PlannedFile& b) { return a.path < b.path; });
  return files;
}

}  // namespace kb
