#pragma once
// One node's plan as a signed bundle (bundles/FORMAT.md). The serial goes up
// only when the node's content changes; an unchanged node keeps its serial and
// creation time, so its bundle is byte-identical to the previous one.

#include <cstdint>
#include <ctime>
#include <string>

#include "bundles/bundle_writer.h"
#include "generator/plan.h"

namespace kb {

class State;

struct BundleInfo {
  uint64_t serial = 0;
  std::string created_at;
  size_t entries = 0;
  Manifest manifest;  // exactly as signed into the bundle (kept in the state for `kbundle plan`)
};

// `node`'s manifest without signing key, serial, creation time, sizes and hashes: what the
// path policy judges.
Manifest node_manifest(const ClusterPlan& plan, const NodePlan& node, const std::string& kubernetes_version);

// Throws kb::Error listing every node file, directory or unit of `plan` outside the bundle path
// policy (bundles/path_policy.h): gen refuses to write what an installer would refuse.
void check_plan_policy(const ClusterPlan& plan, const std::string& kubernetes_version);

// The manifest write_node_bundle() signs for `node`, without writing anything: signing key,
// serial (as `state` assigns it: the same while the content is the same, else + 1) and creation
// time included. `kbundle plan` calls it on a read-only state.
Manifest bundle_manifest(const ClusterPlan& plan, const NodePlan& node, const std::string& kubernetes_version,
                         State& state, const std::string& now);

// Writes `node`'s bundle to `out_path` (atomically), signed with the state's key. `now` (one
// value per run, RFC 3339) becomes the creation time of a changed node: nodes written in one run
// then share member headers, so `options.cache` can reuse the compressed binaries across them.
BundleInfo write_node_bundle(const ClusterPlan& plan, const NodePlan& node, const std::string& kubernetes_version,
                             State& state, const std::string& out_path, const std::string& now,
                             const WriteOptions& options);

}  // namespace kb
