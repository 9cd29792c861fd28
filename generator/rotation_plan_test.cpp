// Each CA rotation phase's effect on the plan of the example cluster: which files change between
// two phases, and which CAs each trust file and kubeconfig holds. Phases are driven as `kbundle
// rotate ca` and gen drive them: a plan, then the state committed (generated), then advance.
#include <openssl/x509.h>

#include <catch2/catch.hpp>
#include <ctime>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/file_io.h"
#include "base/hash.h"
#include "base/temp_dir.h"
#include "generator/node_paths.h"
#include "generator/plan.h"
#include "generator/rotation.h"
#include "generator/state.h"

using namespace kb;

namespace {

const std::time_t kNow = std::time(nullptr);

Topology example() {
  TopologyResult t = parse_topology(read_file(std::string(KB_SOURCE_DIR) + "/examples/aws-ha.yaml"), "aws-ha.yaml");
  REQUIRE(t.ok());
  return *t.topology;
}

using Files = std::map<std::string, std::string>;  // "node:path" (or "admin.kubeconfig") -> content

// One gen: the plan of every node, then the state committed as gen commits it.
Files generate(const std::string& dir, const Topology& t) {
  auto s = State::open(dir, t, kNow);
  ClusterPlan plan = make_cluster_plan(t, *s);
  Files out;
  for (const auto& n : plan.nodes)
    for (const auto& f : n.files) out[n.node.name + ":" + f.path] = f.content;
  out["admin.kubeconfig"] = plan.admin_kubeconfig;
  s->mark_rotations_generated();
  s->commit();
  return out;
}

std::set<std::string> changed(const Files& a, const Files& b) {
  std::set<std::string> out;
  for (const auto& [k, v] : a)
    if (!b.count(k) || b.at(k) != v) out.insert(k);
  for (const auto& [k, v] : b)
    if (!a.count(k)) out.insert(k);
  return out;
}

// The fingerprints of the certificates in a PEM text, in order.
std::vector<std::string> certs_in(const std::string& pem) {
  std::vector<std::string> out;
  const std::string begin = "-----BEGIN CERTIFICATE-----", end = "-----END CERTIFICATE-----";
  for (size_t at = pem.find(begin); at != std::string::npos; at = pem.find(begin, at + 1)) {
    size_t stop = pem.find(end, at);
    REQUIRE(stop != std::string::npos);
    out.push_back(cert_fingerprint(parse_cert(pem.substr(at, stop + end.size() - at), "test").get()));
  }
  return out;
}

// A kubeconfig's certificate-authority-data, decoded.
std::string kubeconfig_ca(const std::string& kubeconfig) {
  const std::string key = "certificate-authority-data: ";
  size_t at = kubeconfig.find(key);
  REQUIRE(at != std::string::npos);
  size_t eol = kubeconfig.find('\n', at);
  auto pem = base64_decode(kubeconfig.substr(at + key.size(), eol - at - key.size()));
  REQUIRE(pem);
  return *pem;
}

// Whether `ca_pem` signed the (first) certificate in `leaf_pem`.
bool issued_by(const std::string& leaf_pem, const std::string& ca_pem) {
  X509Ptr leaf = parse_cert(leaf_pem, "leaf"), ca = parse_cert(ca_pem, "ca");
  return X509_verify(leaf.get(), X509_get0_pubkey(ca.get())) == 1;
}

void advance(const std::string& dir, const Topology& t, const std::string& name, int phase) {
  auto s = State::open(dir, t, kNow);
  s->set_rotation({RotationKind::Ca, name, phase, "2026-12-03T12:00:00Z", false});
  s->commit();
}

std::set<std::string> only_paths(const std::set<std::string>& keys) {
  std::set<std::string> out;
  for (const auto& k : keys) out.insert(k.substr(k.find(':') + 1));
  return out;
}

}  // namespace

