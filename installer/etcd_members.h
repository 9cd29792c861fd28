#pragma once
// etcd membership on the node (docs/etcd.md, G32). Every control-plane bundle carries
// /etc/etcd/membership.json (generator/etcd_membership.h): the node's own name and peer URL, how
// its etcd unit starts it (--initial-cluster-state new or existing), the members with their client
// URLs, the members the cluster drops, and the generation's membership epoch. It comes from a
// signed bundle, yet is read as hostile input: every field is checked before anything is sent.
//
// The installer talks to etcd's v3 JSON gateway (POST /v3/cluster/member/{list,add,remove,promote},
// /v3/kv/{range,put}) over mutual TLS with the node's etcd peer certificate (/etc/etcd/peer.crt:
// clientAuth and serverAuth, CN = node name, issued by etcd's CA, which etcd's
// --trusted-ca-file trusts for clients), verifying each member against /etc/etcd/ca.crt and its IP.
//
// Join (a member whose unit says "existing" and whose data directory is empty), in apply:
//   after the switch, before etcd starts: list the members through an existing member; already a
//   member with this peer URL: nothing to add; the same name with another peer URL (a replacement):
//   remove that member first; then check the cluster is exactly the unit's --initial-cluster less
//   this node, and add this node as a learner;
//   after etcd starts, before the health gate: promote it, retried with bounded back-off (etcd
//   refuses until the learner has caught up), then record the epoch in etcd.
//   Any failure after the add removes the member it added, stops etcd and empties the data
//   directory, and the apply rolls back (exit 4).
// Removal, after a healthy commit (and on an apply of the installed serial, to retry): each member
// the bundle lists is removed, one at a time, only while the others keep quorum, unless etcd's
// recorded epoch is newer than the bundle's (a stale bundle never removes a member added later).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bundles/manifest.h"
#include "installer/hooks.h"
#include "installer/run.h"

namespace kb::installer {

struct EtcdPeer {
  std::string name;
  std::string peer_url;    // https://IP:2380
  std::string client_url;  // https://IP:2379 ("" in `remove`)
};

struct EtcdMembershipSpec {
  uint64_t epoch = 0;
  std::string name, peer_url, initial_cluster, initial_cluster_state;
  std::vector<EtcdPeer> members;  // the cluster after this generation, this node included
  std::vector<EtcdPeer> remove;   // members the cluster drops in this generation
};

// Parses and checks membership.json against the manifest that installs it. Throws
// InstallerError(BadBundle) "<where>: <place>: <what is wrong>".
EtcdMembershipSpec parse_etcd_membership(const std::string& bytes, const std::string& where, const Manifest& m);

// apply, after staging and before any live write: refuses (exit 3) a bundle whose membership.json
// is malformed or hostile. `staged_files` is the staging directory's files/.
void check_staged_etcd_membership(const Manifest& m, const std::string& staged_files, const std::string& bundle);

// A member as the gateway lists it. A member added but not started yet has no name.
struct EtcdMemberInfo {
  std::string id;  // decimal uint64, as the gateway writes it
  std::string name;
  std::vector<std::string> peer_urls, client_urls;
  bool learner = false;
};

// What a gateway call failed with: no answer (every endpoint tried), or etcd's error.
struct EtcdCallError {
  std::string detail;  // "https://10.0.0.1:2379: HTTP 412: etcdserver: ..." or the transport failure
  int grpc_code = -1;  // etcd's gRPC code (5 not found, 9 failed precondition, 14 unavailable), -1 when none
  // No answer, or etcd's "unavailable" (no leader yet, or "etcdserver: unhealthy cluster": a member
  // not connected for the last 5 s, which etcd's strict reconfiguration check refuses): worth a retry.
  bool transient() const { return grpc_code == -1 || grpc_code == 14; }
};

// The members' JSON gateway: each call goes to the first endpoint that answers.
class EtcdGateway {
 public:
  EtcdGateway(const Hooks& hooks, const std::string& root, const std::vector<std::string>& client_urls,
              std::chrono::milliseconds step_timeout = std::chrono::milliseconds(5000));
  std::variant<std::vector<EtcdMemberInfo>, EtcdCallError> list();
  std::variant<EtcdMemberInfo, EtcdCallError> add_learner(const std::string& peer_url);
  std::optional<EtcdCallError> promote(const std::string& id);
  std::optional<EtcdCallError> remove(const std::string& id);  // "member not found" counts as done
  std::variant<uint64_t, EtcdCallError> epoch();               // 0 when none is recorded
  std::optional<EtcdCallError> put_epoch(uint64_t epoch);

 private:
  std::variant<nlohmann::json, EtcdCallError> call(const std::string& path, const nlohmann::json& body);
  const Hooks& hooks_;
  std::vector<std::pair<std::string, ApiSend>> endpoints_;  // client URL, sender
  std::vector<std::string> unusable_;                       // why an endpoint could not be set up
  std::chrono::milliseconds step_timeout_;
};

// The key in etcd that holds the newest membership epoch a kbundle installer applied.
inline constexpr const char* kEtcdEpochKey = "/kbundle/etcd-membership-epoch";

// A join in progress: what apply must undo if the rest of the apply fails.
struct EtcdJoin {
  bool active = false;       // this apply joins the cluster
  bool added = false;        // this apply added the member (so undo removes it)
  std::string member_id;
  bool needs_promote = false;
  EtcdMembershipSpec spec;
};

// Before etcd starts (after the switch): the join's first half. Throws kb::Error on failure
// (after removing a member it added); a non-joining node or a data directory with data: inactive.
EtcdJoin etcd_join_before_start(Run& r, const Manifest& m);
// After etcd started, before the health gate: promote (bounded back-off) and record the epoch.
// Returns "" or why it failed.
std::string etcd_join_after_start(Run& r, EtcdJoin& join);
// Undo of a failed join: removes the member this apply added (not one it found), stops etcd and
// empties the data dir (empty when the join began), so the rollback can remove it.
void etcd_abandon_join(Run& r, const EtcdJoin& join);
// After a healthy commit: removes the members the bundle lists (see the header comment).
// Ok, or EtcdRemoveFailed (nothing is rolled back; apply again retries).
ExitCode etcd_remove_after_commit(Run& r, const Manifest& m);

}  // namespace kb::installer
