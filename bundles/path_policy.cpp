#include "bundles/path_policy.h"

#include <algorithm>

#include "base/file_io.h"
#include "bundles/bundle_error.h"

namespace kb {

namespace {

// Role bits: a "both" node gets the union of what each role may manage.
constexpr unsigned kCP = 1, kWorker = 2, kAll = kCP | kWorker;

unsigned role_bits(const std::string& role) {
  if (role == "control-plane") return kCP;
  if (role == "worker") return kWorker;
  if (role == "both") return kAll;
  return 0;
}

enum class Kind {
  Tree,  // this directory and anything below it
  Dir,   // exactly this directory, nothing below it (etcd's data, the audit log: never written by apply)
  File,  // exactly this file
};

struct Allowed {
  const char* path;
  Kind kind;
  unsigned roles;
};

// What gen writes (generator/node_paths.h, generator/plan.cpp, the release catalog), by role.
// generator/path_policy_test.cpp fails when gen plans anything outside it.
constexpr Allowed kAllowed[] = {
    // Control plane: certs, keys, kubeconfigs and the apiserver's config files.
    {"/var/lib/kubernetes", Kind::Tree, kCP},
    {"/etc/etcd", Kind::Tree, kCP},
    {"/etc/kubernetes/config", Kind::Tree, kCP},
    {"/var/lib/etcd", Kind::Dir, kCP},
    {kEtcdRestoreDir, Kind::Tree, kCP},  // a restore bundle's snapshot (docs/backup.md)
    {kEtcdSnapshotServiceFile, Kind::File, kCP},
    {"/var/log/kubernetes", Kind::Dir, kCP},
    {"/usr/local/bin/etcd", Kind::File, kCP},
    {"/usr/local/bin/etcdctl", Kind::File, kCP},
    {"/usr/local/bin/kube-apiserver", Kind::File, kCP},
    {"/usr/local/bin/kube-controller-manager", Kind::File, kCP},
    {"/usr/local/bin/kube-scheduler", Kind::File, kCP},
    // Workers.
    {"/var/lib/kubernetes", Kind::Dir, kWorker},
    {"/var/lib/kubernetes/ca.crt", Kind::File, kWorker},
    {"/var/lib/kubelet", Kind::Tree, kWorker},
    {"/var/lib/kube-proxy", Kind::Tree, kWorker},
    {"/etc/containerd", Kind::Tree, kWorker},
    {"/etc/cni/net.d", Kind::Tree, kWorker},
    {"/etc/sysctl.d/99-kubernetes.conf", Kind::File, kWorker},
    {"/etc/modules-load.d/kubernetes.conf", Kind::File, kWorker},
    {"/opt/cni/bin/bridge", Kind::File, kWorker},
    {"/opt/cni/bin/host-local", Kind::File, kWorker},
    {"/opt/cni/bin/loopback", Kind::File, kWorker},
    {"/usr/local/bin/containerd", Kind::File, kWorker},
    {"/usr/local/bin/containerd-shim-runc-v2", Kind::File, kWorker},
    {"/usr/local/bin/crictl", Kind::File, kWorker},
    {"/usr/local/bin/ctr", Kind::File, kWorker},
    {"/usr/local/bin/kube-proxy", Kind::File, kWorker},
    {"/usr/local/bin/kubelet", Kind::File, kWorker},
    {"/usr/local/bin/runc", Kind::File, kWorker},
    // The image archives the installer imports (installer/images.h), file by file; kept out of
    // /var/lib/kbundle, which is the installer's own state and never a bundle's.
    {"/var/lib/kbundle-images/coredns.tar", Kind::File, kWorker},
    {"/var/lib/kbundle-images/pause.tar", Kind::File, kWorker},
    // Every role.
    {"/usr/local/bin/kubectl", Kind::File, kAll},
    {"/etc/systemd/system/kbundle-recover.service", Kind::File, kAll},
    {kCertMetricsServiceFile, Kind::File, kAll},
};

// The units a role runs; a unit file is allowed only for a name in the manifest's own `units`.
struct AllowedUnit {
  const char* name;
  unsigned roles;
};
constexpr AllowedUnit kUnits[] = {
    {"etcd.service", kCP},       {"kube-apiserver.service", kCP}, {"kube-controller-manager.service", kCP},
    {"kube-scheduler.service", kCP}, {kEtcdSnapshotTimerUnit, kCP}, {"containerd.service", kWorker}, {"kubelet.service", kWorker},
    {"kube-proxy.service", kWorker},
    {kCertMetricsTimerUnit, kAll},
};
constexpr const char* kUnitDir = "/etc/systemd/system";

// The bootstrap objects' directory (docs/bootstrap.md) lies in the control plane's
// /var/lib/kubernetes tree, but holds a system:masters key: nothing else may go there.
constexpr const char* kBootstrapFiles[] = {kBootstrapObjects, kBootstrapCert, kBootstrapKey};

bool allowed_in_bootstrap_dir(const ManifestEntry& e) {
  if (e.type == EntryType::Directory) return e.path == kBootstrapDir;
  return std::find(std::begin(kBootstrapFiles), std::end(kBootstrapFiles), e.path) != std::end(kBootstrapFiles);
}

// Never, whatever else would allow it: the pinned key and the installer's own state.
constexpr const char* kTrustStore = "/etc/kbundle";
constexpr const char* kInstallerState = "/var/lib/kbundle";

constexpr const char* kAllowedOwner = "root";  // every file and directory gen writes is root:root
constexpr unsigned kForbiddenModeBits = 07022;  // setuid, setgid, sticky, group- or world-writable

// "setuid, world-writable": which forbidden bits `mode` has.
std::string forbidden_bits(unsigned mode) {
  static constexpr std::pair<unsigned, const char*> kBits[] = {
      {04000, "setuid"}, {02000, "setgid"}, {01000, "sticky"}, {0020, "group-writable"}, {0002, "world-writable"}};
  std::string s;
  for (const auto& [bit, name] : kBits)
    if (mode & bit) s += (s.empty() ? "" : ", ") + std::string(name);
  return s;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// "allowed paths for role worker: below /var/lib/kubelet, ...; the directory ...; 17 named files"
std::string allowed_summary(const std::string& role, unsigned roles) {
  std::vector<std::string> trees, dirs;
  size_t files = 0;
  for (const auto& a : kAllowed) {
    if (!(a.roles & roles)) continue;
    if (a.kind == Kind::Tree) trees.push_back(a.path);
    else if (a.kind == Kind::Dir && std::find(trees.begin(), trees.end(), a.path) == trees.end()) dirs.push_back(a.path);
    else if (a.kind == Kind::File) ++files;
  }
  std::string s = "allowed paths for role " + role + ": below " + join(trees);
  if (!dirs.empty()) s += "; the director" + std::string(dirs.size() == 1 ? "y " : "ies ") + join(dirs);
  s += "; " + std::to_string(files) + " named files (binaries, configs) and the unit files of the manifest's units, "
       "listed in bundles/FORMAT.md 5.3";
  return s;
}

std::string allowed_units(unsigned roles) {
  std::vector<std::string> v;
  for (const auto& u : kUnits)
    if (u.roles & roles) v.push_back(u.name);
  return join(v);
}

std::string allowed_binaries(unsigned roles) {
  std::vector<std::string> v;
  const std::string bin = "/usr/local/bin/";
  for (const auto& a : kAllowed)
    if ((a.roles & roles) && std::string(a.path).rfind(bin, 0) == 0) v.push_back(std::string(a.path).substr(bin.size()));
  return join(v);
}

bool allowed_by_table(const ManifestEntry& e, unsigned roles) {
  bool dir = e.type == EntryType::Directory;
  for (const auto& a : kAllowed) {
    if (!(a.roles & roles)) continue;
    switch (a.kind) {
      case Kind::Tree:
        // The tree's root is a directory; anything below it may be either.
        if (e.path == a.path ? dir : path_is_under(e.path, a.path)) return true;
        break;
      case Kind::Dir:
        if (dir && e.path == a.path) return true;
        break;
      case Kind::File:
        if (!dir && e.path == a.path) return true;
        break;
    }
  }
  return false;
}

}  // namespace

bool path_is_under(const std::string& path, const std::string& prefix) {
  return path == prefix || (path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
                            path[prefix.size()] == '/');
}

std::vector<PolicyViolation> path_policy_violations(const Manifest& m) {
  std::vector<PolicyViolation> out;
  const unsigned roles = role_bits(m.role);
  if (roles == 0) {
    out.push_back({m.role, "unknown role", "role is control-plane, worker or both"});
    return out;
  }
  for (const auto& u : m.units) {
    bool ok = std::any_of(std::begin(kUnits), std::end(kUnits),
                          [&](const AllowedUnit& a) { return (a.roles & roles) && u == a.name; });
    if (!ok)
      out.push_back({u, "not a unit a " + m.role + " bundle may run",
                     "units for role " + m.role + ": " + allowed_units(roles)});
  }
  for (const auto& e : m.entries) {
    const std::string& p = e.path;
    if (path_is_under(p, kTrustStore)) {
      out.push_back({p, "in the installer's trust store", "never " + std::string(kTrustStore) + " or below"});
    } else if (path_is_under(p, kInstallerState) && !allowed_by_table(e, roles)) {
      out.push_back({p, "in the installer's state",
                     "never " + std::string(kInstallerState) + " or below, except the image archives of FORMAT.md 5.3"});
    } else if (path_is_under(p, kBootstrapDir) && (!allowed_in_bootstrap_dir(e) || !allowed_by_table(e, roles))) {
      out.push_back({p, "not one of the bootstrap files",
                     "in " + std::string(kBootstrapDir) +
                         " only the directory, objects.json, kbundle-bootstrap.crt and kbundle-bootstrap.key, "
                         "for role control-plane or both"});
    } else if (std::string unit = p.substr(std::min(p.size(), std::string(kUnitDir).size() + 1));
               path_is_under(p, kUnitDir) && !allowed_by_table(e, roles)) {
      // A unit file: only for a unit this manifest runs, and only the file itself (no drop-ins).
      bool listed = e.type == EntryType::File && parent_dir(p) == kUnitDir &&
                    std::find(m.units.begin(), m.units.end(), unit) != m.units.end();
      if (!listed)
        out.push_back({p, "not the unit file of a unit in this manifest's units list",
                       "unit files in " + std::string(kUnitDir) + " only for the manifest's units (role " + m.role +
                           ": " + allowed_units(roles) + ") and kbundle-recover.service, no drop-ins"});
    } else if (path_is_under(p, "/usr/local/bin") && !allowed_by_table(e, roles)) {
      out.push_back({p, "not a binary kbundle installs",
                     "in /usr/local/bin only the binaries of role " + m.role + ": " + allowed_binaries(roles)});
    } else if (!allowed_by_table(e, roles)) {
      out.push_back({p, e.type == EntryType::Directory ? "a directory outside the paths a bundle may manage"
                                                       : "outside the paths a bundle may manage",
                     allowed_summary(m.role, roles)});
    }
    if (e.mode & kForbiddenModeBits)
      out.push_back({p, "mode " + mode_string(e.mode) + " is " + forbidden_bits(e.mode),
                     "no setuid, setgid, sticky, group- or world-writable bit (07022)"});
    if (e.owner != kAllowedOwner || e.group != kAllowedOwner)
      out.push_back({p, "owner " + e.owner + ":" + e.group + " is not allowed",
                     "owner and group are " + std::string(kAllowedOwner)});
  }
  return out;
}

void check_path_policy(const Manifest& m, const std::string& where) {
  auto v = path_policy_violations(m);
  if (v.empty()) return;
  std::string more = v.size() > 1 ? " (and " + std::to_string(v.size() - 1) + " more violation" +
                                        (v.size() > 2 ? "s" : "") + "; kbundle inspect lists them all)"
                                  : "";
  throw BundleError(BundleErrc::PolicyViolation, where + ": " + v.front().message() + more);
}

}  // namespace kb
