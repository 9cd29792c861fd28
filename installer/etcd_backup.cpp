#include "installer/etcd_backup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <set>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/etcd_backup.h"
#include "base/file_io.h"
#include "base/hash.h"
#include "base/text_escape.h"
#include "base/unique_fd.h"
#include "bundles/path_policy.h"
#include "installer/checked_json.h"
#include "installer/live_fs.h"
#include "installer/process.h"

namespace kb::installer {

namespace {

using json = nlohmann::json;
using std::chrono::minutes;

constexpr size_t kMaxSpecFile = 64 * 1024;
constexpr const char* kEtcdUnit = "etcd.service";
constexpr const char* kTempPrefix = ".etcd-snapshot-";  // our temp files in the backup dir: .etcd-snapshot-<pid>.tmp[.part]
constexpr const char* kDefaultEndpoint = "https://127.0.0.1:2379";  // etcd.service listens there (templates/)

using checked::only_keys;
using checked::refuse;

json parse_object(const std::string& bytes, const std::string& where) {
  if (bytes.size() > kMaxSpecFile) refuse(where, "the file", "larger than " + std::to_string(kMaxSpecFile) + " bytes");
  json j = json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object()) refuse(where, "the top level", "not a JSON object");
  if (!j.contains("version") || j["version"] != 1) refuse(where, "version", "must be 1 (this installer reads version 1)");
  return j;
}

int int_in(const json& j, const char* key, int lo, int hi, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() < lo || it->get<int64_t>() > hi)
    refuse(where, key, "missing or not a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
  return static_cast<int>(it->get<int64_t>());
}

std::string str(const json& j, const char* key, const std::string& where) { return checked::str(j, key, where, ""); }

bool charset(const std::string& s, size_t max, const char* extra) {
  return !s.empty() && s.size() <= max && std::all_of(s.begin(), s.end(), [&](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || std::strchr(extra, c);
  });
}

bool is_peer_url(const std::string& s) { return checked::is_url(s, 2380); }

// The etcd tools: the bundle's (/usr/local/bin under the root), else the system's. etcd 3.5 moved
// `snapshot status` and `snapshot restore` to etcdutl (etcdctl's are deprecated there, gone in 3.6).
struct EtcdTools {
  std::string etcdctl, offline;  // offline: etcdutl for 3.5+, etcdctl for 3.4
  std::string version;
};

std::string find_tool(const Layout& L, const std::string& name) {
  for (const std::string& p : {L.live("/usr/local/bin/" + name), "/usr/local/bin/" + name, "/usr/bin/" + name})
    if (::access(p.c_str(), X_OK) == 0) return p;
  return "";
}

EtcdTools etcd_tools(const Layout& L) {
  EtcdTools t;
  t.etcdctl = find_tool(L, "etcdctl");
  if (t.etcdctl.empty())
    throw Error("etcdctl: not found in " + L.live("/usr/local/bin") + ", /usr/local/bin or /usr/bin; the control-plane "
                "bundle installs it (kbundle fetch, then gen without --no-binaries)");
  ProcessResult v = run_process({t.etcdctl, "version"}, minutes(1), true);
  // "etcdctl version: 3.4.23"
  auto at = v.out.find("etcdctl version: ");
  if (v.status != 0 || at == std::string::npos)
    throw Error(t.etcdctl + " version: unexpected answer (exit " + std::to_string(v.status) + "): " + escape_text(v.out.substr(0, 200)));
  t.version = v.out.substr(at + 17, v.out.find('\n', at) - at - 17);
  int major = 0, minor = 0;
  std::sscanf(t.version.c_str(), "%d.%d", &major, &minor);
  t.offline = t.etcdctl;
  if (major > 3 || (major == 3 && minor >= 5)) {
    t.offline = find_tool(L, "etcdutl");
    if (t.offline.empty())
      throw Error("etcdutl: not found beside etcdctl " + t.version + " (etcd 3.5 and later check and restore snapshots with etcdutl)");
  }
  return t;
}

std::string tail_text(const ProcessResult& p) {
  std::string s = p.out.size() > 600 ? p.out.substr(p.out.size() - 600) : p.out;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return escape_text(s) + (p.timed_out ? " (timed out)" : "");
}

// `snapshot status` as JSON: {"hash", "revision", "totalKey", "totalSize"}; throws why not.
json snapshot_status(const EtcdTools& t, const std::string& file) {
  ProcessResult p = run_process({t.offline, "snapshot", "status", file, "--write-out=json"}, minutes(10));
  json j = json::parse(p.out, nullptr, false);
  if (p.status != 0 || !j.is_object() || !j.contains("revision"))
    throw Error(file + ": `" + t.offline + " snapshot status` refused it: " + tail_text(p) + " " + escape_text(p.err.substr(0, 400)));
  return j;
}

// The directory the snapshots go into: made 0700 if missing; refused when it is a symlink, not a
// directory, not root's, or writable by others (they could plant what pruning then trusts).
std::string backup_dir(const Layout& L, const BackupPolicy& p) {
  std::string dir = L.live(p.dir);
  std::string walk = L.root;
  for (size_t pos = 1; pos <= p.dir.size();) {
    size_t end = std::min(p.dir.find('/', pos), p.dir.size());
    walk += "/" + p.dir.substr(pos, end - pos);
    LiveState s = inspect(walk, false);
    if (s.kind == LiveState::Kind::Symlink)
      throw InstallerError(ExitCode::Failure, walk + ": a symlink on the way to the backup directory " + p.dir +
                                                  "; refused (replace it by a real directory)");
    if (s.kind == LiveState::Kind::Absent) break;
    if (s.kind != LiveState::Kind::Dir) throw InstallerError(ExitCode::Failure, walk + ": not a directory");
    pos = end + 1;
  }
  ensure_dir(dir, 0700);
  LiveState s = inspect(dir, false);
  if (s.uid != ::geteuid() || (s.mode & 022))
    throw InstallerError(ExitCode::Failure, dir + ": the backup directory is owned by uid " + std::to_string(s.uid) + " with mode " +
                                                mode_string(s.mode) + "; refused (chown root and chmod 0700 it)");
  return dir;
}

}  // namespace

