#pragma once
// etcd membership across generations (docs/etcd.md, G32). The state records the members gen
// last generated (STATE/etcd.json); the next gen compares them with the topology's control-plane
// nodes. The first gen bootstraps: every member starts with --initial-cluster-state=new. Later a
// control-plane node that is not recorded joins an existing cluster (its installer adds it as a
// learner and promotes it), and a recorded member the topology no longer has is removed by the
// remaining control-plane nodes. etcd's own rule, one membership change at a time, becomes gen's:
// at most one member added, removed or replaced (same name, new peer URL) per generation, and
// never a removal the recorded members' quorum could not survive.
//
// STATE/etcd.json (0600, written atomically by gen after the rest of the state):
//   {"version": 1, "epoch": N, "members": [{"name", "peerURL", "initialCluster", "initialClusterState",
//    "joinedEpoch"}]}
// epoch counts the membership changes (1: the bootstrap); each member keeps the --initial-cluster
// and --initial-cluster-state it was first started with, so its etcd unit does not change (and
// etcd does not restart) when another member comes or goes.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "topology/topology.h"

namespace kb {

class State;

struct EtcdMember {
  std::string name;
  std::string peer_url;  // https://IP:2380
  bool operator==(const EtcdMember& o) const { return name == o.name && peer_url == o.peer_url; }
};

// One recorded member: how its etcd unit starts it.
struct EtcdRecordMember {
  EtcdMember member;
  std::string initial_cluster;        // NAME=URL,... as in --initial-cluster
  std::string initial_cluster_state;  // "new" (bootstrapped together) or "existing" (joined later)
  uint64_t joined_epoch = 1;
};

struct EtcdRecord {
  uint64_t epoch = 0;
  std::vector<EtcdRecordMember> members;  // topology order
  const EtcdRecordMember* find(const std::string& name) const;
};

struct EtcdMembershipChange {
  bool bootstrapped = false;                 // the state records a generated cluster
  std::vector<EtcdMember> before, after;     // recorded members; the topology's control-plane nodes
  std::vector<EtcdMember> added, removed;    // a replaced node (same name, new peer URL) is in both
  std::vector<std::string> problems;         // why the change is refused (empty: allowed)
  std::vector<std::string> risks;            // allowed, but worth saying (an even member count, ...)
  std::vector<std::string> describe() const; // one line per step, in the order they happen
  uint64_t epoch = 0;                        // the membership epoch of this generation
  EtcdRecord record;                         // what etcd.json holds once this generation is written
  bool changed() const { return !added.empty() || !removed.empty(); }
};

// The change from what `state` records to `topology` (reads STATE/etcd.json; a state made before
// the record existed counts as bootstrapped with the control-plane nodes it issued etcd certificates for).
// Throws kb::Error naming the file for a damaged record.
EtcdMembershipChange plan_etcd_membership(const State& state, const Topology& topology);

// The same from a record already read (none: nothing was generated yet). Pure; unit-tested.
EtcdMembershipChange plan_etcd_membership(const std::optional<EtcdRecord>& record, const Topology& topology);

// STATE/etcd.json: nullopt when absent; kb::Error ("<path>: damaged state: ...") when it does not parse.
std::optional<EtcdRecord> read_etcd_record(const std::string& state_dir);
void write_etcd_record(const std::string& state_dir, const EtcdRecord& record);

// "https://IP:2380" / "https://IP:2379" of a node.
std::string etcd_peer_url(const Node& n);
std::string etcd_client_url(const Node& n);

// What a control-plane node's bundle carries at kEtcdMembershipFile (bundles/path_policy.h) for
// its installer: its own name and peer URL, whether it joins in this generation, the members
// with their client URLs, the members to remove and the epoch. JSON text.
std::string render_etcd_membership_file(const EtcdMembershipChange& change, const Topology& topology, const Node& node);

}  // namespace kb
