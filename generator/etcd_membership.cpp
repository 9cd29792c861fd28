#include "generator/etcd_membership.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/file_io.h"
#include "generator/state.h"

namespace kb {

namespace {

using json = nlohmann::json;

constexpr const char* kRecordFile = "etcd.json";
constexpr int kRecordVersion = 1;

bool path_exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(std::filesystem::symlink_status(path, ec));
}

[[noreturn]] void damaged(const std::string& path, const std::string& why) {
  throw Error(path + ": damaged state: " + why +
              "; nothing was changed (restore it from a backup; it records the etcd members gen generated)");
}

size_t quorum(size_t n) { return n / 2 + 1; }

std::string join_initial_cluster(const std::vector<EtcdMember>& members) {
  std::string s;
  for (const auto& m : members) s += (s.empty() ? "" : ",") + m.name + "=" + m.peer_url;
  return s;
}

std::string names(const std::vector<EtcdMember>& v) {
  std::string s;
  for (const auto& m : v) s += (s.empty() ? "" : ", ") + m.name + " (" + m.peer_url + ")";
  return s;
}

const EtcdMember* by_name(const std::vector<EtcdMember>& v, const std::string& name) {
  for (const auto& m : v)
    if (m.name == name) return &m;
  return nullptr;
}

// The topology's control-plane nodes as etcd members, in topology order.
std::vector<EtcdMember> topology_members(const Topology& t) {
  std::vector<EtcdMember> out;
  for (const Node* n : t.control_planes()) out.push_back({n->name, etcd_peer_url(*n)});
  return out;
}

bool contains(const std::vector<EtcdMember>& v, const EtcdMember& m) {
  return std::find(v.begin(), v.end(), m) != v.end();
}

// Control-plane nodes a state made before etcd.json was issued an etcd server certificate for
// (issued.json holds "<node>/etcd-server" for every control-plane node gen ever planned, in either
// output format): they were generated, so their etcd was bootstrapped together (the only thing gen
// could do then).
std::optional<EtcdRecord> legacy_record(const State& state, const Topology& t) {
  const std::string path = state.dir() + "/issued.json";
  if (!path_exists(path)) return std::nullopt;
  json issued = json::parse(read_file(path), nullptr, false);
  if (!issued.is_object()) return std::nullopt;  // State::open reports a damaged issued.json itself
  std::vector<EtcdMember> members;
  for (const auto& m : topology_members(t))
    if (issued.contains(m.name + "/etcd-server")) members.push_back(m);
  if (members.empty()) return std::nullopt;
  EtcdRecord r;
  r.epoch = 1;
  for (const auto& m : members) r.members.push_back({m, join_initial_cluster(members), "new", 1});
  return r;
}

}  // namespace

const EtcdRecordMember* EtcdRecord::find(const std::string& name) const {
  for (const auto& m : members)
    if (m.member.name == name) return &m;
  return nullptr;
}

std::string etcd_peer_url(const Node& n) { return "https://" + n.private_ip + ":2380"; }
std::string etcd_client_url(const Node& n) { return "https://" + n.private_ip + ":2379"; }

std::vector<std::string> EtcdMembershipChange::describe() const {
  std::vector<std::string> out;
  if (!bootstrapped) {
    out.push_back("etcd: new cluster of " + std::to_string(after.size()) + " member" + (after.size() == 1 ? "" : "s") +
                  " (" + names(after) + "), all started with --initial-cluster-state=new (epoch " +
                  std::to_string(epoch) + ")");
  } else if (!changed()) {
    out.push_back("etcd: members unchanged (" + std::to_string(after.size()) + ": " + names(after) + ", epoch " +
                  std::to_string(epoch) + ")");
  } else {
    // Removal first: a replaced member (same name) goes before its successor is added.
    for (const auto& r : removed) {
      bool replaced = by_name(added, r.name) != nullptr;
      out.push_back("etcd: remove member " + r.name + " (" + r.peer_url + ")" +
                    (replaced ? ": replaced; the new " + r.name + "'s installer removes it before adding itself"
                              : ": each remaining control-plane node's installer removes it after its own healthy "
                                "apply (the first one does it, the others find it gone)"));
    }
    for (const auto& a : added)
      out.push_back("etcd: add member " + a.name + " (" + a.peer_url +
                    "): its installer adds it as a learner through an existing member, starts etcd with "
                    "--initial-cluster-state=existing, and promotes it once it has caught up");
    out.push_back("etcd: " + std::to_string(before.size()) + " -> " + std::to_string(after.size()) +
                  " members (quorum " + std::to_string(quorum(after.size())) + "), epoch " + std::to_string(epoch));
  }
  for (const auto& r : risks) out.push_back("etcd: risk: " + r);
  for (const auto& p : problems) out.push_back("etcd: refused: " + p);
  return out;
}

