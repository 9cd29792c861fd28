#include "generator/etcd_restore.h"

#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/etcd_backup.h"
#include "base/file_io.h"
#include "base/hash.h"
#include "base/text_escape.h"
#include "bundles/path_policy.h"
#include "generator/etcd_membership.h"
#include "generator/plan.h"

namespace kb {

std::string render_etcd_backup_file(const EtcdBackup& backup) {
  nlohmann::ordered_json j = {{"version", 1}, {"dir", backup.dir}, {"keep", backup.keep}, {"maxAgeDays", backup.max_age_days}};
  return j.dump(2) + "\n";
}

EtcdRestoreInput check_restore_snapshot(const std::string& path, const std::string& cluster_name, std::time_t now) {
  const std::string shown = escape_text(path);
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) throw_errno(shown + ": cannot read the snapshot (check --snapshot)");
  if (!S_ISREG(st.st_mode))
    throw Error(shown + ": not a regular file" + (S_ISLNK(st.st_mode) ? " (a symlink: give the file itself)" : "") +
                "; nothing was written");
  if (std::string why = etcd_snapshot_problem(path); !why.empty())
    throw Error(escape_text(why) + "; nothing was written (take a new snapshot with `kbundle-installer etcd snapshot`, or "
                "use an older one whose .sha256 matches)");
  EtcdRestoreInput in;
  in.snapshot_path = path;
  FileDigest d = sha256_file(path);
  in.sha256 = d.sha256;
  in.size = d.size;
  const std::string side = path + ".sha256";
  if (::lstat(side.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode) || st.st_size > 4096)
      throw Error(escape_text(side) + ": not a small regular file; nothing was written (remove it or replace it by "
                  "`sha256sum` output)");
    std::string text = read_file(side);
    std::string digest = text.substr(0, std::min(text.find_first_of(" \t\n"), text.size()));
    if (!is_lower_hex(digest, 64))
      throw Error(escape_text(side) + ": does not start with a lowercase sha256 digest; nothing was written");
    if (digest != in.sha256)
      throw Error(escape_text(side) + ": records sha256 " + digest + " but " + shown + " has " + in.sha256 +
                  ": the snapshot was changed or replaced; nothing was written");
    in.sidecar_checked = true;
  }
  char stamp[32];
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "%Y%m%dt%H%M%Sz", &tm);
  in.id = std::string(stamp) + "-" + in.sha256.substr(0, 12);
  in.token = cluster_name + "-etcd-restore-" + in.id;  // never the original "<cluster>-etcd"
  return in;
}

void add_restore_files(ClusterPlan& plan, const Topology& topology, const EtcdRestoreInput& in) {
  std::string initial_cluster;
  for (const Node* cp : topology.control_planes())
    initial_cluster += (initial_cluster.empty() ? "" : ",") + cp->name + "=" + etcd_peer_url(*cp);
  for (auto& n : plan.nodes) {
    if (!n.node.is_control_plane()) continue;
    PlannedFile snap;
    snap.path = kEtcdRestoreSnapshot;
    snap.mode = 0600;
    snap.cls = FileClass::Secret;  // every Secret of the cluster is in it
    snap.source_path = in.snapshot_path;
    snap.source_sha256 = in.sha256;
    snap.source_size = in.size;
    PlannedFile spec;
    spec.path = kEtcdRestoreSpec;
    spec.mode = 0600;
    spec.cls = FileClass::Config;
    nlohmann::ordered_json j = {{"version", 1},
                                {"id", in.id},
                                {"token", in.token},
                                {"name", n.node.name},
                                {"peerURL", etcd_peer_url(n.node)},
                                {"initialCluster", initial_cluster},
                                {"snapshotSha256", in.sha256}};
    spec.content = j.dump(2) + "\n";
    n.files.push_back(std::move(snap));
    n.files.push_back(std::move(spec));
    std::sort(n.files.begin(), n.files.end(), [](const PlannedFile& a, const PlannedFile& b) { return a.path < b.path; });
    n.directories.push_back(kEtcdRestoreDir);
    std::sort(n.directories.begin(), n.directories.end());
  }
}

}  // namespace kb
