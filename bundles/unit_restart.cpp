#include "bundles/unit_restart.h"

#include <algorithm>
#include <map>

#include "bundles/path_policy.h"

namespace kb {

std::vector<std::string> unit_paths(const std::string& unit) {
  std::string base = unit.substr(0, unit.rfind('.'));
  std::vector<std::string> p = {"/etc/systemd/system/" + unit, "/etc/systemd/system/" + unit + ".d",
                                "/usr/local/bin/" + base};
  static const std::map<std::string, std::vector<std::string>> extra = {
      {"etcd", {"/etc/etcd", "/var/lib/etcd"}},
      {"kube-apiserver", {"/var/lib/kubernetes", "/etc/kubernetes"}},
      {"kube-controller-manager", {"/var/lib/kubernetes", "/etc/kubernetes"}},
      {"kube-scheduler", {"/var/lib/kubernetes", "/etc/kubernetes"}},
      {"kubelet", {"/var/lib/kubelet", "/var/lib/kubernetes/ca.crt", "/etc/cni"}},
      {"kube-proxy", {"/var/lib/kube-proxy"}},
      {"containerd", {"/etc/containerd"}},
  };
  if (auto it = extra.find(base); it != extra.end()) p.insert(p.end(), it->second.begin(), it->second.end());
  return p;
}

std::vector<std::string> units_to_restart(const std::vector<std::string>& units, const std::vector<std::string>& changed) {
  std::vector<std::string> out;
  for (const auto& u : units) {
    auto prefixes = unit_paths(u);
    bool hit = std::any_of(changed.begin(), changed.end(), [&](const std::string& c) {
      // The bootstrap objects are read by the installer only: a new CoreDNS version must not
      // restart the designated node's control plane.
      if (path_is_under(c, kBootstrapDir)) return false;
      // Likewise etcd's membership file: a member coming or going must not restart every etcd.
      if (c == kEtcdMembershipFile) return false;
      // And the re-encrypt request of an encryption-key rotation (phase 3): the config it follows is unchanged.
      if (c == kReencryptRequestFile) return false;
      // And the snapshot policy (docs/backup.md): a new `keep` must not restart etcd.
      if (c == kEtcdBackupFile) return false;
      return std::any_of(prefixes.begin(), prefixes.end(), [&](const std::string& p) { return path_is_under(c, p); });
    });
    if (hit) out.push_back(u);
  }
  return out;
}

}  // namespace kb