BackupPolicy parse_backup_policy(const std::string& bytes, const std::string& where) {
  json j = parse_object(bytes, where);
  only_keys(j, {"version", "dir", "keep", "maxAgeDays"}, where, "");
  BackupPolicy p;
  p.dir = str(j, "dir", where);
  if (std::string why = backup_dir_problem(p.dir); !why.empty()) refuse(where, "dir", why);
  p.keep = int_in(j, "keep", 1, 10000, where);
  p.max_age_days = int_in(j, "maxAgeDays", 1, 3650, where);
  return p;
}

std::vector<std::string> snapshots_to_prune(std::vector<std::pair<std::string, int64_t>> snapshots, int keep,
                                            int max_age_days, int64_t now) {
  std::sort(snapshots.begin(), snapshots.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<std::string> out;
  const int64_t max_age = int64_t{max_age_days} * 86400;
  for (size_t i = 1; i < snapshots.size(); ++i)  // [0], the newest, always stays
    if (i >= static_cast<size_t>(keep) || now - snapshots[i].second > max_age) out.push_back(snapshots[i].first);
  return out;
}

std::vector<std::string> prune_snapshots(const std::string& dir, const std::string& node, int keep, int max_age_days,
                                         int64_t now) {
  std::vector<std::pair<std::string, int64_t>> complete;
  std::set<std::string> names;
  for (const auto& n : list_dir(dir)) names.insert(n);
  std::vector<std::string> removed;
  auto remove = [&](const std::string& name) {
    if (::unlink((dir + "/" + name).c_str()) != 0 && errno != ENOENT) throw_errno("cannot remove " + dir + "/" + name);
    removed.push_back(name);
  };
  for (const auto& n : names) {
    LiveState s = inspect(dir + "/" + n, false);
    if (s.kind != LiveState::Kind::File) continue;  // a symlink or a directory is never ours
    if (auto t = snapshot_name_time(node, n)) {
      complete.emplace_back(n, *t);
    } else if (n.ends_with(".sha256") && snapshot_name_time(node, n.substr(0, n.size() - 7)) &&
               !names.count(n.substr(0, n.size() - 7))) {
      remove(n);  // its snapshot is gone (pruned before a crash)
    }
  }
  for (const auto& n : snapshots_to_prune(complete, keep, max_age_days, now)) {
    remove(n);
    if (inspect(dir + "/" + n + ".sha256", false).kind == LiveState::Kind::File) remove(n + ".sha256");
  }
  fsync_dir(dir);
  return removed;
}

ExitCode etcd_snapshot(const Options& opt, const Hooks& hooks, Io io, const std::string& endpoint) {
  return guarded(opt, hooks, io, "etcd snapshot", [&](Run& r) {
    const Layout& L = r.layout;
    auto installed = read_installed(L);
    if (!installed) throw InstallerError(ExitCode::Failure, L.current() + "/manifest.json: nothing is installed");
    const Manifest& m = installed->manifest;
    if (!find_file_entry(m, kEtcdBackupFile))
      throw InstallerError(ExitCode::Failure, "serial " + std::to_string(m.serial) + " of " + m.node_name + " has no " +
                                                  kEtcdBackupFile + ": only a control-plane node takes etcd snapshots");
    BackupPolicy p = parse_backup_policy(read_file(L.live(kEtcdBackupFile)), L.live(kEtcdBackupFile));
    const std::string url = endpoint.empty() ? kDefaultEndpoint : endpoint;
    if (url.rfind("https://", 0) != 0 || !charset(url, 200, ":/.-[]"))
      throw InstallerError(ExitCode::Usage, "--endpoint " + escape_text(url) + ": want https://HOST:PORT");
    EtcdTools tools = etcd_tools(L);
    const std::string dir = backup_dir(L, p);

    // Our leftovers of a snapshot that was cut short: only names we make.
    for (const auto& n : list_dir(dir))
      if (n.rfind(kTempPrefix, 0) == 0 && (n.ends_with(".tmp") || n.ends_with(".tmp.part")) &&
          inspect(dir + "/" + n, false).kind == LiveState::Kind::File)
        ::unlink((dir + "/" + n).c_str());
    const std::string temp = dir + "/" + kTempPrefix + std::to_string(::getpid()) + ".tmp";
    const std::vector<std::string> tls = {tools.etcdctl, "--endpoints=" + url, "--cacert=" + L.live(kEtcdCaCertFile),
                                          "--cert=" + L.live(kEtcdPeerCertFile), "--key=" + L.live(kEtcdPeerKeyFile)};
    // `snapshot save` has no deadline of its own unless --command-timeout is given, and then it
    // covers the whole transfer: so ask the member first (fails in seconds when it does not answer),
    // then save with a generous bound.
    std::vector<std::string> probe = tls, save_argv = tls;
    probe.insert(probe.end(), {"--dial-timeout=3s", "--command-timeout=10s", "endpoint", "status"});
    save_argv.insert(save_argv.end(), {"--dial-timeout=10s", "--command-timeout=1800s", "snapshot", "save", temp});
    ProcessResult up = run_process(probe, minutes(1), true);
    if (up.status != 0)
      throw InstallerError(ExitCode::Failure, "etcdctl snapshot save from " + url + " failed: the member does not answer (exit " +
                                                  std::to_string(up.status) + "): " + tail_text(up) + "; nothing was kept");
    const int64_t now = r.hooks.now();
    const std::string name = snapshot_file_name(m.node_name, now), final_path = dir + "/" + name;
    if (inspect(final_path, false).kind != LiveState::Kind::Absent)
      throw InstallerError(ExitCode::Failure, final_path + ": exists already (two snapshots in one second); try again");
    auto started = std::chrono::steady_clock::now();
    ProcessResult save = run_process(save_argv, minutes(31), true);
    auto drop_temp = [&] {
      ::unlink(temp.c_str());
      ::unlink((temp + ".part").c_str());
    };
    if (save.status != 0) {
      drop_temp();
      throw InstallerError(ExitCode::Failure, "etcdctl snapshot save from " + url + " failed (exit " + std::to_string(save.status) +
                                                  "): " + tail_text(save) + "; nothing was kept");
    }
    json status;
    try {
      if (std::string why = etcd_snapshot_problem(temp); !why.empty()) throw Error(why);
      status = snapshot_status(tools, temp);
      if (::chmod(temp.c_str(), 0600) != 0) throw_errno("cannot chmod " + temp);
    } catch (const std::exception& e) {
      drop_temp();
      throw InstallerError(ExitCode::Failure, std::string("the snapshot just taken does not verify: ") + e.what() + "; nothing was kept");
    }
    FileDigest d = sha256_file(temp);
    {
      UniqueFd fd(::open(temp.c_str(), O_RDONLY | O_CLOEXEC));
      if (fd.get() < 0 || ::fsync(fd.get()) != 0) throw_errno("cannot fsync " + temp);
    }
    if (::rename(temp.c_str(), final_path.c_str()) != 0) throw_errno("cannot rename " + temp + " to " + final_path);
    fsync_dir(dir);
    write_file_atomic(final_path + ".sha256", d.sha256 + "  " + name + "\n", 0600);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::vector<std::string> pruned = prune_snapshots(dir, m.node_name, p.keep, p.max_age_days, now);

    char line[160];
    std::snprintf(line, sizeof line, " (%llu bytes, revision %lld, %lld keys, etcdctl %s, %.2f s)",
                  static_cast<unsigned long long>(d.size), status.value("revision", 0LL), status.value("totalKey", 0LL),
                  tools.version.c_str(), seconds);
    r.say("snapshot " + final_path + line);
    r.say("sha256 " + d.sha256 + " in " + final_path + ".sha256");
    for (const auto& n : pruned) r.say("pruned " + dir + "/" + n);
    r.report["result"] = "snapshot";
    r.report["file"] = final_path;
    r.report["sha256"] = d.sha256;
    r.report["bytes"] = d.size;
    r.report["revision"] = status.value("revision", 0LL);
    r.report["keys"] = status.value("totalKey", 0LL);
    r.report["seconds"] = seconds;
    r.report["pruned"] = pruned;
    return ExitCode::Ok;
  });
}

// ---- restore ----

namespace {

std::string restore_journal(const Layout& L) { return L.state() + "/etcd-restore.json"; }
std::string restored_ids_file(const Layout& L) { return L.state() + "/etcd-restores.json"; }

std::set<std::string> restored_ids(const Layout& L) {
  const std::string f = restored_ids_file(L);
  if (inspect(f, false).kind == LiveState::Kind::Absent) return {};
  json j = json::parse(read_file(f), nullptr, false);
  if (!j.is_array()) throw Error(f + ": unreadable (not a JSON list); fix by hand: it lists the etcd restores already done");
  std::set<std::string> out;
  for (const auto& v : j)
    if (v.is_string()) out.insert(v.get<std::string>());
  return out;
}

// What a restore in progress needs to be undone: written before the data directory is touched.
struct RestoreJournal {
  std::string id, data, aside, fresh;  // live paths
  bool had_data = false;
};

void write_restore_journal(const Layout& L, const RestoreJournal& j) {
  write_file_atomic(restore_journal(L),
                    json{{"id", j.id}, {"data", j.data}, {"aside", j.aside}, {"fresh", j.fresh}, {"hadData", j.had_data}}.dump(),
                    0600);
}

std::optional<RestoreJournal> read_restore_journal(const Layout& L) {
  const std::string f = restore_journal(L);
  if (inspect(f, false).kind == LiveState::Kind::Absent) return std::nullopt;
  try {
    json j = json::parse(read_file(f));
    return RestoreJournal{j.at("id"), j.at("data"), j.at("aside"), j.at("fresh"), j.at("hadData")};
  } catch (const std::exception& e) {
    throw Error(f + ": unreadable (" + e.what() + "); not guessing where etcd's old data is, fix by hand");
  }
}

void rename_dir(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) throw_errno("cannot rename " + from + " to " + to);
  fsync_dir(parent_dir(to));
}

}  // namespace

