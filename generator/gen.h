#pragma once
// `kbundle gen` and `kbundle validate`: the generator's top-level drivers.

#include <iosfwd>
#include <string>
#include <vector>

namespace kb {

enum ExitCode : int { kExitOk = 0, kExitFailure = 1, kExitUsage = 2, kExitInvalidInput = 3 };

struct GenOptions {
  std::string topology_path;
  std::string state_dir = "state";
  std::string out_dir = "out";
  std::vector<std::string> nodes;  // empty: every node
  std::string format = "dir";      // "dir" (trees) or "bundle"
  bool json = false;               // machine-readable summary on stdout
};

// Validates, opens the state, plans, writes the output atomically. Reports on `out`
// (progress, or the JSON summary) and `err` (diagnostics). Never prints secrets.
int run_gen(const GenOptions& options, std::ostream& out, std::ostream& err);

// Validates only; prints every diagnostic. Writes nothing.
int run_validate(const std::string& topology_path, bool json, std::ostream& out, std::ostream& err);

}  // namespace kb
