#pragma once
// Edits a topology file's text in place, keeping every other byte (comments, order, quoting):
// `kbundle aws up` writes back what it created.

#include <map>
#include <string>

namespace kb {

// The topology text with cluster.apiEndpoint.host set to `api_host` (unless empty) and each named
// node's publicIP and instanceId set, every other byte (comments, order, quoting) kept. Throws kb::Error when the
// file's layout is one it cannot edit safely.
std::string patch_topology_text(const std::string& text, const std::string& api_host,
                                const std::map<std::string, std::string>& public_ips,
                                const std::map<std::string, std::string>& instance_ids = {});

}  // namespace kb
