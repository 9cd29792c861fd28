#include "generator/change_plan.h"

#include <algorithm>
#include <set>

#include "bundles/unit_restart.h"
#include "topology/apply_order.h"

namespace kb {

namespace {

using json = nlohmann::json;

std::string entry_class(const ManifestEntry& e) { return e.type == EntryType::Directory ? "directory" : to_string(e.cls); }

std::string owner_of(const ManifestEntry& e) { return e.owner + ":" + e.group; }

// What differs between two entries at one path ("" when nothing does).
std::vector<std::string> entry_differences(const ManifestEntry& a, const ManifestEntry& b) {
  std::vector<std::string> what;
  if (a.type != b.type) what.push_back(std::string("type ") + to_string(a.type) + " -> " + to_string(b.type));
  if (a.sha256 != b.sha256 || a.size != b.size) what.push_back("content");
  if (a.mode != b.mode) what.push_back("mode " + mode_string(a.mode) + " -> " + mode_string(b.mode));
  if (owner_of(a) != owner_of(b)) what.push_back("owner " + owner_of(a) + " -> " + owner_of(b));
  if (a.type == b.type && a.type == EntryType::File && a.cls != b.cls)
    what.push_back(std::string("class ") + to_string(a.cls) + " -> " + to_string(b.cls));
  if (a.source != b.source && a.sha256 == b.sha256) what.push_back("source");
  return what;
}

void detail(std::vector<std::string>& out, const std::string& what, const std::string& a, const std::string& b) {
  if (a != b) out.push_back(what + " " + (a.empty() ? "(none)" : a) + " -> " + (b.empty() ? "(none)" : b));
}

std::string join(const std::vector<std::string>& v, const std::string& sep = " ") {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

// As installer/transaction.cpp decides for one apply on a node that matches its installed manifest:
// the units whose paths changed (bundles/unit_restart.h), and every unit new in this bundle.
std::vector<std::string> restarts(const Manifest* before, const Manifest& after, const std::vector<std::string>& changed) {
  std::vector<std::string> hit = units_to_restart(after.units, changed);
  std::vector<std::string> out;
  for (const auto& u : after.units)
    if (contains(hit, u) || !before || !contains(before->units, u)) out.push_back(u);
  return out;
}

NodeChange compare(const Manifest* before, const Manifest& after) {
  NodeChange c;
  c.name = after.node_name;
  c.role = after.role;
  c.new_serial = after.serial;
  std::vector<std::string> changed;
  if (!before) {
    c.status = "new";
    for (const auto& e : after.entries) {
      c.files.push_back({e.path, "added", entry_class(e), "", e.type == EntryType::File ? e.sha256 : "", {}});
      changed.push_back(e.path);
    }
    c.restart = restarts(nullptr, after, changed);
    return c;
  }
  c.old_serial = before->serial;
  detail(c.details, "role", before->role, after.role);
  detail(c.details, "hostname", before->hostname, after.hostname);
  detail(c.details, "private IP", before->private_ip, after.private_ip);
  detail(c.details, "instance id", before->instance_id, after.instance_id);
  detail(c.details, "kubernetes version", before->kubernetes_version, after.kubernetes_version);
  detail(c.details, "signing key sha256", before->signing_key_sha256, after.signing_key_sha256);
  if (before->units != after.units) c.details.push_back("units " + join(before->units) + " -> " + join(after.units));
  if (before->health_checks != after.health_checks) c.details.push_back("health checks changed");

  std::map<std::string, const ManifestEntry*> old_entries;
  for (const auto& e : before->entries) old_entries[e.path] = &e;
  std::set<std::string> seen;
  for (const auto& e : after.entries) {
    seen.insert(e.path);
    auto it = old_entries.find(e.path);
    const std::string sha = e.type == EntryType::File ? e.sha256 : "";
    if (it == old_entries.end()) {
      c.files.push_back({e.path, "added", entry_class(e), "", sha, {}});
    } else {
      auto what = entry_differences(*it->second, e);
      if (what.empty()) continue;
      const std::string old_sha = it->second->type == EntryType::File ? it->second->sha256 : "";
      c.files.push_back({e.path, "changed", entry_class(e), old_sha, sha, what});
    }
    changed.push_back(e.path);
  }
  for (const auto& e : before->entries) {
    if (seen.count(e.path)) continue;
    c.files.push_back({e.path, "removed", entry_class(e), e.type == EntryType::File ? e.sha256 : "", "", {}});
    changed.push_back(e.path);
  }
  std::sort(c.files.begin(), c.files.end(), [](const FileChange& a, const FileChange& b) { return a.path < b.path; });
  c.restart = restarts(before, after, changed);
  for (const auto& u : before->units)
    if (!contains(after.units, u)) c.units_removed.push_back(u);
  bool same = *before == after;
  c.status = same ? "unchanged" : "changed";
  if (!same && c.files.empty() && c.details.empty() && before->serial == after.serial)
    c.details.push_back("creation time " + before->created_at + " -> " + after.created_at);
  if (!same && c.files.empty() && c.details.empty())
    c.details.push_back("serial only (the state's serials and recorded manifest disagree)");
  return c;
}

std::string short_sha(const std::string& sha) { return sha.empty() ? "-" : sha.substr(0, 12); }

std::string plural(size_t n, const std::string& word) { return std::to_string(n) + " " + word + (n == 1 ? "" : "s"); }

// "renewed" when expiry alone is the reason (the renewal window), "reissued" for anything else.
std::string cert_text(const CertChange& c) {
  if (c.reason == "new") return "issued (new)";
  bool expiry = (c.reason.rfind("expires in ", 0) == 0 || c.reason.rfind("expired ", 0) == 0) && c.reason.find("; ") == std::string::npos;
  return (expiry ? "renewed: " : "reissued: ") + c.reason;
}

json cert_json(const CertChange& c) { return {{"owner", c.owner}, {"name", c.name}, {"reason", c.reason}}; }

// What `kbundle rotate ... --advance` does from the rotation's current phase.
std::string advancing(const Rotation& r) {
  if (r.phase < last_phase(r.kind))
    return "phase " + std::to_string(r.phase + 1) + ": " + phase_title(r.kind, r.phase + 1);
  return "completes it: the new " + std::string(r.kind == RotationKind::Ca ? "CA" : "key") +
         " becomes the long-lived one and the old one leaves the state";
}

std::string rotations_text(const std::vector<Rotation>& rotations) {
  std::string out;
  for (const auto& r : rotations) {
    const std::string phase = std::to_string(r.phase) + "/" + std::to_string(last_phase(r.kind));
    out += "rotation " + r.name + ": phase " + phase + " (" + (r.generated ? "generated" : "not generated yet") +
           "): " + phase_title(r.kind, r.phase) + "\n";
    out += r.generated ? "  once every node has applied it, --advance: " + advancing(r) + "\n"
                       : "  next: gen writes this phase's bundles; apply them on every node before --advance\n";
  }
  return out;
}

}  // namespace

bool ChangePlan::changes() const {
  if (!shared_certs.empty()) return true;
  return std::any_of(nodes.begin(), nodes.end(), [](const NodeChange& n) { return n.status != "unchanged"; });
}

size_t ChangePlan::count(const std::string& status) const {
  return static_cast<size_t>(std::count_if(nodes.begin(), nodes.end(), [&](const NodeChange& n) { return n.status == status; }));
}

ChangePlan make_change_plan(const std::string& cluster, const std::map<std::string, Manifest>& previous,
                            const std::vector<Manifest>& next, const std::map<std::string, std::string>& reissued,
                            bool subset, ChangeInputs inputs) {
  ChangePlan plan;
  plan.cluster = cluster;
  plan.subset = subset;
  plan.inputs = std::move(inputs);
  std::set<std::string> names;
  for (const auto& m : next) {
    names.insert(m.node_name);
    auto it = previous.find(m.node_name);
    plan.nodes.push_back(compare(it == previous.end() ? nullptr : &it->second, m));
  }
  if (!subset)
    for (const auto& [name, m] : previous) {
      if (names.count(name)) continue;
      NodeChange c;
      c.name = name;
      c.role = m.role;
      c.status = "removed";
      c.old_serial = m.serial;
      c.details.push_back("left the topology: no bundle is made for it any more");
      plan.nodes.push_back(std::move(c));
    }
  for (const auto& [id, reason] : reissued) {
    size_t slash = id.find('/');
    CertChange cert{id.substr(0, slash), slash == std::string::npos ? "" : id.substr(slash + 1), reason};
    auto node = std::find_if(plan.nodes.begin(), plan.nodes.end(), [&](const NodeChange& n) { return n.name == cert.owner; });
    if (node != plan.nodes.end()) node->certs.push_back(cert);
    else plan.shared_certs.push_back(cert);
  }
  return plan;
}

std::string no_changes_line(const ChangePlan& plan) {
  return "cluster " + plan.cluster + ": no changes (" + plural(plan.nodes.size(), "node") + " as before)";
}

std::string change_plan_text(const ChangePlan& plan) {
  if (!plan.changes() && !plan.refused()) return no_changes_line(plan) + "\n" + rotations_text(plan.inputs.rotations);
  std::string out = "cluster " + plan.cluster + ": " + std::to_string(plan.count("changed")) + " changed, " +
                    std::to_string(plan.count("new")) + " new, " + std::to_string(plan.count("removed")) + " removed, " +
                    std::to_string(plan.count("unchanged")) + " unchanged";
  if (!plan.shared_certs.empty()) out += ", " + plural(plan.shared_certs.size(), "shared certificate") + " (re)issued";
  if (plan.subset) out += " (only the nodes named by --node)";
  if (plan.state_created) out += "; the state will be created";
  if (plan.refused()) out += "; REFUSED: " + plural(plan.inputs.problems.size(), "problem");
  out += "\n";
  for (const auto& n : plan.nodes) {
    if (n.status == "unchanged") continue;
    out += "node " + n.name + " (" + n.role + "): ";
    if (n.status == "removed") {
      out += "removed (its last bundle was serial " + std::to_string(n.old_serial) + ")\n";
      continue;
    }
    if (n.status == "new") {
      size_t secrets = std::count_if(n.files.begin(), n.files.end(), [](const FileChange& f) { return f.cls == "secret"; });
      out += "new, serial " + std::to_string(n.new_serial) + ", " + plural(n.files.size(), "path") + " (" +
             plural(secrets, "secret") + "), " + plural(n.certs.size(), "certificate") + " issued\n";
    } else {
      out += "serial " + std::to_string(n.old_serial) + " -> " + std::to_string(n.new_serial) + "\n";
      for (const auto& d : n.details) out += "  " + d + "\n";
      for (const auto& f : n.files) {
        char mark = f.kind == "added" ? '+' : f.kind == "removed" ? '-' : '~';
        out += std::string("  ") + mark + " " + f.cls + " " + f.path;
        if (f.cls != "directory") out += "  sha256 " + short_sha(f.old_sha256) + " -> " + short_sha(f.new_sha256);
        if (!f.what.empty()) out += "  (" + join(f.what, ", ") + ")";
        out += "\n";
      }
      for (const auto& c : n.certs) out += "  certificate " + c.name + " " + cert_text(c) + "\n";
    }
    if (!n.restart.empty()) out += "  apply restarts: " + join(n.restart) + "\n";
    if (!n.units_removed.empty()) out += "  apply stops: " + join(n.units_removed) + "\n";
  }
  for (const auto& c : plan.shared_certs) out += "shared certificate " + c.owner + "/" + c.name + " " + cert_text(c) + "\n";
  if (!plan.inputs.etcd.empty()) {
    out += "etcd membership:\n";
    for (const auto& l : plan.inputs.etcd) out += "  " + (l.rfind("etcd: ", 0) == 0 ? l.substr(6) : l) + "\n";
  }
  if (!plan.inputs.problems.empty()) {
    out += "refused (nothing may be written until these are fixed):\n";
    for (const auto& p : plan.inputs.problems) out += "  " + p + "\n";
  }
  if (!plan.inputs.order.empty() && plan.changes()) {
    out += "apply order: " + describe_apply_order(plan.inputs.order) + "\n";
  }
  return out + rotations_text(plan.inputs.rotations);
}

json change_plan_json(const ChangePlan& plan) {
  json j;
  j["cluster"] = plan.cluster;
  j["stateCreated"] = plan.state_created;
  j["subset"] = plan.subset;
  j["changes"] = plan.changes();
  j["refused"] = plan.refused();
  j["totals"] = {{"new", plan.count("new")},
                 {"changed", plan.count("changed")},
                 {"removed", plan.count("removed")},
                 {"unchanged", plan.count("unchanged")}};
  auto& nodes = j["nodes"] = json::array();
  for (const auto& n : plan.nodes) {
    json node = {{"name", n.name}, {"role", n.role}, {"status", n.status}};
    node["oldSerial"] = n.old_serial ? json(n.old_serial) : json(nullptr);
    node["newSerial"] = n.new_serial ? json(n.new_serial) : json(nullptr);
    node["details"] = n.details;
    auto& files = node["files"] = json::array();
    for (const auto& f : n.files) {
      files.push_back({{"path", f.path},
                       {"change", f.kind},
                       {"class", f.cls},
                       {"oldSha256", f.old_sha256.empty() ? json(nullptr) : json(f.old_sha256)},
                       {"newSha256", f.new_sha256.empty() ? json(nullptr) : json(f.new_sha256)},
                       {"what", f.what}});
    }
    auto& certs = node["certificates"] = json::array();
    for (const auto& c : n.certs) certs.push_back(cert_json(c));
    node["restart"] = n.restart;
    node["unitsRemoved"] = n.units_removed;
    nodes.push_back(std::move(node));
  }
  auto& shared = j["sharedCertificates"] = json::array();
  for (const auto& c : plan.shared_certs) shared.push_back(cert_json(c));
  j["etcd"] = plan.inputs.etcd;
  j["problems"] = plan.inputs.problems;
  j["order"] = plan.inputs.order;
  auto& rotations = j["rotations"] = json::array();
  for (const auto& r : plan.inputs.rotations)
    rotations.push_back({{"name", r.name},
                         {"kind", to_string(r.kind)},
                         {"phase", r.phase},
                         {"lastPhase", last_phase(r.kind)},
                         {"phaseTitle", phase_title(r.kind, r.phase)},
                         {"phaseStartedAt", r.phase_started_at},
                         {"generated", r.generated},
                         {"advance", advancing(r)}});
  return j;
}

}  // namespace kb
