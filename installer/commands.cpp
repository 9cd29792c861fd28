// verify, status, rollback, reset, and the error mapping every command shares.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <memory>
#include <unistd.h>

#include "base/atomic_file.h"
#include "base/text_escape.h"
#include "base/time.h"
#include "bundles/bundle_error.h"
#include "bundles/bundle_reader.h"
#include "bundles/path_policy.h"
#include "installer/bootstrap.h"
#include "installer/cert_status.h"
#include "installer/reencrypt.h"
#include "installer/live_fs.h"
#include "installer/run.h"
#include "installer/transaction.h"
#include "installer/trust.h"

namespace kb::installer {

namespace {

// The node's certificates (installer/cert_status.h): listed, warned about inside the window, and
// written as a Prometheus text file when --metrics-file names one (also when nothing is installed,
// so that an old file does not linger).
void certificate_status(Run& r, const Manifest* m) {
  const int window = r.opt.renew_before_days;
  NodeCerts certs;
  if (m) certs = node_certificates(r.layout, *m, r.hooks.now(), window);
  nlohmann::json list = nlohmann::json::array();
  for (const NodeCert& c : certs.certs) {
    const CertInfo& i = c.info;
    std::string line = "  cert " + escape_text(i.source) + ": " + escape_text(i.subject) + ", expires " +
                       rfc3339_utc(i.not_after) + " (" + std::to_string(c.days_left) + " days)";
    if (c.status == "renew") line += " INSIDE the renewal window";
    if (c.status == "expired") line += " EXPIRED";
    r.say(line);
    if (c.status != "ok")
      r.warn("certificate " + escape_text(i.source) + " (" + escape_text(i.subject) + ") " +
             (c.status == "expired" ? "expired " + std::to_string(-c.days_left) + " days ago"
                                    : "expires in " + std::to_string(c.days_left) + " days") +
             ", inside the renewal window of " + std::to_string(window) +
             " days: run kbundle gen on the workstation and apply the new bundle here");
    // SANs are a certificate's raw bytes: made printable UTF-8 so that the JSON can always be written.
    std::vector<std::string> dns, ips;
    for (const auto& d : i.dns_names) dns.push_back(escape_text(d));
    for (const auto& a : i.ip_addresses) ips.push_back(escape_text(a));
    list.push_back({{"path", i.path},         {"source", i.source},   {"subject", i.subject},
                    {"issuer", i.issuer},     {"serial", i.serial_hex}, {"sha256", i.sha256_fingerprint},
                    {"dns_names", dns}, {"ip_addresses", ips}, {"is_ca", i.is_ca},
                    {"not_before", rfc3339_utc(i.not_before)}, {"not_after", rfc3339_utc(i.not_after)},
                    {"days_left", c.days_left}, {"status", c.status}});
  }
  for (const auto& p : certs.problems) r.warn("certificate file " + p);
  r.report["certificates"] = list;
  r.report["certificate_problems"] = certs.problems;
  r.report["renew_before_days"] = window;
  if (!r.opt.metrics_file.empty()) {
    write_file_atomic(r.opt.metrics_file, prometheus_text(certs, m ? m->node_name : "", window), 0644);
    r.report["metrics_file"] = r.opt.metrics_file;
  }
}

Installed need_installed(Run& r) {
  auto i = read_installed(r.layout);
  if (!i) throw InstallerError(ExitCode::Failure, r.layout.current() + "/manifest.json: nothing is installed");
  return *i;
}

ExitCode drift_check(Run& r) {
  Installed inst = need_installed(r);
  nlohmann::json drift = nlohmann::json::array();
  for (const Drift& d : find_drift(r.layout, inst.manifest)) {
    r.say("changed: " + d.path + ": " + d.text());
    drift.push_back({{"path", d.path}, {"why", d.why}});
  }
  r.report["serial"] = inst.manifest.serial;
  r.report["drift"] = drift;
  r.say(drift.empty() ? "all " + std::to_string(inst.manifest.entries.size()) + " installed paths match serial " +
                            std::to_string(inst.manifest.serial)
                      : std::to_string(drift.size()) + " of " + std::to_string(inst.manifest.entries.size()) +
                            " installed paths differ from serial " + std::to_string(inst.manifest.serial));
  return drift.empty() ? ExitCode::Ok : ExitCode::Failure;
}

}  // namespace

ExitCode guarded(const Options& opt, const Hooks& hooks, Io io, const char* command,
                 const std::function<ExitCode(Run&)>& body) {
  Run r(opt, hooks, io);
  r.report["command"] = command;
  ExitCode code = ExitCode::Failure;
  std::string error;
  try {
    code = body(r);
  } catch (const InstallerError& e) {
    code = e.code();
    error = e.what();
  } catch (const BundleError& e) {
    code = ExitCode::BadBundle;
    error = std::string(e.what()) + " (" + to_string(e.code()) + "); refused";
    r.report["refusal"] = to_string(e.code());
  } catch (const std::exception& e) {
    code = ExitCode::Failure;
    error = e.what();
  }
  if (!error.empty()) {
    io.err << "kbundle-installer: error: " << error << "\n";
    r.report["error"] = error;
  }
  r.report["exit_code"] = static_cast<int>(code);
  if (opt.json) io.out << r.report.dump() << "\n";
  return code;
}

ExitCode verify(const Options& opt, const Hooks& hooks, Io io, const std::optional<std::string>& bundle) {
  return guarded(opt, hooks, io, "verify", [&](Run& r) {
    if (!bundle) {
      recover_if_needed(r);
      return drift_check(r);
    }
    Trust trust = resolve_trust(r.layout, opt, *bundle);
    std::unique_ptr<BundleReader> reader = open_bundle(r.layout, trust, *bundle);
    BootstrapCheckSink discard;  // discards all but objects.json
    reader->read_payload(discard);
    const Manifest& m = reader->manifest();
    check_path_policy(m, *bundle);
    discard.check(m, *bundle);
    check_bundle_reencrypt(m, discard.reencrypt_request(), *bundle);
    r.report["serial"] = m.serial;
    r.report["node"] = m.node_name;
    r.report["entries"] = m.entries.size();
    r.say(*bundle + ": good: node " + m.node_name + ", serial " + std::to_string(m.serial) + ", " +
          std::to_string(m.entries.size()) + " entries, signed by sha256:" + reader->signer().fingerprint +
          (reader->signer().steps ? " (through " + std::to_string(reader->signer().steps) + " rollover statements from sha256:" +
                                        trust.fingerprint + ")"
                                  : std::string()));
    return ExitCode::Ok;
  });
}

ExitCode status(const Options& opt, const Hooks& hooks, Io io) {
  return guarded(opt, hooks, io, "status", [&](Run& r) {
    if (auto j = read_journal(r.layout)) {
      r.report["interrupted"] = j->op + " of serial " + std::to_string(j->serial);
      r.say("interrupted " + j->op + " of serial " + std::to_string(j->serial) + " (phase " + j->phase +
            "): run kbundle-installer recover");
    }
    if (std::optional<Trust> pin = read_pin(r.layout)) {
      r.report["pinned_key"] = pin->fingerprint;
      r.report["rollover_serial"] = *pin->rollover_serial;
      r.say("pinned signing key sha256:" + pin->fingerprint + ", rollover serial " + std::to_string(*pin->rollover_serial));
    } else {
      r.report["pinned_key"] = nullptr;
      r.say("no pinned signing key");
    }
    auto inst = read_installed(r.layout);
    if (!inst) {
      r.say("nothing installed");
      r.report["installed"] = false;
      certificate_status(r, nullptr);
      return ExitCode::Ok;
    }
    const Manifest& m = inst->manifest;
    r.report["installed"] = true;
    r.report["serial"] = m.serial;
    r.report["node"] = m.node_name;
    r.report["cluster"] = m.cluster_name;
    r.report["cluster_id"] = m.cluster_id;
    r.report["created_at"] = m.created_at;
    r.report["kubernetes_version"] = m.kubernetes_version;
    r.say("node " + m.node_name + " (" + m.role + ") of cluster " + m.cluster_name + ": serial " + std::to_string(m.serial) +
          ", made " + m.created_at + ", Kubernetes " + m.kubernetes_version);
    std::vector<std::string> gens;
    for (const auto& g : list_dir(r.layout.generations())) gens.push_back(g);
    std::sort(gens.begin(), gens.end());
    r.report["previous_generations"] = gens;
    // Drift (read-only here): apply the installed bundle again to repair it.
    nlohmann::json drift = nlohmann::json::array();
    for (const Drift& d : find_drift(r.layout, m)) drift.push_back({{"path", d.path}, {"why", d.why}});
    r.report["drift"] = drift;
    if (!drift.empty())
      r.say("drift: " + std::to_string(drift.size()) + " of " + std::to_string(m.entries.size()) + " installed paths differ from serial " +
            std::to_string(m.serial) + " (kbundle-installer verify lists them; apply the same bundle again to repair them)");
    ServiceManager& sm = r.services();
    nlohmann::json units = nlohmann::json::object();
    for (const auto& u : m.units) {
      std::string state = sm.active_state(u);
      units[u] = state;
      r.say("  unit " + u + ": " + state);
    }
    r.report["units"] = units;
    certificate_status(r, &m);
    bootstrap_status(r, m);
    reencrypt_status(r, m);
    return ExitCode::Ok;
  });
}

std::string health_gate(Run& r, const Manifest& m, bool no_systemd, nlohmann::json* results) {
  if (no_systemd) {
    r.say("health checks skipped (--no-systemd)");
    return "";
  }
  std::string first_failure;
  for (const auto& check : m.health_checks) {
    HealthResult res = r.hooks.health ? r.hooks.health(check, r.opt.root, r.services()) : HealthResult{false, "no health checker"};
    std::string name = check.is_object() ? check.value("name", check.value("target", std::string("?"))) : "?";
    r.say("health " + name + ": " + (res.ok ? "ok" : "FAILED") + " (" + res.detail + ")");
    if (results)
      results->push_back({{"name", name}, {"kind", check.is_object() ? check.value("kind", "") : ""}, {"ok", res.ok},
                          {"detail", res.detail}});
    if (!res.ok && first_failure.empty()) first_failure = "health check " + name + " failed: " + res.detail;
    if (!first_failure.empty() && !results) break;
  }
  return first_failure;
}

ExitCode health(const Options& opt, const Hooks& hooks, Io io) {
  return guarded(opt, hooks, io, "health", [&](Run& r) {
    // Read-only: an interrupted apply is reported, not recovered (recover, or apply, finishes it).
    if (auto j = read_journal(r.layout))
      throw InstallerError(ExitCode::Failure, "an interrupted " + j->op + " of serial " + std::to_string(j->serial) +
                                                  " is pending (run kbundle-installer recover); health not checked");
    Installed inst = need_installed(r);
    const Manifest& m = inst.manifest;
    r.report["serial"] = m.serial;
    r.report["node"] = m.node_name;
    // As apply's gate: --no-systemd (a scratch root) has no services to ask, and says so.
    r.report["skipped"] = opt.no_systemd;
    nlohmann::json checks = nlohmann::json::array();
    std::string why = health_gate(r, m, opt.no_systemd, &checks);
    r.report["checks"] = checks;
    if (opt.no_systemd) return ExitCode::Ok;
    r.report["healthy"] = why.empty();
    if (!why.empty()) throw InstallerError(ExitCode::Failure, "node " + m.node_name + ", serial " + std::to_string(m.serial) + ": " + why);
    r.say("node " + m.node_name + ", serial " + std::to_string(m.serial) + ": all " + std::to_string(checks.size()) +
          " health checks pass");
    return ExitCode::Ok;
  });
}

ExitCode rollback(const Options& opt, const Hooks& hooks, Io io) {
  return guarded(opt, hooks, io, "rollback", [&](Run& r) {
    recover_if_needed(r);
    Installed inst = need_installed(r);
    // The previous generation: the newest backup older than what is installed.
    std::optional<uint64_t> prev;
    bool initial = false;
    for (const auto& g : list_dir(r.layout.generations())) {
      if (g == "none") {
        initial = true;
        continue;
      }
      uint64_t s = std::stoull(g);
      if (s < inst.manifest.serial && (!prev || s > *prev)) prev = s;
    }
    if (!prev)
      throw InstallerError(ExitCode::Failure, std::string("no previous generation to roll back to") +
                                                  (initial ? " (serial " + std::to_string(inst.manifest.serial) +
                                                                 " was the first; use reset to remove it)"
                                                           : ""));
    std::string dir = r.layout.generation(prev);
    std::string bytes = read_file(dir + "/manifest.json");
    Manifest older = parse_manifest(bytes);
    auto records = read_backups(dir);
    r.report["serial"] = *prev;
    if (opt.dry_run) {
      for (const auto& rec : records) r.say("would restore " + rec.path);
      r.say("dry run: serial " + std::to_string(inst.manifest.serial) + " -> " + std::to_string(*prev) + "; nothing written");
      return ExitCode::Ok;
    }
    Journal j;
    j.op = "rollback";
    j.serial = *prev;
    j.old_serial = inst.manifest.serial;
    j.phase = "rollback";
    r.journal(j);
    auto restored = restore_backups(r.layout, dir, records, r.hooks.faults);
    record_created_dirs(r.layout, {});  // forgets the directories the restore removed
    ServiceManager& sm = r.services();
    sm.daemon_reload();
    for (const auto& u : inst.manifest.units)
      if (std::find(older.units.begin(), older.units.end(), u) == older.units.end()) {
        sm.stop(u);
        sm.disable(u);
      }
    for (const auto& u : older.units) sm.enable(u);
    if (has_recover_unit(older)) sm.enable(kRecoverUnit);
    for (const auto& u : units_to_restart(older.units, restored)) {
      sm.restart(u, u == "etcd.service");
      r.say("restarted " + u);
    }
    restore_current_manifest(r.layout, dir);
    remove_journal(r.layout);
    remove_tree(dir);
    r.say("rolled back from serial " + std::to_string(inst.manifest.serial) + " to " + std::to_string(*prev) + " (" +
          std::to_string(restored.size()) + " paths restored)");
    r.report["restored"] = restored;
    // The restored generation answers its own health checks, or the user hears it now.
    if (std::string why = health_gate(r, older, opt.no_systemd); !why.empty())
      throw InstallerError(ExitCode::Failure, "rolled back to serial " + std::to_string(*prev) + ", but " + why +
                                                  "; the node runs serial " + std::to_string(*prev) + " (see `status`)");
    return ExitCode::Ok;
  });
}

ExitCode reset(const Options& opt, const Hooks& hooks, Io io) {
  return guarded(opt, hooks, io, "reset", [&](Run& r) {
    if (!opt.yes && !opt.dry_run)
      throw InstallerError(ExitCode::Usage, "reset stops every kbundle unit and removes every file kbundle installed; pass --yes");
    recover_if_needed(r);
    auto inst = read_installed(r.layout);
    // Only directories the installer created are removed; any other stays exactly as it was.
    const auto created = read_created_dirs(r.layout);
    std::string verb = opt.dry_run ? "would remove " : "removed ";
    std::vector<std::string> removed, kept, left;
    auto remove_dir = [&](const std::string& path) {
      std::string live = r.layout.live(path);
      if (!opt.dry_run) {
        if (::rmdir(live.c_str()) != 0) {
          if (errno != ENOTEMPTY && errno != EEXIST) throw_errno("cannot remove " + live);
          kept.push_back(path);
          return;
        }
        fsync_dir(parent_dir(live));
      }
      removed.push_back(path);
      r.say(verb + path);
    };
    if (inst) {
      const Manifest& m = inst->manifest;
      if (!opt.dry_run) {
        ServiceManager& sm = r.services();
        for (auto it = m.units.rbegin(); it != m.units.rend(); ++it) {
          sm.stop(*it);
          sm.disable(*it);
        }
      }
      // Files first, then directories deepest first; etcd's data only with --purge.
      for (auto it = m.entries.rbegin(); it != m.entries.rend(); ++it) {
        std::string live = r.layout.live(it->path);
        LiveState s = inspect(live, false);
        if (s.kind == LiveState::Kind::Absent) continue;
        bool etcd_data = it->path == "/var/lib/etcd";
        if (etcd_data && !opt.purge) {
          kept.push_back(it->path);
          continue;
        }
        if (s.kind == LiveState::Kind::Dir && !etcd_data) {
          if (created.count(it->path)) remove_dir(it->path);
          else left.push_back(it->path);
          continue;
        }
        if (!opt.dry_run) {
          if (etcd_data) {
            remove_tree(live);
          } else if (::unlink(live.c_str()) != 0) {
            throw_errno("cannot remove " + live);
          }
          fsync_dir(parent_dir(live));
        }
        removed.push_back(it->path);
        r.say(verb + it->path);
      }
      if (!opt.dry_run) r.services().daemon_reload();
    }
    // Then the parents it created (e.g. /etc/kubernetes, /opt/cni/bin), deepest first.
    for (auto it = created.rbegin(); it != created.rend(); ++it) {
      bool entry = inst && std::any_of(inst->manifest.entries.begin(), inst->manifest.entries.end(),
                                       [&](const ManifestEntry& e) { return e.path == *it; });
      if (!entry && !path_is_under(*it, "/var/lib/kbundle") && inspect(r.layout.live(*it), false).kind == LiveState::Kind::Dir)
        remove_dir(*it);
    }
    for (const auto& k : kept) r.say("kept " + k + (k == "/var/lib/etcd" ? " (etcd data; --purge removes it)" : " (not empty)"));
    for (const auto& k : left) r.say("left " + k + " as it was (kbundle-installer did not create it)");
    if (!opt.dry_run) {
      remove_tree(r.layout.state());
      if (::unlink(r.layout.trust_pin().c_str()) == 0) fsync_dir(parent_dir(r.layout.trust_pin()));
      if (::unlink(r.layout.trust_key().c_str()) == 0) fsync_dir(parent_dir(r.layout.trust_key()));
      ::rmdir(parent_dir(r.layout.trust_key()).c_str());
    }
    r.say(verb + r.layout.state() + " and the pinned key");
    r.report["removed"] = removed;
    r.report["kept"] = kept;
    r.report["left"] = left;
    return ExitCode::Ok;
  });
}

}  // namespace kb::installer
