#include "topology/lint.h"

#include <yaml-cpp/yaml.h>

namespace kb {

namespace {

// One topology switch and the benchmark check it decides.
struct Switch {
  const char* key;  // under cluster.hardening
  bool Hardening::*field;
  const char* check_id;
  const char* title;
  bool scored;
  const char* why;
};

constexpr Switch kSwitches[] = {
    {"denyServiceExternalIPs", &Hardening::deny_service_external_ips, "1.2.3",
     "Ensure that the --DenyServiceExternalIPs is set", false,
     "Services may then set spec.externalIPs and capture traffic to any address (CVE-2020-8554); turn it off "
     "only if you route external IPs to Services on purpose"},
    {"alwaysPullImages", &Hardening::always_pull_images, "1.2.11",
     "Ensure that the admission control plugin AlwaysPullImages is set", false,
     "a pod may then start from an image already on the node without the registry checking its pull "
     "credentials; right for air-gapped clusters whose images are loaded onto the nodes in advance"},
};

// Where `cluster.<section>.<key>` is written, if it is.
std::pair<int, int> place_of(const std::string& yaml_text, const char* section, const char* key) {
  try {
    YAML::Node root = YAML::Load(yaml_text);
    YAML::Node v = root["cluster"][section][key];
    if (v && !v.Mark().is_null()) return {v.Mark().line + 1, v.Mark().column + 1};
  } catch (const YAML::Exception&) {  // the topology parsed already; a place is only a nicety
  }
  return {0, 0};
}

}  // namespace

std::vector<LintFinding> lint_topology(const Topology& topology, const std::string& yaml_text) {
  std::vector<LintFinding> out;
  for (const Switch& s : kSwitches) {
    if (topology.cluster.hardening.*(s.field)) continue;
    LintFinding f;
    f.check_id = s.check_id;
    f.title = s.title;
    f.scored = s.scored;
    f.setting = std::string("cluster.hardening.") + s.key + ": false";
    f.why = s.why;
    std::tie(f.line, f.column) = place_of(yaml_text, "hardening", s.key);
    out.push_back(std::move(f));
  }
  if (topology.cluster.encryption_provider == EncryptionProvider::Aesgcm) {
    LintFinding f;
    f.check_id = "1.2.28";
    f.title = "Ensure that encryption providers are appropriately configured";
    f.setting = "cluster.encryption.provider: aesgcm";
    f.why = "the benchmark accepts aescbc, kms or secretbox; aesgcm needs its key rotated well before 2^32 "
            "writes, so prefer aescbc or secretbox";
    std::tie(f.line, f.column) = place_of(yaml_text, "encryption", "provider");
    // Benchmark order: 1.2.28 comes after the admission plugins.
    out.push_back(std::move(f));
  }
  // Not a CIS check (check_id empty): the nodes' and the API's exposure on AWS (docs/aws.md).
  if (topology.aws && topology.aws->admin_cidr.ends_with("/0")) {
    LintFinding f;
    f.setting = "aws.adminCIDR " + topology.aws->admin_cidr;
    f.why = "opens SSH, the Kubernetes API and NodePorts to the whole internet; give your own network's CIDR";
    try {
      YAML::Node v = YAML::Load(yaml_text)["aws"]["adminCIDR"];
      if (v && !v.Mark().is_null()) f.line = v.Mark().line + 1, f.column = v.Mark().column + 1;
    } catch (const YAML::Exception&) {  // a place is only a nicety
    }
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace kb
