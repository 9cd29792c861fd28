#include "topology/apply_order.h"

#include <algorithm>
#include <set>

#include "base/error.h"
#include "base/text_escape.h"

namespace kb {

std::vector<std::vector<std::string>> apply_order(const Topology& t, size_t max_unavailable,
                                                  const std::vector<std::string>& only) {
  if (max_unavailable == 0)
    throw Error("max-unavailable must be at least 1 (0 would never apply a worker)");
  const std::set<std::string> wanted(only.begin(), only.end());
  for (const std::string& name : wanted) {
    const bool known = std::any_of(t.nodes.begin(), t.nodes.end(),
                                   [&](const Node& n) { return n.name == name; });
    if (!known)
      throw Error(escape_text(t.source_path) + ": no node named \"" + escape_text(name) +
                  "\" (use a name from the file's nodes list)");
  }
  auto selected = [&](const Node& n) { return wanted.empty() || wanted.count(n.name) > 0; };

  std::vector<std::vector<std::string>> batches;
  // A "both" node runs etcd, so it goes with the control plane: alone, before any worker.
  for (const Node& n : t.nodes)
    if (n.is_control_plane() && selected(n)) batches.push_back({n.name});
  std::vector<std::string> batch;
  for (const Node& n : t.nodes) {
    if (n.is_control_plane() || !selected(n)) continue;
    batch.push_back(n.name);
    if (batch.size() == max_unavailable) batches.push_back(std::move(batch)), batch.clear();
  }
  if (!batch.empty()) batches.push_back(std::move(batch));
  return batches;
}

std::string describe_apply_order(const std::vector<std::vector<std::string>>& batches) {
  std::string out;
  for (const auto& batch : batches) {
    if (!out.empty()) out += ", then ";
    if (batch.size() == 1) {
      out += batch[0];
      continue;
    }
    out += "[";
    for (size_t i = 0; i < batch.size(); ++i) out += (i ? " " : "") + batch[i];
    out += "]";
  }
  return out.empty() ? "(no nodes)" : out;
}

}  // namespace kb
