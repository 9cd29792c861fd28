#pragma once
// The order in which a running cluster's nodes are applied (docs/rollout.md): control-plane nodes
// one at a time, so etcd never loses more than one member and each can be health-gated before the
// next; then workers in batches, so at most `max_unavailable` of them restart at once.

#include <cstddef>
#include <string>
#include <vector>

#include "topology/topology.h"

namespace kb {

// The batches in which nodes are applied: each control-plane (or "both") node alone, in topology order,
// then workers in batches of at most max_unavailable (>= 1), in topology order. `only` (non-empty)
// restricts to those names, order kept (the topology's order, not `only`'s). Throws kb::Error for
// max_unavailable 0, or a name in `only` that is not a node of the topology (naming it and the file).
std::vector<std::vector<std::string>> apply_order(const Topology& t, size_t max_unavailable,
                                                  const std::vector<std::string>& only = {});

// "cp-1, then cp-2, then [w-1 w-2]": one line for messages and `plan`.
std::string describe_apply_order(const std::vector<std::vector<std::string>>& batches);

}  // namespace kb