RestoreSpec parse_restore_spec(const std::string& bytes, const std::string& where, const Manifest& m) {
  json j = parse_object(bytes, where);
  only_keys(j, {"version", "id", "token", "name", "peerURL", "initialCluster", "snapshotSha256"}, where, "");
  RestoreSpec s{str(j, "id", where),      str(j, "token", where),          str(j, "name", where),
                str(j, "peerURL", where), str(j, "initialCluster", where), str(j, "snapshotSha256", where)};
  if (!charset(s.id, 64, "-")) refuse(where, "id", "not 1-64 letters, digits and '-'");
  if (!charset(s.token, 128, "-._")) refuse(where, "token", "not 1-128 letters, digits and '-._'");
  if (s.name != m.node_name) refuse(where, "name", "'" + escape_text(s.name) + "' is not this bundle's node " + m.node_name);
  if (!is_peer_url(s.peer_url)) refuse(where, "peerURL", "not https://IPv4:2380");
  if (s.peer_url != "https://" + m.private_ip + ":2380") refuse(where, "peerURL", "not this node's address " + m.private_ip);
  // NAME=https://IP:2380,... with this member in it, nothing else.
  bool self = false;
  size_t count = 0;
  for (size_t pos = 0; pos <= s.initial_cluster.size();) {
    size_t end = std::min(s.initial_cluster.find(',', pos), s.initial_cluster.size());
    std::string item = s.initial_cluster.substr(pos, end - pos);
    size_t eq = item.find('=');
    if (eq == std::string::npos || !checked::good_name(item.substr(0, eq)) || !is_peer_url(item.substr(eq + 1)))
      refuse(where, "initialCluster", "'" + escape_text(item) + "' is not NAME=https://IPv4:2380");
    self |= item == s.name + "=" + s.peer_url;
    if (++count > 64) refuse(where, "initialCluster", "more than 64 members");
    pos = end + 1;
  }
  if (!self) refuse(where, "initialCluster", "does not hold this member " + s.name + "=" + s.peer_url);
  const ManifestEntry* e = find_file_entry(m, kEtcdRestoreSnapshot);
  if (!e) refuse(where, "snapshotSha256", std::string("the bundle carries no ") + kEtcdRestoreSnapshot);
  if (!is_lower_hex(s.snapshot_sha256, 64) || s.snapshot_sha256 != e->sha256)
    refuse(where, "snapshotSha256", "not the sha256 of the snapshot the manifest lists");
  return s;
}

