#pragma once
// `kbundle publish`: moves what `kbundle gen` wrote (every <node>.kbundle, bundle-signing.pub and
// the installer binary) to where the nodes fetch it, and prints for every node the exact command
// that installs its bundle. Two ways (docs/publish.md):
//   s3://BUCKET/PREFIX/  SigV4, SSE-S3 or SSE-KMS, multipart above --part-size, integrity checked by
//                        HEAD, only changed objects uploaded, one presigned GET URL per node.
//   ssh | scp://USER@HOST[:PORT]/DIR   SFTP over SSH (libcurl + libssh2), host keys checked, files 0600,
//                        written under a temporary name and renamed.

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace kb {

struct PublishOptions {
  std::string out_dir = "out";
  std::string to;                 // "s3://...", "ssh", "scp://user@host[:port]/dir"
  std::string installer;          // empty: beside kbundle's build dir (../installer/kbundle-installer) if there
  bool no_installer = false;
  std::vector<std::string> nodes;  // only these nodes' bundles (default: every bundle in out_dir)
  bool json = false;
  bool progress = true;            // progress bars, when stderr is a terminal
  bool force = false;              // upload even when the target already holds the same bytes

  // S3
  std::string region;              // default: AWS_REGION, AWS_DEFAULT_REGION, the profile's region
  std::string kms_key_id;          // SSE-KMS with this key; default SSE-S3
  uint64_t part_size_mib = 8;      // multipart above this; 5 to 512
  int64_t expires_seconds = 3600;  // presigned URLs' lifetime; 1 to 604800
  std::string node_dir = "/var/lib/kbundle/incoming";  // where the printed commands download to

  // SSH
  std::string topology_path;       // --to ssh: each node's publicIP, else privateIP
  std::string ssh_user = "root";
  int ssh_port = 22;
  std::string identity;            // default ~/.ssh/id_ed25519
  std::string known_hosts;         // default ~/.ssh/known_hosts
  std::string host_fingerprint;    // "SHA256:base64": this host key only (one target)
  bool accept_new = false;         // trust an unknown host's key and append it to known_hosts
  std::string remote_dir = "/var/lib/kbundle/incoming";
  std::string remote_installer = "/usr/local/bin/kbundle-installer";  // where the installer goes on a node
  bool apply = false;              // run the node's command over SSH (libssh2) after the upload
  std::string apply_flags;         // extra `kbundle-installer apply` flags, {node} replaced (e.g. --dry-run)
  int max_unavailable = 0;         // --to ssh --apply: workers applied at once (0: not given, 1)

  std::string self_exe;            // this program's path, for the installer's default location
};

// Publishes; returns 0, or 2 for a usage problem (printed to err). Failures throw kb::Error (exit 1).
int run_publish(const PublishOptions& options, std::ostream& out, std::ostream& err);

}  // namespace kb
