#pragma once
// `kbundle certs` (docs/certs.md): every certificate of the cluster, when it expires, which nodes
// carry it and whether the next gen renews it and why. Made from the state opened read-only and the
// cluster plan run in memory, as `kbundle plan` does: nothing is written, not even a lock file.
//
// Rows: the state's CAs; every leaf the state has issued (its current certificate, as the nodes got
// it from the last gen), placed on the nodes by the certificate the next gen puts there; and any
// certificate the next gen adds that the state does not hold yet (a new node, a new state).

#include <ctime>
#include <iosfwd>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bundles/cert_inventory.h"

namespace kb {

class State;
struct ClusterPlan;
struct Topology;

struct CertPlace {
  std::string node;    // "" for the workstation's admin.kubeconfig
  std::string source;  // CertInfo::source: "/var/lib/kubelet/kubeconfig#users[0].client-certificate-data"
};

struct CertRow {
  std::string id;    // "kubernetes-ca" for a CA, "<owner>/<name>" for a leaf the state holds ("control-0/etcd-server",
                     // "cluster/admin"), "" for one the next gen issues anew
  bool ca = false;
  CertInfo info;     // the current certificate (for a new one: the one the next gen would issue)
  std::vector<CertPlace> places;  // where the next gen puts this certificate (or, renewed, its successor)
  bool current = true;            // false: not issued yet, the next gen issues it
  long days_left = 0;
  std::string status;             // "ok", "renew" (inside renewBeforeDays), "expired", "new"
  std::string next_gen;           // what the next gen does: "keeps it", "renews it: <reason>", "issues it (new)", ...
};

struct CertReport {
  std::string cluster;
  std::time_t now = 0;
  int renew_before_days = 0;
  bool state_exists = false;
  std::vector<CertRow> rows;  // CAs, then leaves by id, then new ones
  size_t count(const std::string& status) const;
  // kExitOk, or kCertsExitAttention when a certificate in a bundle (or a CA) is inside the window or expired.
  int exit_code() const;
};

inline constexpr int kCertsExitAttention = 2;

// `stored`: the leaves the state holds, "<owner>/<name>" -> certificate PEM (State::leaf_certificates()
// before the plan was made).
// `state` must be the one `plan` was made with (its reissued() names what the next gen renews).
CertReport make_cert_report(const Topology& topology, const State& state, const ClusterPlan& plan,
                            const std::map<std::string, std::string>& stored, std::time_t now);

std::string cert_report_text(const CertReport& report);
nlohmann::json cert_report_json(const CertReport& report);

struct CertsOptions {
  std::string topology_path;
  std::string state_dir = "state";
  bool json = false;
  std::time_t now = 0;
};
// Exit codes: 0 every certificate fine, 2 (kCertsExitAttention) one inside the renewal window or
// expired, 3 an invalid topology, 1 any other error (thrown as kb::Error).
int run_certs(const CertsOptions& options, std::ostream& out, std::ostream& err);

}  // namespace kb
