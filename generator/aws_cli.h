#pragma once
// `kbundle aws up|plan|status|down`: the cluster's AWS infrastructure, from the topology's
// `aws` section. The AWS side lives in aws/; this file turns the topology into an
// aws::ClusterSpec, prints, and writes back what `gen` needs (see docs/aws.md).

#include <iosfwd>
#include <map>
#include <string>

namespace CLI {
class App;
}

namespace kb {

struct AwsOptions {
  std::string command;  // "up", "plan", "status", "down"
  std::string topology_path;
  bool json = false;              // status: machine-readable
  bool yes = false;               // down: really delete
  bool keep_topology = false;     // up: do not write the load balancer's name and public IPs back
  int timeout_seconds = 900;      // up: instances running; down: everything deleted
};

// Adds the `aws` command and its subcommands to `app`; returns it.
CLI::App* add_aws_command(CLI::App& app, AwsOptions& options);

// Runs one subcommand. Topology problems: kExitInvalidInput; AWS errors are thrown as kb::Error.
int run_aws(const AwsOptions& options, std::ostream& out, std::ostream& err);

// The topology text with cluster.apiEndpoint.host set to `api_host` (unless empty) and each named
// node's publicIP and instanceId set, every other byte (comments, order, quoting) kept. Throws kb::Error when the
// file's layout is one it cannot edit safely.
std::string patch_topology_text(const std::string& text, const std::string& api_host,
                                const std::map<std::string, std::string>& public_ips,
                                const std::map<std::string, std::string>& instance_ids = {});

}  // namespace kb
