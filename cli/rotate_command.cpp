// `kbundle rotate signing-key`: a new bundle-signing key, vouched for by the old one (docs/trust.md).
#include <CLI/CLI.hpp>
#include <ostream>
#include <sys/stat.h>

#include "base/error.h"
#include "base/exit_code.h"
#include "base/time.h"
#include "bundles/signing.h"
#include "cli/commands.h"
#include "generator/state.h"
#include "topology/topology.h"

namespace kb {

CLI::App* add_rotate_command(CLI::App& app, RotateOptions& o) {
  auto* cmd = app.add_subcommand("rotate", "Replace a long-lived key of the state (changes its pin)");
  cmd->require_subcommand(1);
  auto* signing = cmd->add_subcommand(
      "signing-key", "New bundle-signing key plus a rollover statement signed by the old one; nodes follow it");
  signing->add_option("--topology,-t", o.topology_path, "Topology file (YAML)")->required();
  signing->add_option("--state", o.state_dir, "State directory made by `kbundle gen`")->capture_default_str();
  signing->callback([&o] { o.what = "signing-key"; });
  return cmd;
}

int run_rotate(const RotateOptions& o, std::time_t now, std::ostream& out, std::ostream& err) {
  TopologyResult r = load_topology(o.topology_path);
  for (const Diagnostic& d : r.diagnostics) err << d.format() << "\n";
  if (!r.ok()) return kExitInvalidInput;
  // Rotating needs a key to rotate: never create a state here.
  struct stat st;
  if (::stat((o.state_dir + "/state.json").c_str(), &st) != 0)
    throw Error(o.state_dir + "/state.json: no state to rotate a key in; run `kbundle gen --state " + o.state_dir +
                "` first (or name the right --state)");
  auto state = State::open(o.state_dir, *r.topology, now);
  if (!state->note().empty()) err << "kbundle: note: " << state->note() << "\n";
  std::string old_fp = VerifyKey(state->signing_public_key_pem()).fingerprint();
  RolloverStatement s = state->rotate_signing_key(rfc3339_utc(now));
  out << "kbundle: rotated the bundle-signing key: sha256:" << old_fp << " -> sha256:" << s.new_key_sha256
      << " (rollover serial " << s.serial << ", signed by the old key)\n"
      << "kbundle: next: `kbundle gen` signs every bundle with the new key and adds the chain of " << s.serial
      << (s.serial == 1 ? " statement" : " statements")
      << "; installed nodes follow it on their next apply. A node not installed yet needs the new "
         "fingerprint: kbundle-installer apply --trust-fingerprint sha256:"
      << s.new_key_sha256 << "\n";
  return kExitOk;
}

}  // namespace kb