TEST_CASE("CA rotation phases: what each phase's plan changes, and whom each file trusts", "[rotation][plan]") {
  const Topology t = example();
  struct Case {
    CaName which;
    std::vector<std::string> trust;           // trust files (every node that has them)
    std::set<std::string> phase1, phase2, phase3, completed;  // paths that change entering each
    std::vector<std::string> leaves;          // certificates the CA issues (node:path)
  };
  const std::set<std::string> kubeconfigs = {paths::kControllerManagerKubeconfig, paths::kSchedulerKubeconfig,
                                             paths::kAdminKubeconfig, paths::kKubeletKubeconfig,
                                             paths::kKubeProxyKubeconfig, "admin.kubeconfig"};
  auto with = [](std::set<std::string> a, const std::set<std::string>& b) {
    a.insert(b.begin(), b.end());
    return a;
  };
  const std::string cm_unit = "/etc/systemd/system/kube-controller-manager.service";
  const std::vector<Case> cases = {
      {CaName::Etcd,
       {paths::kEtcdCaCert, paths::kEtcdCaCertForApiserver},
       {paths::kEtcdCaCert, paths::kEtcdCaCertForApiserver},
       {paths::kEtcdServerCert, paths::kEtcdServerKey, paths::kEtcdPeerCert, paths::kEtcdPeerKey,
        paths::kApiserverEtcdClientCert, paths::kApiserverEtcdClientKey},
       {paths::kEtcdCaCert, paths::kEtcdCaCertForApiserver},
       {},
       {"control-0:" + std::string(paths::kEtcdServerCert), "control-1:" + std::string(paths::kEtcdPeerCert),
        "control-2:" + std::string(paths::kApiserverEtcdClientCert)}},
      {CaName::FrontProxy,
       {paths::kFrontProxyCaCert},
       {paths::kFrontProxyCaCert},
       {paths::kFrontProxyClientCert, paths::kFrontProxyClientKey},
       {paths::kFrontProxyCaCert},
       {},
       {"control-0:" + std::string(paths::kFrontProxyClientCert)}},
      {CaName::Kubernetes,
       {paths::kCaCert},
       // Phase 1: trust (and every kubeconfig's CA data); the signing cert moves to its own file.
       with({paths::kCaCert, paths::kCaSigningCert, cm_unit}, kubeconfigs),
       // Phase 2: the signing pair and every leaf and kubeconfig client cert.
       with({paths::kCaKey, paths::kCaSigningCert, paths::kApiserverCert, paths::kApiserverKey,
             paths::kApiserverKubeletClientCert, paths::kApiserverKubeletClientKey, paths::kKubeletCert,
             paths::kKubeletKey, paths::kBootstrapCert, paths::kBootstrapKey},
            kubeconfigs),
       with({paths::kCaCert}, kubeconfigs),
       // Completing: the separate signing cert goes and the flag names ca.crt again.
       {paths::kCaSigningCert, cm_unit},
       {"control-0:" + std::string(paths::kApiserverCert), "worker-1:" + std::string(paths::kKubeletCert),
        "control-0:" + std::string(paths::kBootstrapCert)}},
  };
  for (const auto& c : cases) {
    const std::string name = ca_name(c.which);
    DYNAMIC_SECTION(name) {
      TempDir tmp;
      const std::string dir = tmp / "state";
      const Files p0 = generate(dir, t);
      std::string old_ca, new_ca;
      {
        auto s = State::open(dir, t, kNow);
        old_ca = s->ca(c.which).cert_pem;
        start_ca_rotation(*s, c.which, t.cluster.key_type, t.cluster.ca_validity_days, kNow);
        s->set_rotation({RotationKind::Ca, name, 1, "2026-12-03T11:00:00Z", false});
        s->commit();
        new_ca = *s->rotation_file(ca_rotation_cert_file(c.which));
      }
      const std::vector<std::string> both = {certs_in(old_ca)[0], certs_in(new_ca)[0]};
      const std::vector<std::string> only_old = {both[0]}, only_new = {both[1]};
      auto trust_is = [&](const Files& f, const std::vector<std::string>& want) {
        for (const auto& [k, v] : f) {
          const std::string path = k.substr(k.find(':') + 1);
          for (const auto& tp : c.trust)
            if (path == tp) {
              INFO(k);
              CHECK(certs_in(v) == want);
            }
          if (c.which == CaName::Kubernetes && kubeconfigs.count(path)) {
            INFO(k);
            CHECK(certs_in(kubeconfig_ca(v)) == want);
          }
        }
      };
      auto leaves_by = [&](const Files& f, const std::string& ca) {
        for (const auto& l : c.leaves) {
          INFO(l);
          REQUIRE(f.count(l));
          CHECK(issued_by(f.at(l), ca));
        }
      };
      trust_is(p0, only_old);

      const Files p1 = generate(dir, t);
      CHECK(only_paths(changed(p0, p1)) == c.phase1);
      trust_is(p1, both);
      leaves_by(p1, old_ca);

      advance(dir, t, name, 2);
      const Files p2 = generate(dir, t);
      CHECK(only_paths(changed(p1, p2)) == c.phase2);
      trust_is(p2, both);
      leaves_by(p2, new_ca);
      if (c.which == CaName::Kubernetes) {
        // The controller-manager's signing pair is the new CA alone, its flag names that file.
        CHECK(certs_in(p2.at("control-0:" + std::string(paths::kCaSigningCert))) == only_new);
        CHECK(p2.at("control-0:" + cm_unit).find(std::string("--cluster-signing-cert-file=") + paths::kCaSigningCert) !=
              std::string::npos);
        CHECK(p2.at("control-0:" + cm_unit).find(std::string("--root-ca-file=") + paths::kCaCert) != std::string::npos);
        CHECK(certs_in(p1.at("control-0:" + std::string(paths::kCaSigningCert))) == only_old);
      }

      advance(dir, t, name, 3);
      const Files p3 = generate(dir, t);
      CHECK(only_paths(changed(p2, p3)) == c.phase3);
      trust_is(p3, only_new);
      leaves_by(p3, new_ca);

      {
        auto s = State::open(dir, t, kNow);
        complete_ca_rotation(*s, c.which);
        s->clear_rotation(name);
        s->commit();
      }
      const Files done = generate(dir, t);
      CHECK(only_paths(changed(p3, done)) == c.completed);
      trust_is(done, only_new);
      leaves_by(done, new_ca);
      // Back to today's shape: the same paths as before the rotation.
      CHECK(only_paths(changed(p0, done)).count(paths::kCaSigningCert) == 0);
      {
        auto s = State::open(dir, t, kNow);
        CHECK(s->ca(c.which).cert_pem == new_ca);
        CHECK(s->rotations().empty());
      }
      // Nothing else moves: a second gen is byte-identical.
      CHECK(changed(done, generate(dir, t)).empty());
    }
  }
}

TEST_CASE("CA rotation aborted in phase 1: the next plan is the one before the rotation", "[rotation][plan]") {
  const Topology t = example();
  TempDir tmp;
  const std::string dir = tmp / "state";
  const Files before = generate(dir, t);
  {
    auto s = State::open(dir, t, kNow);
    start_ca_rotation(*s, CaName::Kubernetes, t.cluster.key_type, t.cluster.ca_validity_days, kNow);
    s->set_rotation({RotationKind::Ca, "kubernetes-ca", 1, "2026-12-03T11:00:00Z", false});
    s->commit();
  }
  CHECK_FALSE(changed(before, generate(dir, t)).empty());
  {
    auto s = State::open(dir, t, kNow);
    abort_ca_rotation(*s, CaName::Kubernetes);
    s->clear_rotation("kubernetes-ca");
    s->commit();
  }
  CHECK(changed(before, generate(dir, t)).empty());
}
