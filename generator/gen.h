#pragma once
// `kbundle gen` and `kbundle validate`: the generator's top-level drivers.

#include <ctime>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "base/exit_code.h"
#include "generator/etcd_restore.h"

namespace kb {

struct GenOptions {
  std::string topology_path;
  std::string state_dir = "state";
  std::string out_dir = "out";
  std::vector<std::string> nodes;  // empty: every node
  std::string format = "bundle";   // "bundle" (one signed <node>.kbundle each) or "dir" (trees)
  std::string compression = "zstd";
  std::string cache_dir;           // binary cache; empty: <state_dir>/cache
  bool no_binaries = false;        // config-only bundles
  bool json = false;               // machine-readable summary on stdout
  // The clock, given by the caller (cli/: std::time(nullptr); tests: a fixed time). `now` dates
  // and renews certificates; `created_at`, when set (cli/: SOURCE_DATE_EPOCH), replaces it as the
  // creation time of a changed node's bundle only, never a certificate's validity.
  std::time_t now = 0;
  std::optional<std::time_t> created_at;
  // `kbundle restore` (docs/backup.md): every control-plane bundle also carries this checked snapshot.
  std::optional<EtcdRestoreInput> restore;
};

// Validates, opens the state, plans, writes the output atomically. Reports on `out`
// (progress, or the JSON summary) and `err` (diagnostics). Never prints secrets.
int run_gen(const GenOptions& options, std::ostream& out, std::ostream& err);

// `kbundle plan` (docs/plan.md): what a gen with the same options would change, computed on a
// read-only state (State::open_read_only); writes nothing at all, not even a lock file. Shows the
// etcd membership steps (generator/etcd_membership.h) and refuses, with exit 3, a change with etcd
// membership or version-skew problems (generator/version_skew.h).
struct PlanOptions {
  std::string topology_path;
  std::string state_dir = "state";
  std::vector<std::string> nodes;  // empty: every node
  std::string cache_dir;           // binary cache; empty: <state_dir>/cache
  bool no_binaries = false;        // compare config-only bundles (as gen --no-binaries would write)
  bool json = false;
  size_t max_unavailable = 1;      // workers per batch in the apply order shown
  std::time_t now = 0;             // as GenOptions
  std::optional<std::time_t> created_at;
};

// Exit codes of `kbundle plan`: kExitOk nothing would change, kExitPlanChanges something would,
// kExitInvalidInput an invalid topology or a refused change, kExitFailure anything else.
inline constexpr int kExitPlanChanges = 2;
int run_plan(const PlanOptions& options, std::ostream& out, std::ostream& err);

// Validates only; prints every diagnostic. Writes nothing. With `state_dir` (read-only, when it holds
// a state): also warns about an encryption provider changed without a rotation.
int run_validate(const std::string& topology_path, bool json, std::ostream& out, std::ostream& err,
                 const std::string& state_dir = "", std::time_t now = 0);

}  // namespace kb
