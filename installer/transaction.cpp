#include "installer/transaction.h"

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <fcntl.h>
#include <map>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/file_io.h"
#include "bundles/path_policy.h"
#include "installer/fault.h"

namespace kb::installer {

namespace {

LiveState::Kind kind_from(const std::string& s) {
  for (auto k : {LiveState::Kind::Absent, LiveState::Kind::File, LiveState::Kind::Dir, LiveState::Kind::Symlink,
                 LiveState::Kind::Other})
    if (s == to_string(k)) return k;
  throw Error("backup record: unknown kind \"" + s + "\"");
}

BackupRecord record_of(const std::string& path, const LiveState& s) {
  return BackupRecord{path, s.kind, s.mode, s.uid, s.gid, s.sha256};
}

bool matches(const BackupRecord& r, const LiveState& s) {
  if (r.kind != s.kind) return false;
  if (r.kind == LiveState::Kind::Absent) return true;
  if (r.kind == LiveState::Kind::Symlink) return r.sha256 == s.sha256;
  return r.mode == s.mode && r.uid == s.uid && r.gid == s.gid && (r.kind != LiveState::Kind::File || r.sha256 == s.sha256);
}

}  // namespace

bool has_recover_unit(const Manifest& m) {
  const std::string path = std::string("/etc/systemd/system/") + kRecoverUnit;
  return std::any_of(m.entries.begin(), m.entries.end(), [&](const ManifestEntry& e) { return e.path == path; });
}

std::set<std::string> read_created_dirs(const Layout& layout) {
  if (inspect(layout.created_dirs(), false).kind == LiveState::Kind::Absent) return {};
  try {
    return nlohmann::json::parse(read_file(layout.created_dirs())).get<std::set<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(layout.created_dirs() + ": unreadable (" + e.what() + "); not guessing which directories kbundle made, fix by hand");
  }
}

void record_created_dirs(const Layout& layout, const std::vector<BackupRecord>& records) {
  std::set<std::string> created = read_created_dirs(layout);
  for (const auto& r : records)
    if (r.kind == LiveState::Kind::Absent) created.insert(r.path);
  std::erase_if(created, [&](const std::string& p) { return inspect(layout.live(p), false).kind != LiveState::Kind::Dir; });
  write_file_atomic(layout.created_dirs(), nlohmann::json(created).dump(), 0600);
}

Transaction make_transaction(const Layout& layout, const Manifest& next, const Manifest* installed) {
  Accounts accounts(layout.root);
  // A directory the installer did not create is never chmod'ed or chown'ed (README: existing
  // system directories are never changed); the path policy keeps system directories out anyway.
  const std::set<std::string> created = read_created_dirs(layout);
  Transaction tx;
  std::set<std::string> listed, parents_added;
  for (const auto& e : next.entries) listed.insert(e.path);

  auto add = [&](Op op, const LiveState& before) {
    tx.before.push_back(record_of(op.path, before));
    tx.ops.push_back(std::move(op));
  };
  for (const auto& e : next.entries) {
    // Parents: existing ones must be real directories (a symlink could lead out of the root).
    for (size_t slash = e.path.find('/', 1); slash != std::string::npos; slash = e.path.find('/', slash + 1)) {
      std::string anc = e.path.substr(0, slash);
      if (listed.count(anc) || parents_added.count(anc)) continue;
      LiveState s = inspect(layout.live(anc), false);
      if (s.kind == LiveState::Kind::Absent) {
        parents_added.insert(anc);
        add(Op{Op::Kind::Parent, anc, 0755, 0, 0}, s);
      } else if (s.kind != LiveState::Kind::Dir) {
        throw Error(layout.live(anc) + ": is a " + to_string(s.kind) + ", not a directory (parent of " + e.path + ")");
      }
    }
    uid_t uid = accounts.uid(e.owner);
    gid_t gid = accounts.gid(e.group);
    bool dir = e.type == EntryType::Directory;
    LiveState s = inspect(layout.live(e.path), !dir);
    Op op{dir ? Op::Kind::Dir : Op::Kind::File, e.path, e.mode, uid, gid};
    if (dir) {
      if (s.kind != LiveState::Kind::Absent && s.kind != LiveState::Kind::Dir)
        throw Error(layout.live(e.path) + ": is a " + to_string(s.kind) + " where the bundle has a directory");
      if (s.kind == LiveState::Kind::Dir && (!created.count(e.path) || (s.mode == e.mode && s.uid == uid && s.gid == gid)))
        continue;
    } else {
      if (s.kind == LiveState::Kind::Dir || s.kind == LiveState::Kind::Other)
        throw Error(layout.live(e.path) + ": is a " + to_string(s.kind) + " where the bundle has a file");
      if (s.kind == LiveState::Kind::File && s.sha256 == e.sha256 && s.mode == e.mode && s.uid == uid && s.gid == gid)
        continue;
    }
    add(op, s);
  }
  if (installed) {
    // Dropped paths go last, deepest first, so that a directory is empty when its turn comes.
    for (auto it = installed->entries.rbegin(); it != installed->entries.rend(); ++it) {
      if (listed.count(it->path)) continue;
      LiveState s = inspect(layout.live(it->path), true);
      if (s.kind == LiveState::Kind::Absent) continue;
      if (s.kind == LiveState::Kind::Other) throw Error(layout.live(it->path) + ": is a " + to_string(s.kind));
      add(Op{Op::Kind::Remove, it->path, 0, 0, 0}, s);
    }
  }
  std::vector<std::string> changed;
  for (const auto& op : tx.ops) changed.push_back(op.path);
  tx.restart = units_to_restart(next.units, changed);
  if (installed) {
    // A unit new in this generation is started even if none of its paths changed.
    for (const auto& u : next.units)
      if (std::find(installed->units.begin(), installed->units.end(), u) == installed->units.end() &&
          std::find(tx.restart.begin(), tx.restart.end(), u) == tx.restart.end())
        tx.restart.push_back(u);
    std::vector<std::string> ordered;
    for (const auto& u : next.units)
      if (std::find(tx.restart.begin(), tx.restart.end(), u) != tx.restart.end()) ordered.push_back(u);
    tx.restart = ordered;
    for (const auto& u : installed->units)
      if (std::find(next.units.begin(), next.units.end(), u) == next.units.end()) tx.removed_units.push_back(u);
  }
  return tx;
}

nlohmann::json to_json(const BackupRecord& r) {
  return {{"path", r.path}, {"kind", to_string(r.kind)}, {"mode", r.mode}, {"uid", r.uid}, {"gid", r.gid}, {"sha256", r.sha256}};
}

BackupRecord backup_from_json(const nlohmann::json& j) {
  return BackupRecord{j.at("path").get<std::string>(), kind_from(j.at("kind").get<std::string>()), j.at("mode").get<unsigned>(),
                      j.at("uid").get<uid_t>(), j.at("gid").get<gid_t>(), j.at("sha256").get<std::string>()};
}

void write_journal(const Layout& layout, const Journal& j) {
  nlohmann::json o = {{"op", j.op},           {"serial", j.serial},       {"phase", j.phase},
                      {"done", j.done},       {"restarted", j.restarted}, {"removed_units", j.removed_units}};
  o["old_serial"] = j.old_serial ? nlohmann::json(*j.old_serial) : nlohmann::json(nullptr);
  write_file_atomic(layout.journal(), o.dump(), 0600);
}

std::optional<Journal> read_journal(const Layout& layout) {
  struct stat st;
  if (::lstat(layout.journal().c_str(), &st) != 0) return std::nullopt;
  try {
    auto o = nlohmann::json::parse(read_file(layout.journal()));
    Journal j;
    j.op = o.at("op").get<std::string>();
    j.serial = o.at("serial").get<uint64_t>();
    if (!o.at("old_serial").is_null()) j.old_serial = o.at("old_serial").get<uint64_t>();
    j.phase = o.at("phase").get<std::string>();
    j.done = o.at("done").get<std::vector<std::string>>();
    j.restarted = o.at("restarted").get<std::vector<std::string>>();
    j.removed_units = o.at("removed_units").get<std::vector<std::string>>();
    if (j.op != "apply" && j.op != "rollback") throw Error("unknown op " + j.op);
    return j;
  } catch (const std::exception& e) {
    throw Error(layout.journal() + ": unreadable journal (" + e.what() + "); not guessing, fix by hand");
  }
}

void take_backups(const Layout& layout, const std::string& dir, const Transaction& tx, const FaultPoints& faults) {
  ensure_dir(dir + "/files", 0700);
  nlohmann::json records = nlohmann::json::array();
  std::set<std::string> dirs;
  for (size_t i = 0; i < tx.before.size(); ++i) {
    const BackupRecord& r = tx.before[i];
    records.push_back(to_json(r));
    if (r.kind != LiveState::Kind::File && r.kind != LiveState::Kind::Symlink) continue;
    std::string live = layout.live(r.path), copy = dir + "/files" + r.path;
    ensure_dir(parent_dir(copy), 0700);
    if (::unlink(copy.c_str()) != 0 && errno != ENOENT) throw_errno("cannot remove stale backup " + copy);
    // A hard link costs no space and keeps mode, owner and content exactly: the switch
    // replaces the live name by rename, so the old inode lives on under the backup name.
    if (::linkat(AT_FDCWD, live.c_str(), AT_FDCWD, copy.c_str(), 0) != 0) {
      if (errno != EXDEV && errno != EPERM) throw_errno("cannot back up " + live + " to " + copy);
      if (r.kind == LiveState::Kind::File) {
        install_file(live, copy, r.mode, r.uid, r.gid);
      } else if (::symlink(r.sha256.c_str(), copy.c_str()) != 0) {
        throw_errno("cannot back up " + live + " to " + copy);
      }
    }
    dirs.insert(parent_dir(copy));
    faults.reached("after-backup-" + std::to_string(i));
  }
  for (const auto& d : dirs) fsync_dir(d);
  write_file_atomic(dir + "/backup.json", records.dump(), 0600);
}

std::vector<BackupRecord> read_backups(const std::string& dir) {
  std::vector<BackupRecord> out;
  try {
    for (const auto& j : nlohmann::json::parse(read_file(dir + "/backup.json"))) out.push_back(backup_from_json(j));
  } catch (const nlohmann::json::exception& e) {
    throw Error(dir + "/backup.json: unreadable (" + e.what() + ")");
  }
  return out;
}

// Moves `live` (a directory) to <state>/discarded/<seconds>-<path with '/' as '_'>[.N]; throws when it cannot.
void discard_dir(const Layout& layout, const std::string& live) {
  const std::string into = layout.discarded();
  make_dirs(into, 0700);
  std::string rel = live.substr(layout.live("/").size() - 1);
  std::replace(rel.begin(), rel.end(), '/', '_');
  const std::string base = into + "/" + std::to_string(std::time(nullptr)) + "-" + rel.substr(1);
  std::string to = base;
  for (int n = 1; inspect(to, false).kind != LiveState::Kind::Absent; ++n) to = base + "." + std::to_string(n);
  if (::rename(live.c_str(), to.c_str()) != 0)
    throw_errno("cannot remove " + live + " (it did not exist before, and what services wrote into it cannot be moved to " + to + ")");
  fsync_dir(into);
}

std::vector<std::string> restore_backups(const Layout& layout, const std::string& dir,
                                         const std::vector<BackupRecord>& records, const FaultPoints& faults) {
  std::vector<std::string> changed;
  size_t step = 0;
  auto done = [&](const std::string& path) {
    changed.push_back(path);
    faults.reached("after-restore-" + std::to_string(step++));
  };
  // 1. Directories that existed: back, with their mode and owner.
  for (const auto& r : records) {
    if (r.kind != LiveState::Kind::Dir) continue;
    std::string live = layout.live(r.path);
    LiveState s = inspect(live, false);
    if (matches(r, s)) continue;
    if (s.kind == LiveState::Kind::Absent) make_dir(live, r.mode, r.uid, r.gid);
    else if (s.kind == LiveState::Kind::Dir) set_dir_mode_owner(live, r.mode, r.uid, r.gid);
    else throw Error(live + ": is a " + std::string(to_string(s.kind)) + ", cannot restore the directory");
    done(r.path);
  }
  // 2. Files and symlinks that existed: their backup renamed back over whatever is there.
  for (const auto& r : records) {
    if (r.kind != LiveState::Kind::File && r.kind != LiveState::Kind::Symlink) continue;
    std::string live = layout.live(r.path), copy = dir + "/files" + r.path;
    if (matches(r, inspect(live, true))) continue;
    if (inspect(copy, false).kind == LiveState::Kind::Absent) throw Error(copy + ": backup missing, cannot restore " + live);
    if (::rename(copy.c_str(), live.c_str()) != 0) {
      if (errno != EXDEV || r.kind != LiveState::Kind::File) throw_errno("cannot restore " + live + " from " + copy);
      install_file(copy, live, r.mode, r.uid, r.gid);
      ::unlink(copy.c_str());
    }
    fsync_dir(parent_dir(live));
    done(r.path);
  }
  // 3. What did not exist: removed, deepest first.
  for (auto it = records.rbegin(); it != records.rend(); ++it) {
    if (it->kind != LiveState::Kind::Absent) continue;
    std::string live = layout.live(it->path);
    LiveState s = inspect(live, false);
    if (s.kind == LiveState::Kind::Absent) continue;
    int rc = s.kind == LiveState::Kind::Dir ? ::rmdir(live.c_str()) : ::unlink(live.c_str());
    if (rc != 0 && s.kind == LiveState::Kind::Dir && (errno == ENOTEMPTY || errno == EEXIST)) {
      // A service of the new generation wrote into a directory that generation made (etcd's first
      // start fills /var/lib/etcd): that data is not ours to delete, and must not greet the next
      // start either, so it is set aside whole under the installer's state.
      discard_dir(layout, live);
      rc = 0;
    }
    if (rc != 0) throw_errno("cannot remove " + live + " (it did not exist before)");
    fsync_dir(parent_dir(live));
    done(it->path);
  }
  return changed;
}

void run_op(const Layout& layout, const Op& op, const std::string& staging) {
  std::string live = layout.live(op.path);
  switch (op.kind) {
    case Op::Kind::Parent:
    case Op::Kind::Dir: {
      LiveState s = inspect(live, false);
      if (s.kind == LiveState::Kind::Absent) make_dir(live, op.mode, op.uid, op.gid);
      else if (op.kind == Op::Kind::Dir) set_dir_mode_owner(live, op.mode, op.uid, op.gid);
      return;
    }
    case Op::Kind::File: {
      // The staged file is already verified and fsynced: give it its owner and mode and rename it
      // into place, so a 1 GiB binary is not written twice. Another file system: copy it.
      std::string staged = staging + "/files" + op.path;
      int fd = ::open(staged.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) throw_errno("cannot open " + staged);
      bool ok = ::fchown(fd, op.uid, op.gid) == 0 && ::fchmod(fd, op.mode) == 0 && ::fsync(fd) == 0;
      int saved = errno;
      ::close(fd);
      errno = saved;
      if (!ok) throw_errno("cannot set mode and owner of " + staged);
      if (::rename(staged.c_str(), live.c_str()) == 0) {
        fsync_dir(parent_dir(live));
        return;
      }
      if (errno != EXDEV) throw_errno("cannot rename " + staged + " to " + live);
      install_file(staged, live, op.mode, op.uid, op.gid);
      return;
    }
    case Op::Kind::Remove: {
      LiveState s = inspect(live, false);
      if (s.kind == LiveState::Kind::Absent) return;
      int rc = s.kind == LiveState::Kind::Dir ? ::rmdir(live.c_str()) : ::unlink(live.c_str());
      if (rc != 0) throw_errno("cannot remove " + live);
      fsync_dir(parent_dir(live));
      return;
    }
  }
}

std::string Drift::text() const {
  std::string line;
  for (const auto& w : why) line += (line.empty() ? "" : ", ") + w;
  return line;
}

std::vector<Drift> find_drift(const Layout& layout, const Manifest& installed) {
  Accounts accounts(layout.root);
  const auto created = read_created_dirs(layout);
  std::vector<Drift> out;
  for (const auto& e : installed.entries) {
    bool dir = e.type == EntryType::Directory;
    bool own_mode = !dir || created.count(e.path);
    LiveState s = inspect(layout.live(e.path), !dir);
    Drift d{e.path, {}};
    if (s.kind == LiveState::Kind::Absent) {
      d.why.push_back("missing");
    } else if (s.kind != (dir ? LiveState::Kind::Dir : LiveState::Kind::File)) {
      d.why.push_back(std::string("is a ") + to_string(s.kind));
    } else {
      if (!dir && s.sha256 != e.sha256) d.why.push_back("content");
      if (own_mode && s.mode != e.mode) d.why.push_back("mode " + mode_string(s.mode) + " (want " + mode_string(e.mode) + ")");
      if (own_mode && (s.uid != accounts.uid(e.owner) || s.gid != accounts.gid(e.group)))
        d.why.push_back("owner " + std::to_string(s.uid) + ":" + std::to_string(s.gid) + " (want " + e.owner + ":" + e.group + ")");
    }
    if (!d.why.empty()) out.push_back(std::move(d));
  }
  return out;
}

}  // namespace kb::installer
