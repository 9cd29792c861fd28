#pragma once
// What `kbundle publish` moves, read from the output directory of `kbundle gen`: every bundle
// (verified with bundle-signing.pub before anything leaves the machine), the public key and its
// fingerprint, and the installer binary.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kb {

struct Artifact {
  std::string name;  // object / remote file name: "control-0.kbundle", "bundle-signing.pub", "kbundle-installer"
  std::string path;  // local path
  std::string node;  // the node a bundle is for; empty for shared files
  uint64_t serial = 0;
  uint64_t size = 0;
  std::string sha256;
};

struct PublishSet {
  std::vector<Artifact> bundles;     // by node name
  Artifact trust_key;                // bundle-signing.pub
  std::optional<Artifact> installer;
  std::string fingerprint;           // of the signing key (kbundle-installer --trust-fingerprint)
  std::string public_key_pem;
};

// Reads `out_dir`; `nodes` (may be empty) selects bundles. Throws kb::Error naming the file and the
// fix: no bundles (hint: kbundle gen, not --format dir), a bundle that fails verification, an
// unknown node, a missing installer given explicitly.
PublishSet collect_artifacts(const std::string& out_dir, const std::vector<std::string>& nodes,
                             const std::string& installer_path);

// The installer next to a kbundle built in a CMake tree (<build>/cli/kbundle ->
// <build>/installer/kbundle-installer), or empty.
std::string default_installer_path(const std::string& self_exe);

// `flags` with every "{node}" replaced by the node's name (--apply-flags).
std::string node_flags(std::string flags, const std::string& node);

// The one-line shell command that installs `bundle` on its node once the bundle is in `dir`:
// checks its sha256, writes the public key beside it and applies it pinned to the signing key's
// fingerprint. `download` is the command that fetches the bundle into `dir` (may be empty);
// `installer` the installer to run; `apply_flags` extra `apply` flags ({node}: the node's name).
std::string node_command(const PublishSet& set, const Artifact& bundle, const std::string& dir,
                         const std::string& download, const std::string& installer = "kbundle-installer",
                         const std::string& apply_flags = "");

}  // namespace kb
