#pragma once
// Version skew between the nodes of a cluster across one gen, per the Kubernetes "Version Skew
// Policy" (kubernetes.io/releases/version-skew-policy) and etcd's one-minor-at-a-time upgrades.
// docs/upgrades.md states each rule and its source.

#include <map>
#include <string>
#include <vector>

namespace kb {

struct NodeVersion {
  std::string role;        // "control-plane", "worker" or "both"
  std::string kubernetes;  // "v1.32.4"
  std::string etcd;        // "v3.5.21"; "" on workers
};

// Problems (empty: allowed) of going from `before` (from the previous manifests: role, kubernetes_version; etcd
// from the catalog) to `after` (nodes not regenerated keep their `before` version), per the Kubernetes version
// skew policy: no skipped minor, no downgrade of a minor, control-plane nodes within one minor of each other,
// kubelet/kube-proxy never newer than any apiserver and at most 3 minors older, etcd never downgraded and at most
// one etcd minor at a time. Each problem names the node and the fix.
std::vector<std::string> version_skew_problems(const std::map<std::string, NodeVersion>& before,
                                               const std::map<std::string, NodeVersion>& after);

}  // namespace kb
