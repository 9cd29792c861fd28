#pragma once
// What a gen would change, node by node, computed before anything is written: `kbundle plan`
// prints it, and `kbundle gen` prints the same summary once it has written. It compares the
// manifests the last gen recorded in the state (generator/state.h, previous_manifests()) with the
// manifests this run would sign (generator/bundle_output.h, bundle_manifest()). Secrets appear
// by sha256 only: the plan holds manifests, never file contents. Format: docs/plan.md.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundles/manifest.h"
#include "generator/rotation.h"

namespace kb {

struct FileChange {
  std::string path;
  std::string kind;     // "added", "changed", "removed"
  std::string cls;      // "secret", "config", "unit", "binary", or "directory"
  std::string old_sha256, new_sha256;  // "" where there is none (a directory, an added or removed file)
  std::vector<std::string> what;       // changed only: "content", "mode 0600 -> 0644", "owner root:root -> etcd:etcd"
};

struct CertChange {
  std::string owner, name;  // as the state keeps it: "control-0"/"etcd-server", "cluster"/"admin"
  std::string reason;       // IssuedCert::reason: "new", "SAN set changed: ...", "expires in 12 days", ...
};

struct NodeChange {
  std::string name, role;
  std::string status;         // "new", "changed", "unchanged", "removed"
  uint64_t old_serial = 0;    // 0: no previous bundle recorded
  uint64_t new_serial = 0;    // 0: removed
  std::vector<std::string> details;  // identity or metadata changes: "kubernetes_version v1.32.3 -> v1.33.0"
  std::vector<FileChange> files;     // by path
  std::vector<CertChange> certs;     // the node's own certificates reissued
  std::vector<std::string> restart;  // units an apply (re)starts, in start order
  std::vector<std::string> units_removed;  // units the new bundle no longer has (stopped and disabled)
};

// What the rest of the run contributes: etcd membership (generator/etcd_membership.h, describe()),
// refusals (etcd membership and version-skew problems), and the apply order (topology/apply_order.h).
struct ChangeInputs {
  std::vector<std::string> etcd;      // one line per membership step, in order
  std::vector<std::string> problems;  // non-empty: the change is refused
  std::vector<std::vector<std::string>> order;  // batches of node names
  std::vector<Rotation> rotations;    // in progress (generator/rotation.h): shown, never a change by itself
};

struct ChangePlan {
  std::string cluster;
  bool state_created = false;        // the state does not exist yet (plan) or was created (gen)
  bool subset = false;               // --node: nodes not named are neither compared nor removed
  std::vector<NodeChange> nodes;     // the topology's nodes in order, then the removed ones
  std::vector<CertChange> shared_certs;  // certificates several nodes (or the admin kubeconfig) share
  ChangeInputs inputs;

  bool changes() const;  // anything at all would be written
  bool refused() const { return !inputs.problems.empty(); }
  size_t count(const std::string& status) const;
};

// `previous`: the state's recorded manifests. `next`: the manifests this run signs, topology order.
// `reissued`: State::reissued() ("owner/name" -> reason). `subset`: gen --node (only those nodes
// were planned; the others are neither compared nor reported as removed).
ChangePlan make_change_plan(const std::string& cluster, const std::map<std::string, Manifest>& previous,
                            const std::vector<Manifest>& next, const std::map<std::string, std::string>& reissued,
                            bool subset, ChangeInputs inputs);

// The human summary: a header line with the totals, one block per changed node, shared certificates,
// etcd membership, problems, then the apply order; the no_changes_line() alone when nothing changes.
// Rotations in progress follow either, one block each.
// The caller puts its own prefix ("kbundle plan: ") before it.
std::string change_plan_text(const ChangePlan& plan);
// One line for a run that changes nothing: "cluster kthw: no changes (6 nodes as before)".
std::string no_changes_line(const ChangePlan& plan);
// The stable JSON form (docs/plan.md).
nlohmann::json change_plan_json(const ChangePlan& plan);

}  // namespace kb
