// apply and the recovery of an interrupted apply or rollback (G3-G9, G11, G12).
#include <algorithm>
#include <vector>
#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "bundles/bundle_error.h"
#include "bundles/bundle_reader.h"
#include "bundles/path_policy.h"
#include "base/hash.h"
#include "installer/bootstrap.h"
#include "installer/etcd_backup.h"
#include "installer/reencrypt.h"
#include "installer/etcd_members.h"
#include "installer/fault.h"
#include "installer/images.h"
#include "installer/live_fs.h"
#include "installer/run.h"
#include "installer/trust.h"

namespace kb::installer {

namespace {

// The payload into `staging`/files: every file 0600 until the switch installs it with its own
// mode and owner; directories are made by the switch, not here. Hashing and writing run on a
// second thread so that staging a large bundle costs about its decompression.
AtomicFileSink::Options staging_sink_options() {
  AtomicFileSink::Options o;
  o.file_mode = 0600;
  o.create_directory_members = false;
  o.make_parents = [](const std::string& dir) { ensure_dir(dir, 0700); };
  o.writer_thread = true;
  return o;
}

std::string serial_text(const std::optional<uint64_t>& s) { return s ? std::to_string(*s) : "none"; }

// G11: staging plus the copies made while switching fit, with room to spare.
void check_space(Run& r, const Manifest& m) {
  if (r.hooks.skip_space_check) {
    r.warn("free-space check skipped (KB_TEST_SKIP_SPACE_CHECK, tests only)");
    return;
  }
  FreeSpace f = free_space(r.layout.state());
  uint64_t need = 64 * 1024, inodes = 16;
  for (const auto& e : m.entries) {
    need += 2 * ((e.size + f.block - 1) / f.block + 1) * f.block;
    inodes += 3;
  }
  if (f.bytes < need || f.inodes < inodes)
    throw InstallerError(ExitCode::Failure, r.layout.state() + ": not enough free space: the bundle needs " + std::to_string(need) +
                                                " bytes and " + std::to_string(inodes) + " inodes, " + std::to_string(f.bytes) +
                                                " bytes and " + (f.inodes == UINT64_MAX ? "unlimited" : std::to_string(f.inodes)) +
                                                " inodes are free; nothing was changed");
}

void remove_stale(Run& r) {
  for (const auto& name : list_dir(r.layout.state()))
    if (name.rfind("staging-", 0) == 0) remove_tree(r.layout.state() + "/" + name);
}

std::vector<std::string> paths_of(const Transaction& tx) {
  std::vector<std::string> out;
  for (const auto& op : tx.ops) out.push_back(op.path);
  return out;
}

// Puts every path back as the backups say, then the services, then forgets the attempt.
void undo_switch(Run& r, Journal j, const std::vector<std::string>& old_units) {
  bool services_touched = j.phase == "services" || j.phase == "health" || !j.restarted.empty();
  j.phase = "rollback";
  r.journal(j);
  std::string dir = j.backup_dir(r.layout);
  auto restored = restore_backups(r.layout, dir, read_backups(dir), r.hooks.faults);
  r.say("restored " + std::to_string(restored.size()) + " paths of serial " + serial_text(j.old_serial));
  if (services_touched) {
    ServiceManager& sm = r.services();
    sm.daemon_reload();
    for (const auto& u : j.restarted) {
      if (std::find(old_units.begin(), old_units.end(), u) != old_units.end()) {
        sm.restart(u, true);
      } else {
        sm.stop(u);
        sm.disable(u);
      }
    }
    for (const auto& u : j.removed_units) {
      sm.enable(u);
      sm.restart(u, true);
    }
  }
  remove_journal(r.layout);
  remove_tree(r.layout.staging(j.serial));
  remove_tree(dir);
}

}  // namespace

Run::Run(const Options& o, const Hooks& h, Io i) : opt(o), hooks(h), io(i), layout(o.root) {}

void Run::say(const std::string& line) const { (opt.json ? io.err : io.out) << line << "\n"; }
void Run::warn(const std::string& line) const { io.err << "kbundle-installer: warning: " << line << "\n"; }

ServiceManager& Run::services() {
  if (!services_) services_ = hooks.make_services ? hooks.make_services(opt.no_systemd) : make_null_manager();
  return *services_;
}

void Run::journal(const Journal& j) {
  write_journal(layout, j);
  hooks.faults.reached("after-journal-" + std::to_string(journal_writes++));
}

void remove_journal(const Layout& layout) {
  if (::unlink(layout.journal().c_str()) != 0 && errno != ENOENT) throw_errno("cannot remove " + layout.journal());
  fsync_dir(layout.state());
}

std::optional<Installed> read_installed(const Layout& layout) {
  std::string path = layout.current() + "/manifest.json";
  if (inspect(path, false).kind == LiveState::Kind::Absent) return std::nullopt;
  Installed i;
  i.bytes = read_file(path);
  try {
    i.manifest = parse_manifest(i.bytes);
  } catch (const BundleError& e) {
    throw InstallerError(ExitCode::Failure, path + ": the installed manifest is damaged: " + e.what());
  }
  return i;
}

void restore_current_manifest(const Layout& layout, const std::string& dir) {
  std::string sig = dir + "/manifest.sig";
  if (::access(sig.c_str(), F_OK) == 0)
    write_file_atomic(layout.current() + "/manifest.sig", read_file(sig), 0600);
  else
    ::unlink((layout.current() + "/manifest.sig").c_str());
  write_file_atomic(layout.current() + "/manifest.json", read_file(dir + "/manifest.json"), 0600);
}

namespace {

// Makes `manifest_bytes` (and its signature) the current generation, then the staged pin record
// (the first pin, or a rollover's re-pin; "" for none) the node's pin, removes the journal and the
// staging dir, and keeps the two newest generations. The pin changes only here, in the commit
// phase, which recovery always finishes: a crash before it keeps the old key with the old
// generation, a crash after it is rolled forward to the new key with the new generation.
void commit_generation(Run& r, const std::string& manifest_bytes, const std::string& signature,
                       const std::string& pin, uint64_t serial) {
  ensure_dir(r.layout.current(), 0700);
  // The signature first: a manifest.json on the node always has its signature beside it.
  write_file_atomic(r.layout.current() + "/manifest.sig", signature, 0600);
  write_file_atomic(r.layout.current() + "/manifest.json", manifest_bytes, 0600);
  r.hooks.faults.reached("after-commit-current");
  if (!pin.empty()) r.say("pinned signing key " + commit_pin(r.layout, pin) + " in " + r.layout.trust_pin());
  r.hooks.faults.reached("after-commit-pin");
  remove_journal(r.layout);
  r.hooks.faults.reached("after-commit-journal");
  remove_tree(r.layout.staging(serial));
  // Keep the two newest generations ("none", the first apply's, counts as the oldest).
  std::vector<std::pair<long double, std::string>> gens;
  for (const auto& name : list_dir(r.layout.generations()))
    gens.emplace_back(name == "none" ? -1.0L : std::strtold(name.c_str(), nullptr), name);
  std::sort(gens.begin(), gens.end());
  for (size_t i = 0; i + 2 < gens.size(); ++i) remove_tree(r.layout.generations() + "/" + gens[i].second);
}

// What runs once the node is committed and healthy: the members its bundle removes from etcd, then
// the bootstrap objects. Either failing never rolls back; the first failure's exit code wins.
ExitCode after_commit(Run& r, const Manifest& m) {
  ExitCode removed = etcd_remove_after_commit(r, m);
  ExitCode boot = bootstrap_after_apply(r, m);
  ExitCode reencrypt = reencrypt_after_apply(r, m);  // encryption-key rotation phase 3 (docs/rotation.md)
  return removed != ExitCode::Ok ? removed : boot != ExitCode::Ok ? boot : reencrypt;
}

}  // namespace

bool recover_if_needed(Run& r) {
  auto j = read_journal(r.layout);
  if (!j) {
    if (!r.opt.dry_run) {
      remove_stale(r);
      etcd_restore_commit(r);  // a restore journal without an apply journal: that apply committed
    }
    return false;
  }
  if (r.opt.dry_run)
    throw InstallerError(ExitCode::Failure, r.layout.journal() + ": an interrupted " + j->op + " of serial " +
                                                std::to_string(j->serial) + " needs recovery first (kbundle-installer recover)");
  r.warn("found an interrupted " + j->op + " (serial " + std::to_string(j->serial) + ", phase " + j->phase + "); recovering");
  std::string dir = j->backup_dir(r.layout);
  auto installed = read_installed(r.layout);
  std::vector<std::string> old_units = installed ? installed->manifest.units : std::vector<std::string>{};
  if (j->op == "rollback") {
    // Finish the rollback: restore is idempotent, then commit the older generation.
    auto restored = restore_backups(r.layout, dir, read_backups(dir), r.hooks.faults);
    std::string bytes = read_file(dir + "/manifest.json");
    Manifest older = parse_manifest(bytes);
    ServiceManager& sm = r.services();
    sm.daemon_reload();
    for (const auto& u : units_to_restart(older.units, restored)) sm.restart(u, true);
    restore_current_manifest(r.layout, dir);
    remove_journal(r.layout);
    remove_tree(dir);
    r.say("recovered: finished the rollback to serial " + std::to_string(j->serial));
    r.report["recovered"] = "rollback-finished";
  } else if (j->phase == "backup") {
    // Nothing live was touched yet.
    remove_journal(r.layout);
    remove_tree(r.layout.staging(j->serial));
    remove_tree(dir);
    r.say("recovered: the interrupted apply of serial " + std::to_string(j->serial) + " had not changed any live file");
    r.report["recovered"] = "discarded";
  } else if (j->phase == "commit") {
    // Every file is in place and health passed: finish the commit.
    std::string staging = r.layout.staging(j->serial);
    std::string pin = staged_pin(r.layout, staging);
    etcd_restore_commit(r);
    record_created_dirs(r.layout, read_backups(dir));
    commit_generation(r, read_file(staging + "/manifest.json"), read_file(staging + "/manifest.sig"), pin, j->serial);
    r.say("recovered: finished committing serial " + std::to_string(j->serial));
    r.report["recovered"] = "committed";
  } else {
    etcd_restore_undo(r);  // the old etcd data back first, so that the rolled-back etcd starts on it
    undo_switch(r, *j, old_units);
    r.say("recovered: rolled back to serial " + serial_text(j->old_serial));
    r.report["recovered"] = "rolled-back";
  }
  return true;
}

ExitCode apply(const Options& opt, const Hooks& hooks, Io io, const std::string& bundle) {
  return guarded(opt, hooks, io, "apply", [&](Run& r) {
    const Layout& L = r.layout;
    // 0. Finish or undo an interrupted run first (G8).
    recover_if_needed(r);

    // 1. Trust (G1): the pinned key, or the one given for the first apply.
    Trust trust = resolve_trust(L, opt, bundle);

    // 2. The signed manifest, verified before a byte of it is believed.
    std::unique_ptr<BundleReader> verified = open_bundle(L, trust, bundle);
    BundleReader& reader = *verified;
    const Manifest& m = reader.manifest();
    const std::string pin = pin_to_stage(trust, reader);  // a first pin or a rollover; "" for none
    r.report["serial"] = m.serial;
    r.report["node"] = m.node_name;
    // 2b. The path policy (bundles/path_policy.h): a valid signature is not licence to write anywhere.
    check_path_policy(m, bundle);

    // 3. Binding (G5): this machine, unless a test names the node.
    if (!opt.node.empty()) {
      if (opt.node != m.node_name)
        throw InstallerError(ExitCode::Refused, bundle + ": bundle is for node " + m.node_name + ", not " + opt.node + "; refused");
      r.warn("node binding overridden by --node " + opt.node + " (tests only): hostname and address not checked");
    } else if (std::string why = machine_mismatch(m); !why.empty()) {
      throw InstallerError(ExitCode::Refused, bundle + ": " + why + "; refused");
    }
    // A bundle bound to an EC2 instance is checked even under --node: IMDS can be pointed at in tests.
    if (std::string why = instance_mismatch(m, r.hooks.imds_endpoint, [&](const std::string& w) { r.warn(w); }); !why.empty())
      throw InstallerError(ExitCode::Refused, bundle + ": " + why + "; refused");

    // 4. Serial (G4): never backwards; the same serial is a no-op only with the same manifest.
    auto installed = read_installed(L);
    bool repair = false;
    if (installed) {
      const Manifest& cur = installed->manifest;
      if (cur.cluster_id != m.cluster_id)
        throw InstallerError(ExitCode::Refused, bundle + ": bundle is for cluster " + m.cluster_id + ", this node belongs to " +
                                                    cur.cluster_id + "; refused");
      if (m.serial < cur.serial)
        throw InstallerError(ExitCode::Refused, bundle + ": serial " + std::to_string(m.serial) + " is lower than the installed " +
                                                    std::to_string(cur.serial) + "; refused");
      if (m.serial == cur.serial) {
        if (reader.manifest_bytes() != installed->bytes)
          throw InstallerError(ExitCode::Refused, bundle + ": serial " + std::to_string(m.serial) +
                                                      " is installed with other content; refused");
        std::vector<Drift> drift = find_drift(L, cur);
        if (drift.empty()) {
          // G12: still verify every byte, but write nothing and restart nothing.
          DiscardSink discard;
          reader.read_payload(discard);
          r.say("already at serial " + std::to_string(m.serial) + "; nothing to do");
          r.report["result"] = "unchanged";
          // A bootstrap or an etcd removal that failed or was cut short is finished by applying the same bundle again.
          return after_commit(r, m);
        }
        // Drift repair: the same transaction as an upgrade, from the verified bundle, touching only
        // the drifted paths and restarting only the units they belong to (G30).
        repair = true;
        for (const Drift& d : drift) r.say("drifted: " + d.path + ": " + d.text());
      }
    }
    std::optional<uint64_t> old_serial;
    if (installed) old_serial = installed->manifest.serial;

    // 5. Free space (G11), before anything is written.
    check_space(r, m);

    if (opt.dry_run) {
      BootstrapCheckSink discard;  // discards all but objects.json, checked as a real apply would
      reader.read_payload(discard);
      discard.check(m, bundle);
      Transaction tx = make_transaction(L, m, installed ? &installed->manifest : nullptr);
      for (const auto& op : tx.ops) r.say("would " + std::string(op.kind == Op::Kind::Remove ? "remove " : "write  ") + op.path);
      for (const auto& u : tx.restart) r.say("would restart " + u);
      if (!pin.empty()) r.say("would pin signing key sha256:" + reader.signer().fingerprint);
      r.say("dry run: serial " + serial_text(old_serial) + " -> " + std::to_string(m.serial) + ", " +
            std::to_string(tx.ops.size()) + " paths would change; nothing written");
      r.report["result"] = "dry-run";
      r.report["changed"] = paths_of(tx);
      r.report["restart"] = tx.restart;
      return ExitCode::Ok;
    }

    // 6. Stage (G3): the whole payload verified into staging; nothing live touched.
    std::vector<std::string> created;
    ensure_dir(L.state(), 0700, &created);
    std::string staging = L.staging(m.serial);
    Transaction tx;
    try {
      remove_tree(staging);
      ensure_dir(staging, 0700);
      write_file_atomic(staging + "/manifest.json", reader.manifest_bytes(), 0600);
      write_file_atomic(staging + "/manifest.sig", reader.signature(), 0600);
      if (!pin.empty()) write_file_atomic(staging + "/trust.json", pin, 0644);
      AtomicFileSink sink(staging + "/files", staging_sink_options());
      reader.read_payload(sink);
      // The bootstrap objects are checked now, so a hostile objects.json changes nothing (exit 3).
      check_staged_bootstrap(m, staging + "/files", bundle);
      check_staged_reencrypt(m, staging + "/files", bundle);
      check_staged_etcd_membership(m, staging + "/files", bundle);
      check_staged_etcd_restore(m, staging + "/files", bundle);  // a corrupt snapshot changes nothing
      r.hooks.faults.reached("after-stage");
      // 7. Transaction: what differs from the live files, and which units that touches.
      tx = make_transaction(L, m, installed ? &installed->manifest : nullptr);
    } catch (...) {
      // A refused bundle leaves the root exactly as it was, state directory included.
      remove_tree(staging);
      for (auto it = created.rbegin(); it != created.rend(); ++it) ::rmdir(it->c_str());
      throw;
    }
    r.say("verified " + bundle + ": node " + m.node_name + ", serial " + std::to_string(m.serial) + " (installed: " +
          serial_text(old_serial) + "), " + std::to_string(tx.ops.size()) + " paths change");

    // 8. Journal, then backups of everything the switch will touch (G8).
    Journal j;
    j.serial = m.serial;
    j.old_serial = old_serial;
    j.phase = "backup";
    j.removed_units = tx.removed_units;
    r.journal(j);
    std::string backup = L.generation(old_serial);
    remove_tree(backup);  // a leftover of an attempt that never got this far
    ensure_dir(backup, 0700);
    if (installed) {
      write_file_atomic(backup + "/manifest.json", installed->bytes, 0600);
      std::string sig = L.current() + "/manifest.sig";
      if (::access(sig.c_str(), F_OK) == 0) write_file_atomic(backup + "/manifest.sig", read_file(sig), 0600);
    }
    take_backups(L, backup, tx, r.hooks.faults);

    // 9. Switch (G7, G10): each path by temp file, fsync, rename, fsync of the directory.
    j.phase = "switch";
    std::vector<std::string> old_units = installed ? installed->manifest.units : std::vector<std::string>{};
    try {
      for (size_t i = 0; i < tx.ops.size(); ++i) {
        r.journal(j);
        run_op(L, tx.ops[i], staging);
        j.done.push_back(tx.ops[i].path);
        r.hooks.faults.reached("after-file-" + std::to_string(i));
      }
    } catch (const std::exception& e) {
      undo_switch(r, j, old_units);
      throw InstallerError(ExitCode::Failure, std::string(e.what()) + "; every file was restored to serial " + serial_text(old_serial));
    }
    r.report["changed"] = j.done;

    // 9b. etcd join (docs/etcd.md): a new member is added as a learner before its etcd starts.
    EtcdJoin join;
    if (!opt.no_systemd) {
      try {
        join = etcd_join_before_start(r, m);
      } catch (const std::exception& e) {
        undo_switch(r, j, old_units);
        throw InstallerError(ExitCode::HealthRolledBack, std::string(e.what()) + "; rolled back to serial " + serial_text(old_serial));
      }
    }
    // 9c. etcd restore (docs/backup.md): a restore bundle's snapshot replaces the data directory, once.
    try {
      etcd_restore_before_start(r, m, tx.restart);
    } catch (const std::exception& e) {
      undo_switch(r, j, old_units);
      throw InstallerError(ExitCode::HealthRolledBack, std::string(e.what()) + "; rolled back to serial " + serial_text(old_serial));
    }
    // A failed apply after the add takes the member out again, so the cluster is as it was; a
    // restore puts the old data directory back.
    auto roll_back = [&](ExitCode code, const std::string& why) {
      etcd_restore_undo(r);
      etcd_abandon_join(r, join);
      undo_switch(r, j, old_units);
      return InstallerError(code, why + "; rolled back to serial " + serial_text(old_serial));
    };

    // 10. systemd (G9): reload, enable everything, restart only what changed, in manifest order.
    ServiceManager& sm = r.services();
    j.phase = "services";
    try {
      r.journal(j);
      sm.daemon_reload();
      r.hooks.faults.reached("after-daemon-reload");
      for (const auto& u : tx.removed_units) {
        sm.stop(u);
        sm.disable(u);
      }
      for (const auto& u : m.units) sm.enable(u);
      if (has_recover_unit(m)) sm.enable(kRecoverUnit);
      for (size_t i = 0; i < tx.restart.size(); ++i) {
        j.restarted.push_back(tx.restart[i]);
        r.journal(j);
        // etcd reports ready only with quorum: waiting for the first member would deadlock.
        sm.restart(tx.restart[i], tx.restart[i] == "etcd.service");
        r.say("restarted " + tx.restart[i]);
        r.hooks.faults.reached("after-restart-" + std::to_string(i));
      }
    } catch (const std::exception& e) {
      throw roll_back(ExitCode::HealthRolledBack, std::string("service manager: ") + e.what());
    }
    r.report["restarted"] = j.restarted;

    // 11. Health checks gate the commit; a failure restores the previous generation. A joining
    // etcd member is promoted first: a learner does not answer etcd's health check.
    j.phase = "health";
    r.journal(j);
    if (std::string why = etcd_join_after_start(r, join); !why.empty()) throw roll_back(ExitCode::HealthRolledBack, why);
    if (std::string why = health_gate(r, m, opt.no_systemd); !why.empty()) throw roll_back(ExitCode::HealthRolledBack, why);
    // 11b. The bundle's images into containerd, now that it is up; a failure is a failed health check.
    if (std::string why = import_images(r, m, j.done); !why.empty())
      throw roll_back(ExitCode::HealthRolledBack, "health check images failed: " + why);

    // 12. Commit: the new manifest becomes current, the journal goes, the previous generation stays.
    j.phase = "commit";
    r.journal(j);
    r.hooks.faults.reached("before-commit");
    etcd_restore_commit(r);
    record_created_dirs(L, tx.before);
    commit_generation(r, reader.manifest_bytes(), reader.signature(), pin, m.serial);
    if (repair) {
      r.say("repaired " + std::to_string(j.done.size()) + " drifted paths of serial " + std::to_string(m.serial) + " for node " +
            m.node_name);
      r.report["result"] = "repaired";
    } else {
      r.say("applied serial " + std::to_string(m.serial) + " for node " + m.node_name);
      r.report["result"] = "applied";
    }
    // 13. etcd removals and the bootstrap objects, now that the node is committed and healthy; a
    // failure is reported (exit 7, 6) and never rolls back the control plane.
    return after_commit(r, m);
  });
}

ExitCode bootstrap(const Options& opt, const Hooks& hooks, Io io) {
  return guarded(opt, hooks, io, "bootstrap", [&](Run& r) {
    recover_if_needed(r);
    auto installed = read_installed(r.layout);
    if (!installed) throw InstallerError(ExitCode::Failure, r.layout.current() + "/manifest.json: nothing is installed");
    return bootstrap_installed(r, installed->manifest);
  });
}

ExitCode recover(const Options& opt, const Hooks& hooks, Io io) {
  return guarded(opt, hooks, io, "recover", [&](Run& r) {
    if (!recover_if_needed(r)) {
      r.say("nothing to recover");
      r.report["recovered"] = "nothing";
    }
    return ExitCode::Ok;
  });
}

}  // namespace kb::installer
