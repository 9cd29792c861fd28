#pragma once
// Version skew between the nodes of a cluster across one gen, per the Kubernetes "Version Skew
// Policy" (kubernetes.io/releases/version-skew-policy) and etcd's one-minor-at-a-time upgrades.
// docs/upgrades.md states each rule and its source.

#include <map>
#include <string>
#include <vector>

#include "bundles/manifest.h"
#include "topology/topology.h"

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

// What each node runs now, from the manifests of the bundles gen last wrote (State::previous_manifests()):
// its role and kubernetes_version, and for etcd members the etcd of that release in the catalog
// ("" when this kbundle's catalog no longer has its minor: the etcd rules are then skipped).
std::map<std::string, NodeVersion> versions_before(const std::map<std::string, Manifest>& previous);

// What each node of `t` runs once this gen's bundles are applied: the regenerated nodes (`only`, or
// every node when empty) at t's kubernetesVersion, the others as in `before` (a node never generated
// and not regenerated now runs nothing and is left out).
std::map<std::string, NodeVersion> versions_after(const Topology& t, const std::vector<std::string>& only,
                                                  const std::map<std::string, NodeVersion>& before);

}  // namespace kb