void check_staged_etcd_restore(const Manifest& m, const std::string& staged_files, const std::string& bundle) {
  const bool spec = find_file_entry(m, kEtcdRestoreSpec) != nullptr, snap = find_file_entry(m, kEtcdRestoreSnapshot) != nullptr;
  if (!spec && !snap) return;
  if (!spec) refuse(bundle, kEtcdRestoreSpec, "missing beside the snapshot");
  parse_restore_spec(read_file(staged_files + kEtcdRestoreSpec), bundle + ": " + kEtcdRestoreSpec, m);
  if (std::string why = etcd_snapshot_problem(staged_files + kEtcdRestoreSnapshot); !why.empty())
    refuse(bundle, kEtcdRestoreSnapshot, "not a snapshot etcd would restore: " + why);
}

EtcdRestore etcd_restore_before_start(Run& r, const Manifest& m, std::vector<std::string>& restart) {
  EtcdRestore out;
  if (!find_file_entry(m, kEtcdRestoreSpec)) return out;
  const Layout& L = r.layout;
  RestoreSpec spec = parse_restore_spec(read_file(L.live(kEtcdRestoreSpec)), L.live(kEtcdRestoreSpec), m);
  if (restored_ids(L).count(spec.id)) {
    r.say("etcd: restore " + spec.id + " was done already; not restoring again");
    return out;
  }
  const std::string snapshot = L.live(kEtcdRestoreSnapshot);
  if (sha256_file(snapshot).sha256 != spec.snapshot_sha256)
    throw Error(snapshot + ": differs from the snapshot the bundle carries; not restoring");
  if (std::string why = etcd_snapshot_problem(snapshot); !why.empty()) throw Error(why + "; not restoring");
  EtcdTools tools = etcd_tools(L);
  snapshot_status(tools, snapshot);

  RestoreJournal j;
  j.id = spec.id;
  j.data = L.live(kEtcdDataDirPath);
  const std::string tag = std::to_string(m.serial);
  j.aside = j.data + ".before-restore-" + tag;
  for (int n = 1; inspect(j.aside, false).kind != LiveState::Kind::Absent; ++n) j.aside = j.data + ".before-restore-" + tag + "." + std::to_string(n);
  j.fresh = j.data + ".restore-" + tag;
  j.had_data = inspect(j.data, false).kind == LiveState::Kind::Dir;
  write_restore_journal(L, j);
  out.active = true;
  out.id = spec.id;
  try {
    r.say("etcd: restoring " + spec.id + " (snapshot sha256 " + spec.snapshot_sha256.substr(0, 16) + "..., token " + spec.token + ")");
    auto started = std::chrono::steady_clock::now();
    r.services().stop(kEtcdUnit);
    remove_tree(j.fresh);
    ProcessResult p = run_process({tools.offline, "snapshot", "restore", snapshot, "--name=" + spec.name,
                                   "--initial-cluster=" + spec.initial_cluster, "--initial-cluster-token=" + spec.token,
                                   "--initial-advertise-peer-urls=" + spec.peer_url, "--data-dir=" + j.fresh},
                                  minutes(30), true);
    if (p.status != 0) throw Error(tools.offline + " snapshot restore failed (exit " + std::to_string(p.status) + "): " + tail_text(p));
    if (::chmod(j.fresh.c_str(), 0700) != 0) throw_errno("cannot chmod " + j.fresh);
    r.hooks.faults.reached("etcd-restore-before-swap");
    if (j.had_data) rename_dir(j.data, j.aside);
    r.hooks.faults.reached("etcd-restore-aside");
    rename_dir(j.fresh, j.data);
    r.hooks.faults.reached("etcd-restore-swapped");
    char took[64];
    std::snprintf(took, sizeof took, "%.2f s", std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    r.say("etcd: restored " + spec.name + " from the snapshot in " + took + (j.had_data ? "; the old data is kept in " + j.aside : ""));
    r.report["etcdRestore"] = {{"id", spec.id}, {"aside", j.had_data ? j.aside : ""}};
  } catch (...) {
    etcd_restore_undo(r);
    throw;
  }
  if (std::find(restart.begin(), restart.end(), kEtcdUnit) == restart.end()) restart.insert(restart.begin(), kEtcdUnit);
  return out;
}

void etcd_restore_undo(Run& r) {
  const Layout& L = r.layout;
  auto j = read_restore_journal(L);
  if (!j) return;
  r.services().stop(kEtcdUnit);
  bool aside = inspect(j->aside, false).kind == LiveState::Kind::Dir;
  // The data directory holds the restored data only when the old one was moved aside (or there was none).
  if (aside || !j->had_data) {
    if (inspect(j->data, false).kind != LiveState::Kind::Absent) remove_tree(j->data);
    if (aside) rename_dir(j->aside, j->data);
  }
  remove_tree(j->fresh);
  ::unlink(restore_journal(L).c_str());
  fsync_dir(L.state());
  r.say("etcd: restore " + j->id + " undone; the data directory is as before");
}

void etcd_restore_commit(Run& r) {
  const Layout& L = r.layout;
  auto j = read_restore_journal(L);
  if (!j) return;
  std::set<std::string> ids = restored_ids(L);
  ids.insert(j->id);
  write_file_atomic(restored_ids_file(L), json(ids).dump(), 0600);
  ::unlink(restore_journal(L).c_str());
  fsync_dir(L.state());
}

}  // namespace kb::installer
