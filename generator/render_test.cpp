#include "generator/render.h"

#include <yaml-cpp/yaml.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "base/error.h"
#include "generator/node_paths.h"

namespace {

using kb::FileClass;
using kb::Node;
using kb::PlannedFile;
using kb::Role;
using kb::Topology;

// The example cluster: 3 control-plane and 3 worker nodes, KTHW addressing.
Topology example_topology() {
  Topology t;
  t.source_path = "example.yaml";
  t.cluster.name = "kb-example";
  t.cluster.api_host = "kb-example-api.elb.eu-west-1.amazonaws.com";
  for (int i = 0; i < 3; ++i) {
    Node n;
    n.name = "cp-" + std::to_string(i);
    n.hostname = n.name;
    n.role = Role::ControlPlane;
    n.private_ip = "10.0.1.1" + std::to_string(i);
    t.nodes.push_back(n);
  }
  for (int i = 0; i < 3; ++i) {
    Node n;
    n.name = "worker-" + std::to_string(i);
    n.hostname = n.name;
    n.role = Role::Worker;
    n.private_ip = "10.0.1.2" + std::to_string(i);
    n.pod_cidr = "10.200." + std::to_string(i) + ".0/24";
    t.nodes.push_back(n);
  }
  return t;
}

const Node& node_named(const Topology& t, const std::string& name) {
  for (const auto& n : t.nodes)
    if (n.name == name) return n;
  throw std::runtime_error("no node " + name);
}

std::set<std::string> paths_of(const std::vector<PlannedFile>& files) {
  std::set<std::string> out;
  for (const auto& f : files) out.insert(f.path);
  return out;
}

const PlannedFile& file_at(const std::vector<PlannedFile>& files, const std::string& path) {
  for (const auto& f : files)
    if (f.path == path) return f;
  FAIL("no file " << path);
  throw std::logic_error("unreachable");
}

std::string unit_path(const std::string& name) { return std::string(kb::paths::kSystemdDir) + "/" + name; }
// The units that run kbundle-installer, not a component (recovery, certificate metrics, etcd
// snapshots): checked by their own cases.
bool installer_unit(const std::string& path) {
  return path.rfind(unit_path("kbundle-"), 0) == 0 || path == kb::paths::kEtcdSnapshotService ||
         path == kb::paths::kEtcdSnapshotTimer;
}

const std::set<std::string> kControlPlaneFiles = {
    unit_path("kbundle-recover.service"),  unit_path("kbundle-cert-metrics.service"), unit_path("kbundle-cert-metrics.timer"),  unit_path("etcd.service"),           unit_path("kube-apiserver.service"),
    unit_path("kube-controller-manager.service"), unit_path("kube-scheduler.service"),
    kb::paths::kSchedulerConfig,         kb::paths::kAuditPolicy,
    kb::paths::kAdmissionControlConfig,  kb::paths::kAuthenticationConfig,
    kb::paths::kEtcdSnapshotService,     kb::paths::kEtcdSnapshotTimer,
};
const std::set<std::string> kWorkerFiles = {
    unit_path("kbundle-recover.service"), unit_path("kbundle-cert-metrics.service"), unit_path("kbundle-cert-metrics.timer"), unit_path("containerd.service"), unit_path("kubelet.service"),   unit_path("kube-proxy.service"),
    kb::paths::kContainerdConfig,    kb::paths::kKubeletConfig,      kb::paths::kKubeProxyConfig,
    kb::paths::kCniBridgeConf,       kb::paths::kCniLoopbackConf,    kb::paths::kSysctlConf,
    kb::paths::kModulesLoadConf,
};

// ExecStart of a unit: the binary and its --flag=value arguments, with the
// backslash continuations joined.
struct ExecStart {
  std::string binary;
  std::vector<std::pair<std::string, std::string>> flags;  // in order, "--name" -> value
  std::vector<std::string> other;                          // anything that is not --flag=value
};

ExecStart exec_start(const std::string& unit) {
  std::istringstream in(unit);
  std::string line, joined;
  bool in_exec = false;
  while (std::getline(in, line)) {
    if (!in_exec && line.rfind("ExecStart=", 0) != 0) continue;
    in_exec = true;
    bool more = !line.empty() && line.back() == '\\';
    if (more) line.pop_back();
    joined += line + " ";
    if (!more) break;
  }
  ExecStart e;
  std::istringstream words(joined.substr(std::string("ExecStart=").size()));
  words >> e.binary;
  std::string w;
  while (words >> w) {
    auto eq = w.find('=');
    if (w.rfind("--", 0) == 0 && eq != std::string::npos)
      e.flags.emplace_back(w.substr(0, eq), w.substr(eq + 1));
    else
      e.other.push_back(w);
  }
  return e;
}

std::string flag(const ExecStart& e, const std::string& name) {
  std::string value;
  int seen = 0;
  for (const auto& [k, v] : e.flags)
    if (k == name) value = v, ++seen;
  INFO(e.binary << " " << name);
  CHECK(seen == 1);
  return value;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  return out;
}

// Flags each component accepts, from the v1.32 command-line reference pages
// on kubernetes.io (kube-apiserver, kube-controller-manager, kube-scheduler,
// kubelet, kube-proxy) and `etcd --help` of etcd 3.4.23 (all also in 3.5).
// Only flags that are neither deprecated nor removed are listed, so a typo or a
// flag that went away fails here rather than on a node.
const std::map<std::string, std::set<std::string>>& allowed_flags() {
  static const std::map<std::string, std::set<std::string>> table = {
      {"etcd",
       {"--name", "--data-dir", "--logger", "--cert-file", "--key-file", "--trusted-ca-file", "--client-cert-auth",
        "--auto-tls", "--peer-cert-file", "--peer-key-file", "--peer-trusted-ca-file", "--peer-client-cert-auth",
        "--peer-auto-tls", "--cipher-suites", "--listen-peer-urls", "--initial-advertise-peer-urls",
        "--listen-client-urls", "--advertise-client-urls", "--initial-cluster-token", "--initial-cluster",
        "--initial-cluster-state", "--listen-metrics-urls", "--quota-backend-bytes", "--snapshot-count",
        "--heartbeat-interval", "--election-timeout", "--auto-compaction-retention", "--auto-compaction-mode"}},
      {"kube-apiserver",
       {"--advertise-address", "--bind-address", "--secure-port", "--allow-privileged", "--authorization-mode",
        "--enable-admission-plugins", "--disable-admission-plugins", "--admission-control-config-file",
        "--profiling", "--event-ttl", "--anonymous-auth", "--authentication-config", "--audit-policy-file", "--audit-log-path",
        "--audit-log-maxage", "--audit-log-maxbackup", "--audit-log-maxsize", "--audit-log-format",
        "--client-ca-file", "--tls-cert-file", "--tls-private-key-file", "--tls-min-version", "--tls-cipher-suites",
        "--etcd-servers", "--etcd-cafile", "--etcd-certfile", "--etcd-keyfile", "--encryption-provider-config",
        "--kubelet-certificate-authority", "--kubelet-client-certificate", "--kubelet-client-key",
        "--kubelet-preferred-address-types", "--service-account-issuer", "--api-audiences",
        "--service-account-key-file", "--service-account-signing-key-file", "--service-account-lookup",
        "--service-account-extend-token-expiration",
        "--service-cluster-ip-range", "--service-node-port-range", "--requestheader-client-ca-file",
        "--requestheader-allowed-names", "--requestheader-extra-headers-prefix", "--requestheader-group-headers",
        "--requestheader-username-headers", "--proxy-client-cert-file", "--proxy-client-key-file",
        "--enable-aggregator-routing", "--request-timeout", "--runtime-config", "--feature-gates", "--v"}},
      {"kube-controller-manager",
       {"--bind-address", "--secure-port", "--profiling", "--kubeconfig", "--authentication-kubeconfig",
        "--authorization-kubeconfig", "--cluster-name", "--cluster-signing-cert-file", "--cluster-signing-key-file",
        "--cluster-signing-duration", "--root-ca-file", "--service-account-private-key-file",
        "--use-service-account-credentials", "--service-cluster-ip-range", "--cluster-cidr",
        "--allocate-node-cidrs", "--node-cidr-mask-size", "--leader-elect", "--terminated-pod-gc-threshold",
        "--tls-min-version", "--tls-cipher-suites", "--tls-cert-file", "--tls-private-key-file", "--controllers",
        "--feature-gates", "--v"}},
      {"kube-scheduler",
       {"--config", "--bind-address", "--secure-port", "--authentication-kubeconfig", "--authorization-kubeconfig",
        "--tls-min-version", "--tls-cipher-suites", "--tls-cert-file", "--tls-private-key-file", "--feature-gates",
        "--v"}},
      {"kubelet", {"--config", "--kubeconfig", "--hostname-override", "--node-ip", "--v"}},
      {"kube-proxy", {"--config", "--v"}},
      {"containerd", {"--config", "--log-level"}},
  };
  return table;
}

// Every path constant in node_paths.h: a flag that names a file must name one of these.
std::set<std::string> node_path_constants() {
  namespace p = kb::paths;
  return {p::kCaCert,
          p::kCaKey,
          p::kApiserverCert,
          p::kApiserverKey,
          p::kApiserverKubeletClientCert,
          p::kApiserverKubeletClientKey,
          p::kApiserverEtcdClientCert,
          p::kApiserverEtcdClientKey,
          p::kEtcdCaCertForApiserver,
          p::kFrontProxyCaCert,
          p::kFrontProxyClientCert,
          p::kFrontProxyClientKey,
          p::kServiceAccountKey,
          p::kServiceAccountPub,
          p::kEncryptionConfig,
          p::kAuditPolicy,
          p::kAdmissionControlConfig,
          p::kAuthenticationConfig,
          p::kControllerManagerKubeconfig,
          p::kSchedulerKubeconfig,
          p::kAdminKubeconfig,
          p::kSchedulerConfig,
          p::kAuditLog,
          p::kEtcdCaCert,
          p::kEtcdServerCert,
          p::kEtcdServerKey,
          p::kEtcdPeerCert,
          p::kEtcdPeerKey,
          p::kEtcdDataDir,
          p::kKubeletCert,
          p::kKubeletKey,
          p::kKubeletKubeconfig,
          p::kKubeletConfig,
          p::kKubeProxyKubeconfig,
          p::kKubeProxyConfig,
          p::kContainerdConfig};
}

std::map<std::string, std::vector<PlannedFile>> render_all(const Topology& t) {
  std::map<std::string, std::vector<PlannedFile>> out;
  for (const auto& n : t.nodes) out[n.name] = kb::render_units_and_configs(t, n);
  return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// KB_RENDER_DUMP_DIR=<dir> writes every node's files to <dir>/<node>/<path>,
// the layout of `kbundle gen --format dir`, for tests/integration/units_verify.sh.
void dump_if_asked(const std::map<std::string, std::vector<PlannedFile>>& all) {
  const char* dir = std::getenv("KB_RENDER_DUMP_DIR");
  if (dir == nullptr || *dir == '\0') return;
  for (const auto& [node, files] : all) {
    for (const auto& f : files) {
      std::filesystem::path p = std::filesystem::path(dir) / node / f.path.substr(1);
      std::filesystem::create_directories(p.parent_path());
      std::ofstream(p, std::ios::binary) << f.content;
    }
  }
}

}  // namespace

TEST_CASE("each role gets exactly its units and configs, sorted, 0600", "[render]") {
  const Topology t = example_topology();
  const auto all = render_all(t);
  dump_if_asked(all);

  CHECK(paths_of(all.at("cp-0")) == kControlPlaneFiles);
  CHECK(paths_of(all.at("worker-1")) == kWorkerFiles);

  Topology both = t;
  both.nodes[0].role = Role::Both;
  both.nodes[0].pod_cidr = "10.200.9.0/24";
  std::set<std::string> expected = kControlPlaneFiles;
  expected.insert(kWorkerFiles.begin(), kWorkerFiles.end());
  const auto both_files = kb::render_units_and_configs(both, both.nodes[0]);
  CHECK(paths_of(both_files) == expected);
  CHECK(both_files.size() == expected.size());

  for (const auto& [node, files] : all) {
    INFO(node);
    CHECK(std::is_sorted(files.begin(), files.end(),
                         [](const PlannedFile& a, const PlannedFile& b) { return a.path < b.path; }));
    for (const auto& f : files) {
      INFO(f.path);
      CHECK(f.mode == kb::paths::kFileMode);
      CHECK(f.owner == "root");
      CHECK(f.group == "root");
      CHECK(f.cls == (ends_with(f.path, ".service") || ends_with(f.path, ".timer") ? FileClass::Unit : FileClass::Config));
      CHECK(!f.content.empty());
      CHECK(f.content.back() == '\n');
    }
  }
}

TEST_CASE("nothing is left unrendered or HTML-escaped", "[render]") {
  Topology t = example_topology();
  t.nodes[0].role = Role::Both;
  t.nodes[0].pod_cidr = "10.200.9.0/24";
  for (const auto& [node, files] : render_all(t)) {
    for (const auto& f : files) {
      INFO(node << " " << f.path);
      CHECK(f.content.find("{{") == std::string::npos);
      CHECK(f.content.find("}}") == std::string::npos);
      CHECK(f.content.find("&amp;") == std::string::npos);
      CHECK(f.content.find("&#") == std::string::npos);
      CHECK(f.content.find("&quot;") == std::string::npos);
      // A missing mustache value renders as nothing: catch "" and trailing '='.
      std::string text = f.content;
      for (auto at = text.find("group: \"\""); at != std::string::npos; at = text.find("group: \"\""))
        text.erase(at, 9);  // the core API group is legitimately ""
      CHECK(text.find("\"\"") == std::string::npos);
      CHECK(f.content.find("= \\") == std::string::npos);
      CHECK(f.content.find("=\n") == std::string::npos);
    }
  }
}

TEST_CASE("every ExecStart flag is known to its component and every path comes from node_paths.h", "[render]") {
  Topology t = example_topology();
  t.nodes[0].role = Role::Both;
  t.nodes[0].pod_cidr = "10.200.9.0/24";
  const auto known_paths = node_path_constants();
  std::set<std::string> binaries_seen;
  for (const auto& [node, files] : render_all(t)) {
    for (const auto& f : files) {
      if (f.cls != FileClass::Unit || installer_unit(f.path)) continue;  // checked below
      INFO(node << " " << f.path);
      const ExecStart e = exec_start(f.content);
      REQUIRE(e.binary.rfind(std::string(kb::paths::kBinDir) + "/", 0) == 0);
      const std::string component = e.binary.substr(std::string(kb::paths::kBinDir).size() + 1);
      binaries_seen.insert(component);
      REQUIRE(allowed_flags().count(component) == 1);
      const auto& allowed = allowed_flags().at(component);
      CHECK(e.other.empty());
      std::set<std::string> seen;
      for (const auto& [name, value] : e.flags) {
        INFO(component << " " << name << "=" << value);
        CHECK(allowed.count(name) == 1);
        CHECK(seen.insert(name).second);  // no flag twice
        CHECK(!value.empty());
        if (!value.empty() && value[0] == '/') CHECK(known_paths.count(value) == 1);
      }
    }
  }
  CHECK(binaries_seen == std::set<std::string>{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                                               "containerd", "kubelet", "kube-proxy"});
}

TEST_CASE("units carry the ordering, restart policy and install section", "[render]") {
  Topology t = example_topology();
  t.nodes[0].role = Role::Both;
  t.nodes[0].pod_cidr = "10.200.9.0/24";
  const auto files = kb::render_units_and_configs(t, t.nodes[0]);
  for (const auto& f : files) {
    if (f.cls != FileClass::Unit || installer_unit(f.path)) continue;  // checked below
    INFO(f.path);
    const std::string& u = f.content;
    CHECK(u.rfind("[Unit]\n", 0) == 0);
    CHECK(u.find("\nDescription=") != std::string::npos);
    CHECK(u.find("\nDocumentation=https://") != std::string::npos);
    CHECK(u.find("\n[Service]\n") != std::string::npos);
    CHECK(u.find("\nRestartSec=5\n") != std::string::npos);
    CHECK(u.find("\n[Install]\nWantedBy=multi-user.target\n") != std::string::npos);
  }
  // The installer's boot-time recovery: a oneshot before every cluster unit, only when a journal is left.
  const std::string recover = file_at(files, unit_path("kbundle-recover.service")).content;
  for (const char* line : {"\nType=oneshot\n", "\nExecStart=/usr/local/bin/kbundle-installer recover\n", "\nDefaultDependencies=no\n",
                           "\nConditionPathExists=/var/lib/kbundle/journal.json\n", "\n[Install]\nWantedBy=multi-user.target\n"})
    CHECK(recover.find(line) != std::string::npos);
  const size_t before = recover.find("\nBefore=");
  REQUIRE(before != std::string::npos);
  std::string before_line = recover.substr(before + 8, recover.find('\n', before + 1) - before - 8);
  before_line = " " + before_line + " ";
  for (const char* unit : {" etcd.service ", " kube-apiserver.service ", " containerd.service ", " kubelet.service "})
    CHECK(before_line.find(unit) != std::string::npos);
  CHECK(recover.find("Restart=") == std::string::npos);
  // The certificate metrics (docs/certs.md): a oneshot that writes only into node_exporter's textfile
  // directory, with the topology's window, and its timer.
  const std::string metrics = file_at(files, unit_path("kbundle-cert-metrics.service")).content;
  for (const char* line :
       {"\nType=oneshot\n", "\nConditionPathIsDirectory=/var/lib/node_exporter/textfile_collector\n",
        "\nExecStart=/usr/local/bin/kbundle-installer status --renew-before-days 30 --metrics-file "
        "/var/lib/node_exporter/textfile_collector/kbundle.prom\n",
        "\nProtectSystem=strict\n", "\nReadWritePaths=/var/lib/node_exporter/textfile_collector\n", "\nPrivateNetwork=yes\n"})
    CHECK(metrics.find(line) != std::string::npos);
  const std::string timer = file_at(files, unit_path("kbundle-cert-metrics.timer")).content;
  for (const char* line : {"\n[Timer]\n", "\nOnBootSec=5min\n", "\nOnUnitActiveSec=6h\n", "\n[Install]\nWantedBy=timers.target\n"})
    CHECK(timer.find(line) != std::string::npos);
  Topology wide = t;
  wide.cluster.renew_before_days = 60;
  CHECK(file_at(kb::render_units_and_configs(wide, wide.nodes[0]), unit_path("kbundle-cert-metrics.service"))
            .content.find("--renew-before-days 60 ") != std::string::npos);
  // etcd snapshots (docs/backup.md): the timer on the topology's schedule starts the installer's command.
  const std::string snap = file_at(files, kb::paths::kEtcdSnapshotService).content;
  for (const char* line : {"\nType=oneshot\n", "\nExecStart=/usr/local/bin/kbundle-installer etcd snapshot\n",
                           "\nAfter=etcd.service\n", "\nConditionFileIsExecutable=/usr/local/bin/kbundle-installer\n"})
    CHECK(snap.find(line) != std::string::npos);
  CHECK(snap.find("[Install]") == std::string::npos);  // only the timer starts it
  const std::string snap_timer = file_at(files, kb::paths::kEtcdSnapshotTimer).content;
  for (const char* line : {"\nOnCalendar=hourly\n", "\nPersistent=true\n", "\n[Install]\nWantedBy=timers.target\n"})
    CHECK(snap_timer.find(line) != std::string::npos);
  t.etcd_backup.schedule = "*-*-* 00/4:00:00";
  CHECK(file_at(kb::render_units_and_configs(t, t.nodes[0]), kb::paths::kEtcdSnapshotTimer).content.find(
            "\nOnCalendar=*-*-* 00/4:00:00\n") != std::string::npos);
  const std::string etcd = file_at(files, unit_path("etcd.service")).content;
  CHECK(etcd.find("\nType=notify\n") != std::string::npos);
  CHECK(etcd.find("\nLimitNOFILE=") != std::string::npos);
  const std::string containerd = file_at(files, unit_path("containerd.service")).content;
  for (const char* line : {"\nDelegate=yes\n", "\nKillMode=process\n", "\nExecStartPre=-/sbin/modprobe overlay\n",
                           "\nLimitNOFILE=", "\nType=notify\n"})
    CHECK(containerd.find(line) != std::string::npos);
  const std::string kubelet = file_at(files, unit_path("kubelet.service")).content;
  CHECK(kubelet.find("\nRequires=containerd.service\n") != std::string::npos);
  CHECK(kubelet.find("\nAfter=network-online.target containerd.service\n") != std::string::npos);
  const std::string apiserver = file_at(files, unit_path("kube-apiserver.service")).content;
  CHECK(apiserver.find("\nAfter=network-online.target etcd.service\n") != std::string::npos);
  // Not Requires=: a restart of the local etcd member must not take the API server down.
  CHECK(apiserver.find("Requires=") == std::string::npos);
}

TEST_CASE("etcd lists every control-plane member over https", "[render]") {
  const Topology t = example_topology();
  const auto files = kb::render_units_and_configs(t, node_named(t, "cp-1"));
  const ExecStart e = exec_start(file_at(files, unit_path("etcd.service")).content);
  CHECK(flag(e, "--name") == "cp-1");
  CHECK(flag(e, "--initial-cluster") ==
        "cp-0=https://10.0.1.10:2380,cp-1=https://10.0.1.11:2380,cp-2=https://10.0.1.12:2380");
  CHECK(flag(e, "--initial-cluster-state") == "new");
  CHECK(flag(e, "--initial-advertise-peer-urls") == "https://10.0.1.11:2380");
  CHECK(flag(e, "--listen-peer-urls") == "https://10.0.1.11:2380");
  CHECK(flag(e, "--listen-client-urls") == "https://10.0.1.11:2379,https://127.0.0.1:2379");
  CHECK(flag(e, "--advertise-client-urls") == "https://10.0.1.11:2379");
  CHECK(flag(e, "--client-cert-auth") == "true");
  CHECK(flag(e, "--peer-client-cert-auth") == "true");
  CHECK(flag(e, "--auto-tls") == "false");
  CHECK(flag(e, "--peer-auto-tls") == "false");
  CHECK(flag(e, "--data-dir") == kb::paths::kEtcdDataDir);
  CHECK(flag(e, "--trusted-ca-file") == kb::paths::kEtcdCaCert);
  CHECK(flag(e, "--peer-trusted-ca-file") == kb::paths::kEtcdCaCert);
  CHECK(flag(e, "--cert-file") == kb::paths::kEtcdServerCert);
  CHECK(flag(e, "--peer-key-file") == kb::paths::kEtcdPeerKey);
  for (const auto& suite : split(flag(e, "--cipher-suites"), ','))
    CHECK((suite.find("GCM") != std::string::npos || suite.find("CHACHA20") != std::string::npos));
}

TEST_CASE("kube-apiserver is hardened and talks to every etcd member", "[render]") {
  const Topology t = example_topology();
  const auto files = kb::render_units_and_configs(t, node_named(t, "cp-2"));
  const ExecStart e = exec_start(file_at(files, unit_path("kube-apiserver.service")).content);
  CHECK(flag(e, "--etcd-servers") == "https://10.0.1.10:2379,https://10.0.1.11:2379,https://10.0.1.12:2379");
  CHECK(flag(e, "--advertise-address") == "10.0.1.12");
  CHECK(flag(e, "--secure-port") == "6443");
  CHECK(flag(e, "--service-account-issuer") == "https://kb-example-api.elb.eu-west-1.amazonaws.com:6443");
  CHECK(flag(e, "--api-audiences") == flag(e, "--service-account-issuer"));
  CHECK(flag(e, "--authorization-mode") == "Node,RBAC");
  CHECK(flag(e, "--enable-admission-plugins") == "NodeRestriction,EventRateLimit,DenyServiceExternalIPs,AlwaysPullImages");
  CHECK(flag(e, "--admission-control-config-file") == kb::paths::kAdmissionControlConfig);
  // Anonymous only on the health endpoints, through the config file; the flag would conflict.
  CHECK(flag(e, "--authentication-config") == kb::paths::kAuthenticationConfig);
  CHECK(std::none_of(e.flags.begin(), e.flags.end(), [](const auto& f) { return f.first == "--anonymous-auth"; }));
  CHECK(flag(e, "--service-account-extend-token-expiration") == "false");
  CHECK(flag(e, "--profiling") == "false");
  CHECK(flag(e, "--service-account-lookup") == "true");
  CHECK(flag(e, "--tls-min-version") == "VersionTLS12");
  CHECK(flag(e, "--service-cluster-ip-range") == "10.32.0.0/24");
  CHECK(flag(e, "--audit-log-maxage") == "30");
  CHECK(flag(e, "--audit-log-maxbackup") == "10");
  CHECK(flag(e, "--audit-log-maxsize") == "100");
  CHECK(flag(e, "--audit-policy-file") == kb::paths::kAuditPolicy);
  CHECK(flag(e, "--encryption-provider-config") == kb::paths::kEncryptionConfig);
  CHECK(flag(e, "--kubelet-certificate-authority") == kb::paths::kCaCert);
  CHECK(flag(e, "--requestheader-client-ca-file") == kb::paths::kFrontProxyCaCert);
  CHECK(flag(e, "--requestheader-allowed-names") == "front-proxy-client");
  CHECK(flag(e, "--etcd-cafile") == kb::paths::kEtcdCaCertForApiserver);
  for (const auto& suite : split(flag(e, "--tls-cipher-suites"), ',')) {
    CHECK(suite.rfind("TLS_ECDHE_", 0) == 0);
    CHECK((suite.find("GCM") != std::string::npos || suite.find("CHACHA20") != std::string::npos));
  }
}

TEST_CASE("cluster.hardening turns admission plugins off; EventRateLimit is configured", "[render]") {
  Topology t = example_topology();
  t.cluster.hardening.always_pull_images = false;
  t.cluster.hardening.deny_service_external_ips = false;
  const auto files = kb::render_units_and_configs(t, t.nodes[0]);
  const ExecStart e = exec_start(file_at(files, unit_path("kube-apiserver.service")).content);
  CHECK(flag(e, "--enable-admission-plugins") == "NodeRestriction,EventRateLimit");

  const YAML::Node a = YAML::Load(file_at(files, kb::paths::kAdmissionControlConfig).content);
  CHECK(a["apiVersion"].as<std::string>() == "apiserver.config.k8s.io/v1");
  CHECK(a["kind"].as<std::string>() == "AdmissionConfiguration");
  REQUIRE(a["plugins"].IsSequence());
  REQUIRE(a["plugins"].size() == 1);
  CHECK(a["plugins"][0]["name"].as<std::string>() == "EventRateLimit");
  const YAML::Node c = a["plugins"][0]["configuration"];
  CHECK(c["apiVersion"].as<std::string>() == "eventratelimit.admission.k8s.io/v1alpha1");
  CHECK(c["kind"].as<std::string>() == "Configuration");
  REQUIRE(c["limits"].IsSequence());
  std::set<std::string> types;
  for (const auto& l : c["limits"]) {
    types.insert(l["type"].as<std::string>());
    CHECK(l["qps"].as<int>() > 0);
    CHECK(l["burst"].as<int>() >= l["qps"].as<int>());
  }
  CHECK(types == std::set<std::string>{"Server", "Namespace", "User"});
}

TEST_CASE("controller manager and scheduler flags", "[render]") {
  const Topology t = example_topology();
  const auto files = kb::render_units_and_configs(t, t.nodes[0]);
  const ExecStart cm = exec_start(file_at(files, unit_path("kube-controller-manager.service")).content);
  CHECK(flag(cm, "--bind-address") == "127.0.0.1");
  CHECK(flag(cm, "--profiling") == "false");
  CHECK(flag(cm, "--cluster-name") == "kb-example");
  CHECK(flag(cm, "--cluster-signing-cert-file") == kb::paths::kCaCert);
  CHECK(flag(cm, "--cluster-signing-key-file") == kb::paths::kCaKey);
  CHECK(flag(cm, "--service-account-private-key-file") == kb::paths::kServiceAccountKey);
  CHECK(flag(cm, "--cluster-cidr") == "10.200.0.0/16");
  CHECK(flag(cm, "--allocate-node-cidrs") == "false");
  CHECK(flag(cm, "--use-service-account-credentials") == "true");
  CHECK(flag(cm, "--leader-elect") == "true");
  CHECK(flag(cm, "--kubeconfig") == kb::paths::kControllerManagerKubeconfig);

  const ExecStart s = exec_start(file_at(files, unit_path("kube-scheduler.service")).content);
  CHECK(flag(s, "--config") == kb::paths::kSchedulerConfig);
  CHECK(flag(s, "--bind-address") == "127.0.0.1");
  const YAML::Node cfg = YAML::Load(file_at(files, kb::paths::kSchedulerConfig).content);
  CHECK(cfg["apiVersion"].as<std::string>() == "kubescheduler.config.k8s.io/v1");
  CHECK(cfg["kind"].as<std::string>() == "KubeSchedulerConfiguration");
  CHECK(cfg["clientConnection"]["kubeconfig"].as<std::string>() == kb::paths::kSchedulerKubeconfig);
  CHECK(cfg["leaderElection"]["leaderElect"].as<bool>());
  CHECK_FALSE(cfg["enableProfiling"].as<bool>());
}

TEST_CASE("audit policy keeps secret bodies out of the log", "[render]") {
  const Topology t = example_topology();
  const auto files = kb::render_units_and_configs(t, t.nodes[0]);
  const YAML::Node p = YAML::Load(file_at(files, kb::paths::kAuditPolicy).content);
  CHECK(p["apiVersion"].as<std::string>() == "audit.k8s.io/v1");
  CHECK(p["kind"].as<std::string>() == "Policy");
  REQUIRE(p["omitStages"].IsSequence());
  CHECK(p["omitStages"][0].as<std::string>() == "RequestReceived");
  const YAML::Node rules = p["rules"];
  REQUIRE(rules.IsSequence());
  bool secrets_at_metadata = false;
  for (const auto& r : rules) {
    const std::string level = r["level"].as<std::string>();
    CHECK((level == "None" || level == "Metadata"));
    if (!r["resources"]) continue;
    for (const auto& group : r["resources"])
      for (const auto& res : group["resources"])
        if (res.as<std::string>() == "secrets") secrets_at_metadata = level == "Metadata";
  }
  CHECK(secrets_at_metadata);
  CHECK(rules[rules.size() - 1]["level"].as<std::string>() == "Metadata");
  CHECK(!rules[rules.size() - 1]["resources"]);
}

TEST_CASE("kubelet config carries the node's pod CIDR, cluster DNS and hardening", "[render]") {
  const Topology t = example_topology();
  for (int i = 0; i < 3; ++i) {
    const Node& n = node_named(t, "worker-" + std::to_string(i));
    const auto files = kb::render_units_and_configs(t, n);
    INFO(n.name);
    const YAML::Node k = YAML::Load(file_at(files, kb::paths::kKubeletConfig).content);
    CHECK(k["apiVersion"].as<std::string>() == "kubelet.config.k8s.io/v1beta1");
    CHECK(k["kind"].as<std::string>() == "KubeletConfiguration");
    CHECK(k["podCIDR"].as<std::string>() == n.pod_cidr);
    REQUIRE(k["clusterDNS"].size() == 1);
    CHECK(k["clusterDNS"][0].as<std::string>() == "10.32.0.10");
    CHECK(k["clusterDomain"].as<std::string>() == "cluster.local");
    CHECK_FALSE(k["authentication"]["anonymous"]["enabled"].as<bool>());
    CHECK(k["authentication"]["webhook"]["enabled"].as<bool>());
    CHECK(k["authentication"]["x509"]["clientCAFile"].as<std::string>() == kb::paths::kCaCert);
    CHECK(k["authorization"]["mode"].as<std::string>() == "Webhook");
    CHECK(k["cgroupDriver"].as<std::string>() == "systemd");
    CHECK(k["containerRuntimeEndpoint"].as<std::string>() ==
          std::string("unix://") + kb::paths::kContainerdSocket);
    CHECK(k["resolvConf"].as<std::string>() == kb::paths::kResolvConf);
    CHECK(k["tlsCertFile"].as<std::string>() == kb::paths::kKubeletCert);
    CHECK(k["tlsPrivateKeyFile"].as<std::string>() == kb::paths::kKubeletKey);
    CHECK(k["readOnlyPort"].as<int>() == 0);
    CHECK(k["protectKernelDefaults"].as<bool>());
    CHECK(k["seccompDefault"].as<bool>());
    CHECK(k["podPidsLimit"].as<int>() > 0);
    CHECK(k["eventRecordQPS"].as<int>() > 0);
    CHECK(k["makeIPTablesUtilChains"].as<bool>());
    CHECK_FALSE(k["rotateCertificates"].as<bool>());
    CHECK(k["tlsMinVersion"].as<std::string>() == "VersionTLS12");
    REQUIRE(k["tlsCipherSuites"].IsSequence());
    CHECK(k["tlsCipherSuites"].size() == 6);

    const ExecStart e = exec_start(file_at(files, unit_path("kubelet.service")).content);
    CHECK(flag(e, "--config") == kb::paths::kKubeletConfig);
    CHECK(flag(e, "--kubeconfig") == kb::paths::kKubeletKubeconfig);
    CHECK(flag(e, "--hostname-override") == n.name);
    CHECK(flag(e, "--node-ip") == n.private_ip);

    // protectKernelDefaults makes the kubelet refuse to start unless these are set.
    const std::string sysctl = file_at(files, kb::paths::kSysctlConf).content;
    for (const char* line : {"net.ipv4.ip_forward = 1", "net.bridge.bridge-nf-call-iptables = 1",
                             "net.bridge.bridge-nf-call-ip6tables = 1", "vm.overcommit_memory = 1",
                             "kernel.panic = 10", "kernel.panic_on_oops = 1"})
      CHECK(sysctl.find(line) != std::string::npos);
    const std::string modules = file_at(files, kb::paths::kModulesLoadConf).content;
    CHECK(modules.find("\noverlay\n") != std::string::npos);
    CHECK(modules.find("\nbr_netfilter\n") != std::string::npos);
  }
}

TEST_CASE("kube-proxy, containerd and CNI configs", "[render]") {
  const Topology t = example_topology();
  const Node& n = node_named(t, "worker-2");
  const auto files = kb::render_units_and_configs(t, n);

  const YAML::Node p = YAML::Load(file_at(files, kb::paths::kKubeProxyConfig).content);
  CHECK(p["apiVersion"].as<std::string>() == "kubeproxy.config.k8s.io/v1alpha1");
  CHECK(p["kind"].as<std::string>() == "KubeProxyConfiguration");
  CHECK(p["mode"].as<std::string>() == "iptables");
  CHECK(p["clusterCIDR"].as<std::string>() == "10.200.0.0/16");
  CHECK(p["clientConnection"]["kubeconfig"].as<std::string>() == kb::paths::kKubeProxyKubeconfig);
  CHECK(p["hostnameOverride"].as<std::string>() == "worker-2");
  CHECK(flag(exec_start(file_at(files, unit_path("kube-proxy.service")).content), "--config") ==
        kb::paths::kKubeProxyConfig);

  const std::string toml = file_at(files, kb::paths::kContainerdConfig).content;
  for (const char* line : {"version = 2\n", "SystemdCgroup = true\n", "BinaryName = \"/usr/local/bin/runc\"\n",
                           "bin_dir = \"/opt/cni/bin\"\n", "conf_dir = \"/etc/cni/net.d\"\n",
                           "sandbox_image = \"registry.k8s.io/pause:3.10\"\n",
                           "runtime_type = \"io.containerd.runc.v2\"\n"})
    CHECK(toml.find(line) != std::string::npos);
  CHECK(toml.find(std::string("address = \"") + kb::paths::kContainerdSocket + "\"") != std::string::npos);

  const auto bridge = nlohmann::json::parse(file_at(files, kb::paths::kCniBridgeConf).content);
  CHECK(bridge["cniVersion"] == "1.0.0");
  CHECK(bridge["type"] == "bridge");
  CHECK(bridge["isGateway"] == true);
  CHECK(bridge["ipMasq"] == true);
  CHECK(bridge["ipam"]["type"] == "host-local");
  CHECK(bridge["ipam"]["ranges"][0][0]["subnet"] == "10.200.2.0/24");
  const auto loopback = nlohmann::json::parse(file_at(files, kb::paths::kCniLoopbackConf).content);
  CHECK(loopback["type"] == "loopback");
  CHECK(loopback["cniVersion"] == "1.0.0");
}

TEST_CASE("every YAML and JSON file parses", "[render]") {
  Topology t = example_topology();
  t.nodes[0].role = Role::Both;
  t.nodes[0].pod_cidr = "10.200.9.0/24";
  int yaml_files = 0, json_files = 0;
  for (const auto& [node, files] : render_all(t)) {
    for (const auto& f : files) {
      INFO(node << " " << f.path);
      if (ends_with(f.path, ".yaml")) {
        CHECK_NOTHROW(YAML::Load(f.content));
        CHECK(YAML::Load(f.content).IsMap());
        ++yaml_files;
      } else if (f.path.rfind(std::string(kb::paths::kCniConfDir) + "/", 0) == 0) {
        CHECK_NOTHROW(nlohmann::json::parse(f.content));
        ++json_files;
      }
    }
  }
  CHECK(yaml_files == 3 * 4 + 4 * 2);  // 3 control-plane nodes x 4 + 4 workers (cp-0 is "both") x 2
  CHECK(json_files == 4 * 2);
}

TEST_CASE("cluster settings flow into the flags", "[render]") {
  Topology t = example_topology();
  t.cluster.api_port = 443;
  t.cluster.api_host = "10.0.0.100";
  t.cluster.cluster_domain = "corp.internal";
  t.cluster.pod_cidr = "172.16.0.0/16";
  t.cluster.service_cidr = "10.96.0.0/12";
  t.nodes[3].pod_cidr = "172.16.3.0/24";
  const auto cp = kb::render_units_and_configs(t, t.nodes[0]);
  const ExecStart api = exec_start(file_at(cp, unit_path("kube-apiserver.service")).content);
  CHECK(flag(api, "--secure-port") == "443");
  CHECK(flag(api, "--service-account-issuer") == "https://10.0.0.100:443");
  CHECK(flag(api, "--service-cluster-ip-range") == "10.96.0.0/12");
  const auto w = kb::render_units_and_configs(t, t.nodes[3]);
  const YAML::Node k = YAML::Load(file_at(w, kb::paths::kKubeletConfig).content);
  CHECK(k["clusterDomain"].as<std::string>() == "corp.internal");
  CHECK(k["clusterDNS"][0].as<std::string>() == "10.96.0.10");
  CHECK(k["podCIDR"].as<std::string>() == "172.16.3.0/24");
  const auto bridge = nlohmann::json::parse(file_at(w, kb::paths::kCniBridgeConf).content);
  CHECK(bridge["ipam"]["ranges"][0][0]["subnet"] == "172.16.3.0/24");
}

TEST_CASE("embedded templates are looked up by name", "[render]") {
  CHECK(!kb::embedded_template("etcd.service.mustache").empty());
  CHECK(&kb::embedded_template("etcd.service.mustache") == &kb::embedded_template("etcd.service.mustache"));
  CHECK_THROWS_AS(kb::embedded_template("no-such.mustache"), kb::Error);
  Topology t = example_topology();
  t.nodes[3].pod_cidr.clear();
  CHECK_THROWS_AS(kb::render_units_and_configs(t, t.nodes[3]), kb::Error);
}

TEST_CASE("the authentication config admits anonymous requests on the health endpoints only", "[render]") {
  const Topology t = example_topology();
  const auto files = kb::render_units_and_configs(t, node_named(t, "cp-0"));
  const auto& f = file_at(files, kb::paths::kAuthenticationConfig);
  CHECK(f.cls == kb::FileClass::Config);
  CHECK(f.mode == 0600);
  CHECK(f.owner == "root");
  std::string body;  // without comments
  std::istringstream in(f.content);
  for (std::string line; std::getline(in, line);)
    if (!line.starts_with("#")) body += line + "\n";
  CHECK(body ==
        "apiVersion: apiserver.config.k8s.io/v1beta1\n"
        "kind: AuthenticationConfiguration\n"
        "anonymous:\n"
        "  enabled: true\n"
        "  conditions:\n"
        "    - path: /livez\n"
        "    - path: /readyz\n"
        "    - path: /healthz\n");
  // Workers run no API server and get no such file.
  const auto worker = kb::render_units_and_configs(t, node_named(t, "worker-0"));
  CHECK(std::none_of(worker.begin(), worker.end(), [](const auto& w) { return w.path == kb::paths::kAuthenticationConfig; }));
}