EtcdMembershipChange plan_etcd_membership(const std::optional<EtcdRecord>& record, const Topology& topology) {
  EtcdMembershipChange c;
  c.after = topology_members(topology);
  if (!record) {
    c.epoch = 1;
    c.record.epoch = 1;
    const std::string ic = join_initial_cluster(c.after);
    for (const auto& m : c.after) c.record.members.push_back({m, ic, "new", 1});
    if (c.after.size() % 2 == 0 && !c.after.empty())
      c.risks.push_back(std::to_string(c.after.size()) + " members tolerate as many failures as " +
                        std::to_string(c.after.size() - 1) + " (quorum " + std::to_string(quorum(c.after.size())) +
                        "); an odd count is recommended");
    return c;
  }
  c.bootstrapped = true;
  for (const auto& m : record->members) c.before.push_back(m.member);
  for (const auto& b : c.before)
    if (!contains(c.after, b)) c.removed.push_back(b);
  for (const auto& a : c.after)
    if (!contains(c.before, a)) c.added.push_back(a);

  // One change: one member name touched (a replacement touches one name twice).
  std::set<std::string> touched;
  for (const auto& m : c.removed) touched.insert(m.name);
  for (const auto& m : c.added) touched.insert(m.name);
  if (touched.size() > 1) {
    std::string list;
    for (const auto& n : touched) list += (list.empty() ? "" : ", ") + n;
    c.problems.push_back("this topology changes " + std::to_string(touched.size()) + " etcd members at once (" + list +
                         "); etcd changes membership one member at a time: change one control-plane node, run gen "
                         "and apply every control-plane node, then the next");
  }
  // A removal (or the removal half of a replacement) must be survivable: the other recorded
  // members must still be a quorum of the recorded cluster, since the removed one is presumed gone.
  if (!c.removed.empty()) {
    const size_t n = c.before.size();
    const size_t left = n - c.removed.size();
    if (left == 0) {
      c.problems.push_back("removing " + names(c.removed) + " would leave no etcd member; keep at least one "
                           "control-plane node (to move the last member, add the new node first, apply, then remove "
                           "the old one)");
    } else if (left < quorum(n)) {
      c.problems.push_back("removing " + names(c.removed) + " from " + std::to_string(n) + " recorded members leaves " +
                           std::to_string(left) + ", below the quorum of " + std::to_string(quorum(n)) +
                           " the removal itself needs (a " + std::to_string(n) + "-member cluster cannot lose a "
                           "member safely); add a control-plane node first, apply, then remove or replace this one");
    }
  }
  if (c.after.empty() && c.problems.empty())
    c.problems.push_back("the topology has no control-plane node: there would be no etcd member");
  if (c.changed() && c.after.size() % 2 == 0 && !c.after.empty())
    c.risks.push_back(std::to_string(c.after.size()) + " members tolerate as many failures as " +
                      std::to_string(c.after.size() - 1) + " (quorum " + std::to_string(quorum(c.after.size())) +
                      "); add or remove one more to get an odd count");

  c.epoch = record->epoch + (c.changed() ? 1 : 0);
  c.record.epoch = c.epoch;
  const std::string joined_with = join_initial_cluster(c.after);
  for (const auto& a : c.after) {
    const EtcdRecordMember* old = record->find(a.name);
    if (old && old->member == a) c.record.members.push_back(*old);
    else c.record.members.push_back({a, joined_with, "existing", c.epoch});
  }
  return c;
}

