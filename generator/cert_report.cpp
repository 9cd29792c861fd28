#include "generator/cert_report.h"

#include <algorithm>
#include <map>
#include <ostream>
#include <set>
#include <tuple>

#include "base/error.h"
#include "base/exit_code.h"
#include "base/file_io.h"
#include "base/hash.h"
#include "base/text_escape.h"
#include "base/time.h"
#include "generator/plan.h"
#include "generator/state.h"
#include "topology/topology.h"

namespace kb {

namespace {

using json = nlohmann::json;

constexpr CaName kCaNames[] = {CaName::Kubernetes, CaName::Etcd, CaName::FrontProxy};

std::optional<CertInfo> first_cert(const std::string& source, const std::string& pem) {
  auto certs = certificates_in(source, pem, nullptr);
  if (certs.empty()) return std::nullopt;
  return certs.front();
}

std::string owner_of(const std::string& id) { return id.substr(0, id.find('/')); }

void add_place(CertRow& row, const CertPlace& p) {
  if (std::none_of(row.places.begin(), row.places.end(),
                   [&](const CertPlace& q) { return q.node == p.node && q.source == p.source; }))
    row.places.push_back(p);
}

// A certificate the next gen puts somewhere that the state does not hold: a renewed leaf's
// successor, a new leaf, or a CA the state holds outside ca() (a CA rotation's new CA).
struct Fresh {
  CertInfo info;
  std::vector<CertPlace> places;
};

// Which renewed leaf a fresh certificate replaces: the leaves the next gen renews whose owner carries
// it (or "cluster", the owner of shared ones) and whose subject it repeats; several (etcd-server and
// etcd-peer ask for the same subject) are told apart by the file the last gen wrote at that place.
std::vector<std::string> replaced_ids(const Fresh& f, const std::map<std::string, std::string>& reissued,
                                      const std::map<std::string, CertInfo>& stored_info,
                                      const std::map<std::string, std::string>& stored_pem, const State& state) {
  std::set<std::string> carriers;
  for (const auto& p : f.places) carriers.insert(p.node);
  std::vector<std::string> ids;
  for (const auto& [id, reason] : reissued) {
    auto it = stored_info.find(id);
    if (it == stored_info.end()) continue;
    std::string owner = owner_of(id);
    if (owner != "cluster" && !carriers.count(owner)) continue;
    if (it->second.subject == f.info.subject) ids.push_back(id);
  }
  if (ids.size() <= 1) return ids;
  std::vector<std::string> by_file;
  for (const auto& id : ids) {
    std::string sha = sha256_hex(stored_pem.at(id));
    bool match = std::any_of(f.places.begin(), f.places.end(), [&](const CertPlace& p) {
      auto m = state.previous_manifests().find(p.node);
      if (m == state.previous_manifests().end()) return false;
      return std::any_of(m->second.entries.begin(), m->second.entries.end(),
                         [&](const ManifestEntry& e) { return e.path == p.source && e.sha256 == sha; });
    });
    if (match) by_file.push_back(id);
  }
  return by_file.size() == 1 ? by_file : ids;  // undecided: every candidate gets the places
}

void set_status(CertRow& row, const CertReport& r) {
  row.days_left = days_left(row.info.not_after, r.now);
  if (!row.current) row.status = "new";
  else if (row.days_left < 0) row.status = "expired";
  else if (row.days_left <= r.renew_before_days) row.status = "renew";
  else row.status = "ok";
}

std::string places_text(const std::vector<CertPlace>& places) {
  std::set<std::string> nodes;
  for (const auto& p : places) nodes.insert(p.node.empty() ? "(admin.kubeconfig)" : p.node);
  std::string out;
  size_t shown = 0;
  for (const auto& n : nodes) {
    if (shown == 8) {
      out += " and " + std::to_string(nodes.size() - shown) + " more";
      break;
    }
    out += (shown++ ? " " : "") + n;
  }
  return out;
}

std::string row_label(const CertRow& r) {
  if (r.ca) return "CA " + (r.id.empty() ? r.info.subject : r.id);
  return r.id.empty() ? "(next gen) " + r.info.subject : r.id;
}

}  // namespace

size_t CertReport::count(const std::string& status) const {
  return static_cast<size_t>(std::count_if(rows.begin(), rows.end(), [&](const CertRow& r) { return r.status == status; }));
}

int CertReport::exit_code() const {
  bool attention = std::any_of(rows.begin(), rows.end(), [](const CertRow& r) {
    return r.current && (r.ca || !r.places.empty()) && (r.status == "renew" || r.status == "expired");
  });
  return attention ? kCertsExitAttention : kExitOk;
}

CertReport make_cert_report(const Topology& topology, const State& state, const ClusterPlan& plan,
                            const std::map<std::string, std::string>& stored, std::time_t now) {
  CertReport r;
  r.cluster = topology.cluster.name;
  r.now = now;
  r.renew_before_days = topology.cluster.renew_before_days;
  r.state_exists = !state.created();
  const std::map<std::string, std::string> reissued = state.reissued();

  std::map<std::string, size_t> by_fingerprint;  // -> row
  for (CaName which : kCaNames) {
    const CertificateAuthority& ca = state.ca(which);
    auto info = first_cert(state.dir() + "/ca/" + ca.name + ".crt", ca.cert_pem);
    if (!info) continue;
    CertRow row;
    row.id = ca.name;
    row.ca = true;
    row.info = *info;
    by_fingerprint[info->sha256_fingerprint] = r.rows.size();
    r.rows.push_back(std::move(row));
  }
  std::map<std::string, CertInfo> stored_info;
  for (const auto& [id, pem] : stored) {
    auto info = first_cert(state.dir() + "/issued.json#" + id, pem);
    if (!info) continue;  // open() refuses a damaged entry before we get here
    stored_info[id] = *info;
    CertRow row;
    row.id = id;
    row.info = *info;
    by_fingerprint.emplace(info->sha256_fingerprint, r.rows.size());
    r.rows.push_back(std::move(row));
  }

  // Where the next gen puts each certificate.
  std::map<std::string, Fresh> fresh;
  std::vector<std::string> fresh_order;
  auto place_all = [&](const std::string& node, const std::string& path, const std::string& content) {
    for (CertInfo& c : certificates_in(path, content, nullptr)) {
      CertPlace place{node, c.source};
      if (auto it = by_fingerprint.find(c.sha256_fingerprint); it != by_fingerprint.end()) {
        add_place(r.rows[it->second], place);
        continue;
      }
      auto [f, inserted] = fresh.try_emplace(c.sha256_fingerprint);
      if (inserted) {
        f->second.info = std::move(c);
        fresh_order.push_back(f->first);
      }
      f->second.places.push_back(place);
    }
  };
  for (const NodePlan& n : plan.nodes)
    for (const PlannedFile& f : n.files)
      if (f.source_path.empty() && f.cls != FileClass::Binary) place_all(n.node.name, f.path, f.content);
  place_all("", "admin.kubeconfig", plan.admin_kubeconfig);

  std::map<std::string, size_t> row_of_id;
  for (size_t i = 0; i < r.rows.size(); ++i) row_of_id[r.rows[i].id] = i;
  std::vector<CertRow> new_rows;
  for (const auto& fp : fresh_order) {
    const Fresh& f = fresh.at(fp);
    std::vector<std::string> ids = f.info.is_ca ? std::vector<std::string>{} : replaced_ids(f, reissued, stored_info, stored, state);
    for (const auto& id : ids)
      for (const auto& p : f.places) add_place(r.rows[row_of_id.at(id)], p);
    if (!ids.empty()) continue;
    CertRow row;
    row.ca = f.info.is_ca;
    row.current = f.info.is_ca;  // a CA the state holds (a rotation's); a leaf the next gen issues
    row.info = f.info;
    row.places = f.places;
    // Named when exactly one new leaf of a carrier fits.
    std::set<std::string> carriers;
    for (const auto& p : f.places) carriers.insert(p.node);
    std::vector<std::string> candidates;
    for (const auto& [id, reason] : reissued)
      if (!stored.count(id) && (owner_of(id) == "cluster" || carriers.count(owner_of(id)))) candidates.push_back(id);
    if (!row.ca && candidates.size() == 1) row.id = candidates[0];
    new_rows.push_back(std::move(row));
  }
  for (auto& row : new_rows) r.rows.push_back(std::move(row));

  for (CertRow& row : r.rows) {
    set_status(row, r);
    if (!row.current) {
      row.next_gen = "issues it (new)";
    } else if (row.ca) {
      row.next_gen = row.status == "ok" ? "keeps it"
                                         : "keeps it: gen never renews a CA; rotate it (kbundle rotate ca --ca " +
                                               (row.id.empty() ? std::string("NAME") : row.id) + ")";
    } else if (auto it = reissued.find(row.id); it != reissued.end()) {
      row.next_gen = "renews it: " + it->second;
    } else if (row.places.empty()) {
      row.next_gen = "puts it in no bundle (its owner is not in the topology); the state keeps it";
    } else {
      row.next_gen = "keeps it";
    }
    std::sort(row.places.begin(), row.places.end(),
              [](const CertPlace& a, const CertPlace& b) { return std::tie(a.node, a.source) < std::tie(b.node, b.source); });
  }
  return r;
}

std::string cert_report_text(const CertReport& r) {
  std::string out = "cluster " + r.cluster + ": " + std::to_string(r.rows.size()) + " certificates on " +
                    rfc3339_utc(r.now) + " (renewBeforeDays " + std::to_string(r.renew_before_days) + "): " +
                    std::to_string(r.count("ok")) + " ok, " + std::to_string(r.count("renew")) + " inside the renewal window, " +
                    std::to_string(r.count("expired")) + " expired, " + std::to_string(r.count("new")) + " new";
  if (!r.state_exists) out += "; no state yet: the first gen issues every certificate";
  out += "\n";
  for (const CertRow& row : r.rows) {
    const CertInfo& c = row.info;
    out += escape_text(row_label(row)) + ": " + escape_text(c.subject);
    if (c.issuer != c.subject) out += " (issuer " + escape_text(c.issuer) + ")";
    out += "\n";
    std::string sans;
    for (const auto& d : c.dns_names) sans += (sans.empty() ? "" : " ") + ("DNS:" + d);
    for (const auto& ip : c.ip_addresses) sans += (sans.empty() ? "" : " ") + ("IP:" + ip);
    if (!sans.empty()) out += "  SANs: " + escape_text(sans) + "\n";
    std::string state = row.status == "expired" ? "EXPIRED " + std::to_string(-row.days_left) + " days ago"
                        : row.status == "renew" ? std::to_string(row.days_left) + " days left, INSIDE the renewal window"
                                                : std::to_string(row.days_left) + " days left";
    out += "  " + std::string(row.current ? "expires " : "would expire ") + rfc3339_utc(c.not_after) + " (" + state +
           "); serial " + c.serial_hex + ", sha256 " + c.sha256_fingerprint.substr(0, 16) + "\n";
    if (!row.places.empty()) out += "  nodes: " + escape_text(places_text(row.places)) + "\n";
    out += "  next gen: " + escape_text(row.next_gen) + "\n";
  }
  if (r.exit_code() != kExitOk)
    out += "attention: certificates inside the renewal window or expired: run `kbundle gen` and apply the bundles on "
           "every node (a CA: `kbundle rotate ca`); docs/certs.md\n";
  return out;
}

json cert_report_json(const CertReport& r) {
  json j;
  j["cluster"] = r.cluster;
  j["now"] = rfc3339_utc(r.now);
  j["renewBeforeDays"] = r.renew_before_days;
  j["stateExists"] = r.state_exists;
  j["totals"] = {{"ok", r.count("ok")}, {"renew", r.count("renew")}, {"expired", r.count("expired")}, {"new", r.count("new")}};
  j["attention"] = r.exit_code() != kExitOk;
  auto& rows = j["certificates"] = json::array();
  for (const CertRow& row : r.rows) {
    const CertInfo& c = row.info;
    json places = json::array();
    std::set<std::string> nodes;
    for (const auto& p : row.places) {
      places.push_back({{"node", p.node.empty() ? json(nullptr) : json(p.node)}, {"source", p.source}});
      if (!p.node.empty()) nodes.insert(p.node);
    }
    rows.push_back({{"id", row.id.empty() ? json(nullptr) : json(row.id)},
                    {"ca", row.ca},
                    {"current", row.current},
                    {"subject", c.subject},
                    {"issuer", c.issuer},
                    {"serial", c.serial_hex},
                    {"sha256", c.sha256_fingerprint},
                    {"dnsNames", c.dns_names},
                    {"ipAddresses", c.ip_addresses},
                    {"notBefore", rfc3339_utc(c.not_before)},
                    {"notAfter", rfc3339_utc(c.not_after)},
                    {"daysLeft", row.days_left},
                    {"status", row.status},
                    {"nodes", nodes},
                    {"places", places},
                    {"nextGen", row.next_gen}});
  }
  return j;
}

int run_certs(const CertsOptions& o, std::ostream& out, std::ostream& err) {
  TopologyResult t = load_topology(o.topology_path);
  for (const Diagnostic& d : t.diagnostics) err << d.format() << "\n";
  if (!t.ok()) return kExitInvalidInput;
  auto state = State::open_read_only(o.state_dir, *t.topology, o.now);
  // What the state holds, taken before the plan issues or renews anything in memory.
  std::map<std::string, std::string> stored = state->leaf_certificates();
  ClusterPlan plan = make_cluster_plan(*t.topology, *state);
  CertReport report = make_cert_report(*t.topology, *state, plan, stored, o.now);
  if (o.json) out << cert_report_json(report).dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  else out << "kbundle certs: " << cert_report_text(report);
  return report.exit_code();
}

}  // namespace kb
