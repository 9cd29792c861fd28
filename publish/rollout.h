#pragma once
// The rolling apply of `kbundle publish --to ssh --apply` (docs/rollout.md). The batches come from
// topology/apply_order.h; what happens on one node (probe, upload, apply, health) comes through
// RolloutNodes, so the engine (batches, gates, the first install, stopping, the report) is tested
// without SSH (publish/rollout_test.cpp) and driven over SSH by publish/ssh_publish.cpp.

#include <iosfwd>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "publish/ssh_exec.h"

namespace kb {

// One node's side of the rollout. upload/apply/health may run at once on different nodes (a worker
// batch), never twice at once on one node. Each throws kb::Error when the node cannot be reached
// (connection, host key, login, transfer); an installer that ran and failed is a nonzero exit status.
class RolloutNodes {
 public:
  virtual ~RolloutNodes() = default;
  // Whether any generation is installed on the node (read-only: decides the first install).
  virtual bool installed(const std::string& node) = 0;
  // The node's bundle, the signing key and the installer, into its directory.
  virtual void upload(const std::string& node) = 0;
  // `kbundle-installer apply --json ...` of the uploaded bundle.
  virtual ExecResult apply(const std::string& node) = 0;
  // `kbundle-installer health` on the node.
  virtual ExecResult health(const std::string& node) = 0;
};

enum class NodeResult { Applied, Unchanged, Failed, NotStarted };
const char* to_string(NodeResult r);  // "applied", "nothing to do", "failed", "not started"

struct NodeRollout {
  std::string node;
  bool control_plane = false;
  size_t batch = 0;  // 1-based, in the order actually followed
  NodeResult result = NodeResult::NotStarted;
  std::string step;    // where it failed: "probe", "upload", "apply", "health", "health of NODE"
  int exit_code = -1;  // the failing installer's exit code; -1 when it never ran (node unreachable)
  std::string error;   // failed: one line, node text escaped
  std::vector<std::string> last_lines;  // failed: the installer's last output lines, escaped
  std::string started_at, finished_at;  // RFC 3339 (host clock)
  double start_offset = 0, seconds = 0;  // since the rollout began; how long this node took
};

struct RolloutReport {
  std::vector<std::vector<std::string>> order;  // as followed (a first install merges the control plane)
  bool first_install = false;
  std::vector<NodeRollout> nodes;  // in that order
  std::string failure;             // the first failure in one line; empty when every node is done

  bool ok() const { return failure.empty(); }
  nlohmann::json to_json() const;
  void print(std::ostream& out) const;  // one line per node, then the lines of a failure
};

// What the installer's `apply --json` output says: the human lines, the JSON report's result and
// error. The report is its last line; output without one (an installer that crashed, a shell that
// could not run it) keeps every line and leaves `result` empty; `error` is then the installer's last
// "kbundle-installer: error: " line, if any (a usage error is followed by the usage).
struct ApplyOutput {
  std::vector<std::string> lines;  // without the JSON line
  std::string result;              // "applied", "unchanged", "repaired", "dry-run", ...
  std::string error;
};
ApplyOutput parse_apply_output(const std::string& output);

// The last `n` non-empty lines of `output`, each escaped (node output never reaches a terminal raw).
std::vector<std::string> last_lines(const std::vector<std::string>& lines, size_t n);

// Runs the rollout: says the order, finds a first install (the run covers every control-plane node
// and none has anything installed: they are applied together, since etcd answers its health check
// only with a quorum),
// then each batch: upload and apply every node (at once within a batch); a control-plane node passes
// when its apply exits 0 and `health` then passes on it and on every control-plane node done earlier
// in this run. Stops at the first failure: later nodes are never contacted. Progress goes to `out`.
RolloutReport run_rollout(const std::vector<std::vector<std::string>>& order,
                          const std::set<std::string>& control_plane, RolloutNodes& nodes, std::ostream& out);

}  // namespace kb
