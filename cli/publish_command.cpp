#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "publish/publish.h"

namespace kb {

CLI::App* add_publish_command(CLI::App& app, PublishOptions& o) {
  auto* cmd = app.add_subcommand("publish", "Upload the bundles to S3 or over SSH and print what to run on each node");
  cmd->add_option("--out,-o", o.out_dir, "The directory `kbundle gen` wrote")->capture_default_str();
  cmd->add_option("--to", o.to, "s3://BUCKET/PREFIX/, ssh (every node of --topology) or scp://USER@HOST[:PORT]/DIR")
      ->required();
  cmd->add_option("--node", o.nodes, "Only this node's bundle (repeatable)");
  cmd->add_option("--installer", o.installer,
                  "kbundle-installer binary to publish too (default: <build>/installer/kbundle-installer beside this kbundle)");
  cmd->add_flag("--no-installer", o.no_installer, "Do not publish the installer");
  cmd->add_flag("--force", o.force, "Upload even what the target already holds");
  cmd->add_flag("--json", o.json, "Print a machine-readable summary");
  cmd->add_flag("!--no-progress", o.progress, "No progress bars (they are drawn only on a terminal anyway)");
  // S3
  cmd->add_option("--region", o.region, "S3: the bucket's region (default: AWS_REGION, AWS_DEFAULT_REGION, profile)");
  cmd->add_option("--kms-key-id", o.kms_key_id, "S3: encrypt with SSE-KMS under this key (default SSE-S3, AES256)");
  cmd->add_option("--part-size", o.part_size_mib, "S3: multipart upload above this size, in MiB (5-512)")
      ->capture_default_str();
  cmd->add_option("--expires", o.expires_seconds, "S3: presigned URLs' lifetime in seconds (1-604800)")
      ->capture_default_str();
  cmd->add_option("--node-dir", o.node_dir, "Where the printed commands put the bundle on the node")->capture_default_str();
  // SSH
  cmd->add_option("--topology,-t", o.topology_path, "ssh: the nodes' addresses (publicIP, else privateIP)");
  cmd->add_option("--ssh-user", o.ssh_user, "ssh: remote user")->capture_default_str();
  cmd->add_option("--ssh-port", o.ssh_port, "ssh: port (--to ssh)")->capture_default_str()->check(CLI::Range(1, 65535));
  cmd->add_option("--identity,-i", o.identity, "ssh: private key (default ~/.ssh/id_ed25519)");
  cmd->add_option("--known-hosts", o.known_hosts, "ssh: known_hosts file (default ~/.ssh/known_hosts)");
  cmd->add_option("--host-fingerprint", o.host_fingerprint, "ssh: accept exactly this host key (SHA256:...; one target)");
  cmd->add_flag("--accept-new", o.accept_new, "ssh: trust unknown hosts and add them to known_hosts");
  cmd->add_option("--remote-dir", o.remote_dir, "ssh: directory on the node (created 0700)")->capture_default_str();
  cmd->add_option("--remote-installer", o.remote_installer, "ssh: where the node's command installs kbundle-installer")
      ->capture_default_str();
  cmd->add_flag("--apply", o.apply,
                "ssh: apply on each node after its upload; --to ssh rolls out in order: control-plane nodes one at a "
                "time, each health-gated, then workers (docs/rollout.md); stops at the first failure");
  cmd->add_option("--max-unavailable", o.max_unavailable, "ssh --apply: workers applied at once (default 1)")
      ->check(CLI::Range(1, 5000));
  cmd->add_option("--apply-flags", o.apply_flags, "ssh: extra `kbundle-installer apply` flags, {node} = node name (e.g. --dry-run)");
  return cmd;
}

}  // namespace kb