EtcdMembershipChange plan_etcd_membership(const State& state, const Topology& topology) {
  std::optional<EtcdRecord> record = read_etcd_record(state.dir());
  if (!record) record = legacy_record(state, topology);
  return plan_etcd_membership(record, topology);
}

std::optional<EtcdRecord> read_etcd_record(const std::string& state_dir) {
  const std::string path = state_dir + "/" + kRecordFile;
  if (!path_exists(path)) return std::nullopt;
  json j = json::parse(read_file(path), nullptr, false);
  if (j.is_discarded() || !j.is_object()) damaged(path, "is not a JSON object");
  if (j.value("version", 0) != kRecordVersion) damaged(path, "\"version\" is not " + std::to_string(kRecordVersion));
  if (!j.contains("epoch") || !j["epoch"].is_number_unsigned() || j["epoch"].get<uint64_t>() == 0)
    damaged(path, "\"epoch\" is not a positive integer");
  if (!j.contains("members") || !j["members"].is_array() || j["members"].empty())
    damaged(path, "\"members\" is not a non-empty list");
  EtcdRecord r;
  r.epoch = j["epoch"].get<uint64_t>();
  std::set<std::string> seen;
  for (size_t i = 0; i < j["members"].size(); ++i) {
    const json& m = j["members"][i];
    const std::string place = "members[" + std::to_string(i) + "]";
    auto str = [&](const char* key) {
      if (!m.is_object() || !m.contains(key) || !m[key].is_string() || m[key].get<std::string>().empty())
        damaged(path, place + "." + key + " is missing or not a string");
      return m[key].get<std::string>();
    };
    EtcdRecordMember rm;
    rm.member = {str("name"), str("peerURL")};
    rm.initial_cluster = str("initialCluster");
    rm.initial_cluster_state = str("initialClusterState");
    if (rm.initial_cluster_state != "new" && rm.initial_cluster_state != "existing")
      damaged(path, place + ".initialClusterState is neither \"new\" nor \"existing\"");
    if (!m.contains("joinedEpoch") || !m["joinedEpoch"].is_number_unsigned() || m["joinedEpoch"].get<uint64_t>() > r.epoch)
      damaged(path, place + ".joinedEpoch is not an epoch up to " + std::to_string(r.epoch));
    rm.joined_epoch = m["joinedEpoch"].get<uint64_t>();
    if (!seen.insert(rm.member.name).second) damaged(path, place + ".name \"" + rm.member.name + "\" is listed twice");
    r.members.push_back(std::move(rm));
  }
  return r;
}

void write_etcd_record(const std::string& state_dir, const EtcdRecord& r) {
  json members = json::array();
  for (const auto& m : r.members)
    members.push_back({{"name", m.member.name},
                       {"peerURL", m.member.peer_url},
                       {"initialCluster", m.initial_cluster},
                       {"initialClusterState", m.initial_cluster_state},
                       {"joinedEpoch", m.joined_epoch}});
  json j = {{"version", kRecordVersion}, {"epoch", r.epoch}, {"members", members}};
  write_file_atomic(state_dir + "/" + kRecordFile, j.dump(2) + "\n", 0600);
}

std::string render_etcd_membership_file(const EtcdMembershipChange& c, const Topology& t, const Node& node) {
  const EtcdRecordMember* self = c.record.find(node.name);
  if (!self) throw Error("internal error: " + node.name + " is a control-plane node without an etcd member record");
  json members = json::array();
  for (const Node* n : t.control_planes())
    members.push_back({{"name", n->name}, {"peer_url", etcd_peer_url(*n)}, {"client_url", etcd_client_url(*n)}});
  json remove = json::array();
  for (const auto& r : c.removed) remove.push_back({{"name", r.name}, {"peer_url", r.peer_url}});
  json j = {{"version", 1},
            {"epoch", c.epoch},
            {"name", node.name},
            {"peer_url", self->member.peer_url},
            {"initial_cluster", self->initial_cluster},
            {"initial_cluster_state", self->initial_cluster_state},
            {"members", members},
            {"remove", remove}};
  return j.dump(2) + "\n";
}

}  // namespace kb
