// `kbundle restore --snapshot FILE`: restore bundles for every control-plane node (docs/backup.md).
#include <CLI/CLI.hpp>
#include <ostream>
#include <sys/stat.h>

#include "base/error.h"
#include "base/exit_code.h"
#include "base/text_escape.h"
#include "bundles/manifest.h"
#include "cli/commands.h"
#include "generator/etcd_restore.h"
#include "generator/gen.h"
#include "generator/state.h"
#include "topology/topology.h"

namespace kb {

CLI::App* add_restore_command(CLI::App& app, RestoreOptions& o) {
  auto* cmd = app.add_subcommand(
      "restore", "Bundles that restore every etcd member from one snapshot (new cluster token, old data kept aside)");
  cmd->add_option("--snapshot", o.snapshot, "Snapshot file (from kbundle-installer etcd snapshot)")->required();
  cmd->add_option("--topology,-t", o.topology_path, "Topology file (YAML)")->required();
  cmd->add_option("--state", o.state_dir, "State directory made by `kbundle gen`")->capture_default_str();
  cmd->add_option("--out,-o", o.out_dir, "Output directory, replaced atomically")->capture_default_str();
  cmd->add_option("--cache", o.cache_dir, "Binary cache filled by `kbundle fetch` (default: <state>/cache)");
  return cmd;
}

int run_restore(const RestoreOptions& o, std::time_t now, std::ostream& out, std::ostream& err) {
  TopologyResult r = load_topology(o.topology_path);
  for (const Diagnostic& d : r.diagnostics) err << d.format() << "\n";
  if (!r.ok()) return kExitInvalidInput;
  // A restore brings a cluster back under its own CAs and keys: never create a state here.
  struct stat st;
  if (::stat((o.state_dir + "/state.json").c_str(), &st) != 0)
    throw Error(o.state_dir + "/state.json: no state; a restore needs the cluster's state (its CAs, keys and "
                "etcd members): name the right --state");
  EtcdRestoreInput in;
  try {
    in = check_restore_snapshot(o.snapshot, r.topology->cluster.name, now);
  } catch (const Error& e) {
    err << "kbundle: error: " << escape_text(e.what()) << "\n";
    return kExitInvalidInput;
  }
  // The restore bundles carry what the last gen's did (with or without binaries), so that applying
  // them removes nothing from the nodes.
  bool binaries = false;
  {
    auto state = State::open_read_only(o.state_dir, *r.topology, now);
    for (const auto& [name, m] : state->previous_manifests())
      for (const auto& e : m.entries) binaries |= e.cls == EntryClass::Binary;
  }
  out << "kbundle: snapshot " << escape_text(o.snapshot) << ": " << in.size << " bytes, sha256 " << in.sha256
      << ", etcd's integrity hash ok" << (in.sidecar_checked ? ", matches its .sha256" : " (no .sha256 beside it)") << "\n";
  GenOptions g;
  g.topology_path = o.topology_path;
  g.state_dir = o.state_dir;
  g.out_dir = o.out_dir;
  g.cache_dir = o.cache_dir;
  g.no_binaries = !binaries;
  g.now = now;
  g.restore = in;
  int rc = run_gen(g, out, err);
  if (rc != kExitOk) return rc;
  out << "kbundle: restore " << in.id << " (cluster token " << in.token << "): apply every control-plane bundle at "
      << "once (etcd needs a quorum to pass the health gate), e.g. kbundle publish --to ssh --apply; each node stops "
         "etcd, restores into a fresh data directory and keeps the old one as /var/lib/etcd.before-restore-<serial>\n";
  return kExitOk;
}

}  // namespace kb
