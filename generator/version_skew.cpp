#include "generator/version_skew.h"

#include <algorithm>
#include <optional>

#include "base/error.h"
#include "base/release_version.h"
#include "base/text_escape.h"
#include "binaries/catalog.h"

namespace kb {

namespace {

// Kubelet and kube-proxy may be up to this many minors older than the oldest apiserver (since 1.28).
constexpr int64_t kMaxKubeletMinorsBehind = 3;

bool runs_apiserver(const std::string& role) { return role == "control-plane" || role == "both"; }

struct Parsed {
  std::string node;
  std::string role;
  ReleaseVersion kubernetes;
  std::optional<ReleaseVersion> etcd;
};

// Resolving a catalog entry parses its template: once per release, not once per node.
class EtcdOf {
 public:
  const std::string& operator()(const std::string& role, const std::string& kubernetes_version) {
    static const std::string none;
    if (!runs_apiserver(role)) return none;
    auto it = known_.find(kubernetes_version);
    if (it != known_.end()) return it->second;
    std::string etcd;
    try {
      etcd = catalog_entry(kubernetes_version).etcd_version;
    } catch (const Error&) {
      // a release this catalog does not know: no etcd rule for it
    }
    return known_.emplace(kubernetes_version, etcd).first->second;
  }

 private:
  std::map<std::string, std::string> known_;
};

}  // namespace

std::map<std::string, NodeVersion> versions_before(const std::map<std::string, Manifest>& previous) {
  std::map<std::string, NodeVersion> out;
  EtcdOf etcd_of;
  for (const auto& [name, m] : previous) out[name] = {m.role, m.kubernetes_version, etcd_of(m.role, m.kubernetes_version)};
  return out;
}

std::map<std::string, NodeVersion> versions_after(const Topology& t, const std::vector<std::string>& only,
                                                  const std::map<std::string, NodeVersion>& before) {
  std::map<std::string, NodeVersion> out;
  EtcdOf etcd_of;
  for (const auto& n : t.nodes) {
    bool regenerated = only.empty() || std::find(only.begin(), only.end(), n.name) != only.end();
    if (regenerated) {
      std::string role = to_string(n.role);
      out[n.name] = {role, t.cluster.kubernetes_version, etcd_of(role, t.cluster.kubernetes_version)};
    } else if (auto b = before.find(n.name); b != before.end()) {
      out[n.name] = b->second;
    }
  }
  return out;
}

std::vector<std::string> version_skew_problems(const std::map<std::string, NodeVersion>& before,
                                               const std::map<std::string, NodeVersion>& after) {
  std::vector<std::string> problems;
  auto say = [&](std::string p) {
    if (std::find(problems.begin(), problems.end(), p) == problems.end()) problems.push_back(std::move(p));
  };
  // A version this run would write: the topology's fix. A recorded one: only the record can be wrong.
  auto parse = [&](const std::string& node, const char* what, const std::string& text) -> std::optional<ReleaseVersion> {
    auto v = parse_release_version(text);
    if (!v)
      say("node " + node + ": " + what + " version '" + escape_text(text) +
          "' is not vX.Y.Z; regenerate the node with a supported kubernetesVersion");
    return v;
  };
  auto parse_recorded = [&](const std::string& node, const char* what, const std::string& text) -> std::optional<ReleaseVersion> {
    auto v = parse_release_version(text);
    if (!v)
      say("node " + node + ": the recorded " + what + " version '" + escape_text(text) + "' (the state's manifests/" + node +
          ".json) is not vX.Y.Z; if that record is wrong, remove the file and run gen again");
    return v;
  };

  // 1. Each node against its own previous version.
  for (const auto& [name, a] : after) {
    auto b = before.find(name);
    if (b == before.end()) continue;  // a new node: only the cluster rules below apply
    auto kb_ = parse_recorded(name, "Kubernetes", b->second.kubernetes);
    auto ka = a.kubernetes == b->second.kubernetes ? kb_ : parse(name, "Kubernetes", a.kubernetes);
    if (kb_ && ka) {
      int64_t step = ka->minors_after(*kb_);
      if (step < 0)
        problems.push_back("node " + name + ": Kubernetes " + kb_->str() + " -> " + ka->str() + " downgrades the minor version (" +
                           kb_->minor_string() + " -> " + ka->minor_string() +
                           "), which the version skew policy does not support; set cluster.kubernetesVersion to a " +
                           kb_->minor_string() + ".x release (or newer)");
      else if (step > 1)
        problems.push_back("node " + name + ": Kubernetes " + kb_->str() + " -> " + ka->str() +
                           " skips a minor version; upgrade one minor at a time: first to a v" + std::to_string(kb_->major) +
                           "." + std::to_string(kb_->minor + 1) + ".x release on every node, then to " + ka->minor_string());
    }
    if (!b->second.etcd.empty() && !a.etcd.empty()) {
      auto eb = parse_recorded(name, "etcd", b->second.etcd);
      auto ea = a.etcd == b->second.etcd ? eb : parse(name, "etcd", a.etcd);
      if (eb && ea) {
        int64_t step = ea->minors_after(*eb);
        if (step < 0)
          problems.push_back("node " + name + ": etcd " + eb->str() + " -> " + ea->str() +
                             " is a downgrade of an etcd minor, which etcd does not support by replacing the binary; keep a "
                             "Kubernetes release whose etcd is " + eb->minor_string() + " or newer");
        else if (step > 1)
          problems.push_back("node " + name + ": etcd " + eb->str() + " -> " + ea->str() +
                             " skips an etcd minor; etcd is upgraded one minor at a time: go through a release with etcd v" +
                             std::to_string(eb->major) + "." + std::to_string(eb->minor + 1) + ".x first");
      }
    }
  }

  // 2. The whole cluster after this gen (nodes not regenerated keep their version).
  std::vector<Parsed> apiservers, kubelets_only;
  for (const auto& [name, a] : after) {
    // A node that keeps its recorded version: its record was judged in step 1.
    auto b = before.find(name);
    bool kept = b != before.end() && b->second.kubernetes == a.kubernetes;
    auto k = kept ? parse_release_version(a.kubernetes) : parse(name, "Kubernetes", a.kubernetes);
    if (!k) continue;
    Parsed p{name, a.role, *k, std::nullopt};
    if (!a.etcd.empty()) p.etcd = kept ? parse_release_version(a.etcd) : parse(name, "etcd", a.etcd);
    // A "both" node runs its kubelet beside its own apiserver and is upgraded as a control-plane
    // node (kubeadm likewise upgrades each control-plane node's kubelet with it).
    (runs_apiserver(a.role) ? apiservers : kubelets_only).push_back(std::move(p));
  }
  if (apiservers.empty()) return problems;
  const Parsed* oldest = &apiservers.front();
  const Parsed* newest = &apiservers.front();
  for (const auto& p : apiservers) {
    if (p.kubernetes < oldest->kubernetes) oldest = &p;
    if (p.kubernetes > newest->kubernetes) newest = &p;
  }
  if (newest->kubernetes.minors_after(oldest->kubernetes) > 1)
    problems.push_back("control-plane nodes " + newest->node + " (" + newest->kubernetes.str() + ") and " + oldest->node + " (" +
                       oldest->kubernetes.str() +
                       ") are more than one minor apart; the newest and oldest kube-apiserver must be within one minor: "
                       "upgrade " + oldest->node + " first");
  for (const auto& w : kubelets_only) {
    if (w.kubernetes.minors_after(oldest->kubernetes) > 0)
      problems.push_back("node " + w.node + ": kubelet and kube-proxy " + w.kubernetes.str() + " would be newer than kube-apiserver " +
                         oldest->kubernetes.str() + " on " + oldest->node +
                         "; upgrade the control-plane nodes to " + w.kubernetes.minor_string() +
                         " first (gen them, roll them out), then the workers");
    else if (newest->kubernetes.minors_after(w.kubernetes) > kMaxKubeletMinorsBehind)
      problems.push_back("node " + w.node + ": kubelet and kube-proxy " + w.kubernetes.str() + " would be more than " +
                         std::to_string(kMaxKubeletMinorsBehind) + " minors older than kube-apiserver " +
                         newest->kubernetes.str() + " on " + newest->node + "; upgrade " + w.node + " first");
  }
  const Parsed* etcd_old = nullptr;
  const Parsed* etcd_new = nullptr;
  for (const auto& p : apiservers) {
    if (!p.etcd) continue;
    if (!etcd_old || *p.etcd < *etcd_old->etcd) etcd_old = &p;
    if (!etcd_new || *p.etcd > *etcd_new->etcd) etcd_new = &p;
  }
  if (etcd_old && etcd_new->etcd->minors_after(*etcd_old->etcd) > 1)
    problems.push_back("etcd members " + etcd_new->node + " (" + etcd_new->etcd->str() + ") and " + etcd_old->node + " (" +
                       etcd_old->etcd->str() + ") are more than one etcd minor apart; upgrade " + etcd_old->node + " first");
  return problems;
}

}  // namespace kb
