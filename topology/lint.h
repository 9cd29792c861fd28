#pragma once
// `kbundle lint`: which CIS Kubernetes Benchmark checks (kube-bench cis-1.12, for
// Kubernetes 1.32) the settings chosen in a topology turn off. docs/cis.md lists
// every check; this reports only what the user's own choices change.

#include <string>
#include <vector>

#include "topology/topology.h"

namespace kb {

struct LintFinding {
  std::string check_id;  // the benchmark's number, e.g. "1.2.11"; empty for a finding that is no CIS check
  std::string title;     // the benchmark's recommendation
  bool scored = false;   // Automated (scored) or Manual
  std::string setting;   // the topology key and value that turns it off, e.g. "cluster.hardening.alwaysPullImages: false"
  std::string why;       // when that setting is the right choice
  int line = 0;          // 1-based place of the setting in the file; 0 when unknown
  int column = 0;
};

// The checks `topology` turns off, in benchmark order. `yaml_text` is the file the
// topology came from, used only to place each finding at its key.
std::vector<LintFinding> lint_topology(const Topology& topology, const std::string& yaml_text);

}  // namespace kb
