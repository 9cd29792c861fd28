#pragma once
// Which units a change of paths restarts: one rule, shared by the installer (what an apply
// restarts) and the generator (what `kbundle plan` says an apply will restart).

#include <string>
#include <vector>

namespace kb {

// The path prefixes a unit depends on (its unit file and drop-ins, its binary, its config and data
// directories). A unit restarts when any changed path is one of them or below.
std::vector<std::string> unit_paths(const std::string& unit);

// The units of `units` (kept in that order) that a change of `changed` paths restarts. Paths under
// the bootstrap directory restart nothing: only the installer reads them.
std::vector<std::string> units_to_restart(const std::vector<std::string>& units, const std::vector<std::string>& changed);

}  // namespace kb
