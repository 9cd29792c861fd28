#pragma once
// Where `kbundle publish` sends files over SSH: one target per node (--to ssh, addresses from the
// topology) or one given as scp://USER@HOST[:PORT]/DIR.

#include <string>
#include <vector>

#include "topology/topology.h"
#include "publish/artifacts.h"
#include "publish/publish.h"

namespace kb {

struct SshTarget {
  std::string node;  // empty: every bundle goes to this target
  std::string user, host;
  int port = 22;
  std::string dir;   // absolute, no trailing '/'
};

// scp://[USER@]HOST[:PORT][/DIR] (also sftp://); USER defaults to `default_user`, DIR to
// `default_dir`. IPv6 hosts in brackets. Throws PublishUsageError.
SshTarget parse_scp_url(const std::string& url, const std::string& default_user, const std::string& default_dir);

// One target per bundle in `set`: the node's publicIP, else its privateIP; --ssh-user, --ssh-port,
// --remote-dir. A bundle whose node is not in the topology is an error.
std::vector<SshTarget> ssh_targets_from_topology(const Topology& topology, const PublishSet& set, const PublishOptions& o);

}  // namespace kb
