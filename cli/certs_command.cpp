// `kbundle certs`: every certificate, its expiry, its nodes and the next gen's decision (docs/certs.md).
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "generator/cert_report.h"

namespace kb {

CLI::App* add_certs_command(CLI::App& app, CertsOptions& o) {
  auto* cmd = app.add_subcommand("certs",
                                 "List every certificate: expiry, SANs, the nodes that carry it and whether the next gen "
                                 "renews it; write nothing (exit 0 all fine, 2 one inside renewBeforeDays or expired, 3 invalid "
                                 "topology, 1 other errors; docs/certs.md)");
  cmd->add_option("--topology,-t", o.topology_path, "Topology file (YAML)")->required();
  cmd->add_option("--state", o.state_dir, "State directory (read only; need not exist yet)")->capture_default_str();
  cmd->add_flag("--json", o.json, "Print the list as JSON (docs/certs.md)");
  return cmd;
}

}  // namespace kb
