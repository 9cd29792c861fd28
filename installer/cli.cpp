#include <optional>
#include <string>
#include <vector>

#include "base/version.h"
#include "installer/etcd_backup.h"
#include "installer/installer.h"

namespace kb::installer {

namespace {

const char* kUsage =
    "usage: kbundle-installer [flags] COMMAND\n"
    "commands:\n"
    "  apply BUNDLE     verify, stage, switch, restart what changed, health-check, commit (or roll back)\n"
    "  verify [BUNDLE]  check a bundle; without one, check the installed files for drift\n"
    "                   (apply the installed bundle again to repair drift)\n"
    "  status           installed generation, units, every certificate (kubeconfigs too) with days left;\n"
    "                   warns inside the renewal window (--renew-before-days, default 30); --metrics-file PATH\n"
    "                   also writes them for node_exporter's textfile collector (docs/certs.md)\n"
    "  rollback         go back to the previous generation\n"
    "  reset --yes      stop the units and remove every file kbundle installed (--purge: etcd data too)\n"
    "  recover          finish or undo an interrupted apply (run at boot by kbundle-recover.service)\n"
    "  bootstrap        apply the installed bundle's bootstrap objects now, unless already applied\n"
    "  health           run the installed bundle's health checks now (all of them; exit 0 when all pass)\n"
    "  etcd snapshot    snapshot etcd into the backup directory, verify it, prune old ones (control plane;\n"
    "                   --endpoint URL, default https://127.0.0.1:2379)\n"
    "flags:\n"
    "  --root DIR  --no-systemd  --dry-run  --json  --trust-key FILE  --trust-fingerprint HEX\n"
    "  --bootstrap-deadline SECONDS (how long the bootstrap objects' apply retries; default 300)\n"
    "  --renew-before-days DAYS (status: the warning window; default 30, gen's default)\n"
    "  --metrics-file PATH (status: Prometheus text file, e.g. /var/lib/node_exporter/textfile_collector/kbundle.prom)\n"
    "  --node NAME (tests only: skip the hostname/IP check; an EC2 instance binding is still checked)\n"
    "  --version  --help\n"
    "exit codes: 0 ok, 1 failure, 2 usage, 3 bundle refused (verification/trust), 4 health check (or image\n"
    "  import) failed and rolled back, 5 refused (wrong node or instance, lower serial, same serial with\n"
    "  other content), 6 applied and healthy but the bootstrap objects were not applied (nothing rolled\n"
    "  back; see status, then run bootstrap), 7 applied and healthy but an etcd member the bundle removes\n"
    "  was not removed (nothing rolled back; apply the same bundle again once etcd is healthy), 8 applied and\n"
    "  healthy but not every Secret was rewritten with the new encryption key (nothing rolled back; apply the\n"
    "  same bundle again)\n";

struct UsageError {
  std::string what;
};

}  // namespace

int run_cli(int argc, char** argv, const Hooks& hooks, std::ostream& out, std::ostream& err) {
  Options opt;
  std::vector<std::string> words;
  std::string endpoint;  // etcd snapshot only
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    for (size_t i = 0; i < args.size(); ++i) {
      std::string a = args[i], value;
      bool has_value = false;
      if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
        has_value = true;
      }
      auto take = [&]() -> std::string {
        if (has_value) return value;
        if (i + 1 >= args.size()) throw UsageError{a + " needs a value"};
        return args[++i];
      };
      if (a == "--help" || a == "-h") {
        out << kUsage;
        return 0;
      } else if (a == "--version") {
        out << "kbundle-installer " << version() << "\n";
        return 0;
      } else if (a == "--root") {
        opt.root = take();
      } else if (a == "--trust-key") {
        opt.trust_key_file = take();
      } else if (a == "--trust-fingerprint") {
        opt.trust_fingerprint = take();
      } else if (a == "--endpoint") {
        endpoint = take();
      } else if (a == "--node") {
        opt.node = take();
      } else if (a == "--bootstrap-deadline") {
        std::string v = take();
        if (v.empty() || v.size() > 6 || v.find_first_not_of("0123456789") != std::string::npos || std::stoi(v) < 1)
          throw UsageError{"--bootstrap-deadline " + v + ": want a whole number of seconds, at least 1"};
        opt.bootstrap_deadline = std::stoi(v);
      } else if (a == "--renew-before-days") {
        std::string v = take();
        if (v.empty() || v.size() > 5 || v.find_first_not_of("0123456789") != std::string::npos)
          throw UsageError{"--renew-before-days " + v + ": want a whole number of days, 0 or more"};
        opt.renew_before_days = std::stoi(v);
      } else if (a == "--metrics-file") {
        opt.metrics_file = take();
        if (opt.metrics_file.empty()) throw UsageError{"--metrics-file needs a path"};
      } else if (a == "--no-systemd" || a == "--dry-run" || a == "--json" || a == "--yes" || a == "--purge") {
        if (has_value) throw UsageError{a + " takes no value"};
        (a == "--no-systemd" ? opt.no_systemd : a == "--dry-run" ? opt.dry_run : a == "--json" ? opt.json
                                                                   : a == "--yes"  ? opt.yes
                                                                                   : opt.purge) = true;
      } else if (a.size() > 1 && a[0] == '-') {
        throw UsageError{"unknown flag " + a};
      } else {
        words.push_back(a);
      }
    }
    if (words.empty()) throw UsageError{"no command"};
    const std::string& cmd = words[0];
    size_t max_args = cmd == "apply" || cmd == "verify" || cmd == "etcd" ? 1 : 0;
    if (!endpoint.empty() && cmd != "etcd") throw UsageError{"--endpoint goes with etcd snapshot only"};
    if (words.size() - 1 > max_args) throw UsageError{cmd + ": unexpected argument " + words.back()};
    if (cmd == "apply" && words.size() != 2) throw UsageError{"apply needs a BUNDLE"};
    Io io{out, err};
    if (cmd == "apply") return static_cast<int>(apply(opt, hooks, io, words[1]));
    if (cmd == "verify")
      return static_cast<int>(verify(opt, hooks, io, words.size() == 2 ? std::optional<std::string>(words[1]) : std::nullopt));
    if (cmd == "status") return static_cast<int>(status(opt, hooks, io));
    if (cmd == "rollback") return static_cast<int>(rollback(opt, hooks, io));
    if (cmd == "reset") return static_cast<int>(reset(opt, hooks, io));
    if (cmd == "recover") return static_cast<int>(recover(opt, hooks, io));
    if (cmd == "bootstrap") return static_cast<int>(bootstrap(opt, hooks, io));
    if (cmd == "health") return static_cast<int>(health(opt, hooks, io));
    if (cmd == "etcd") {
      if (words.size() != 2 || words[1] != "snapshot") throw UsageError{"etcd: want `etcd snapshot`"};
      return static_cast<int>(etcd_snapshot(opt, hooks, io, endpoint));
    }
    throw UsageError{"unknown command " + cmd};
  } catch (const UsageError& e) {
    err << "kbundle-installer: error: " << e.what << "\n" << kUsage;
    return static_cast<int>(ExitCode::Usage);
  } catch (const std::exception& e) {
    // Before a command could run (e.g. --root names no directory): still one clear line, exit 1.
    err << "kbundle-installer: error: " << e.what() << "\n";
    if (opt.json) out << nlohmann::json{{"error", e.what()}, {"exit_code", static_cast<int>(ExitCode::Failure)}}.dump() << "\n";
    return static_cast<int>(ExitCode::Failure);
  }
}

}  // namespace kb::installer
