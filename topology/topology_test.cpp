#include "topology/topology.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using kb::Cidr;
using kb::Diagnostic;
using kb::parse_topology;

namespace {

// A minimal valid topology; tests append nodes or lines to it.
const std::string kMinimalCluster =
    "cluster:\n"
    "  name: kthw\n"
    "  apiEndpoint:\n"
    "    host: api.kthw.example.com\n";

std::string node_yaml(const std::string& name, const std::string& role, const std::string& ip,
                      const std::string& extra = "") {
  return "  - name: " + name + "\n    role: " + role + "\n    privateIP: " + ip + "\n" + extra;
}

std::string all_diagnostics(const kb::TopologyResult& r) {
  std::string out;
  for (const Diagnostic& d : r.diagnostics) out += d.format() + "\n";
  return out;
}

size_t count_errors(const kb::TopologyResult& r) {
  return std::count_if(r.diagnostics.begin(), r.diagnostics.end(),
                       [](const Diagnostic& d) { return d.severity == Diagnostic::Severity::Error; });
}

struct Case {
  fs::path path;
  std::string expect;
  int expect_line = 0;
  std::vector<std::string> also_expect;
};

// The header of a case file: "# expect: ...", optionally "# expect-line: N", then "# also-expect: ..." lines.
Case read_case(const fs::path& path) {
  Case c;
  c.path = path;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line) && line.starts_with("# ")) {
    if (line.starts_with("# expect: "))
      c.expect = line.substr(10);
    else if (line.starts_with("# expect-line: "))
      c.expect_line = std::stoi(line.substr(15));
    else if (line.starts_with("# also-expect: "))
      c.also_expect.push_back(line.substr(15));
  }
  return c;
}

const Diagnostic* find_error(const kb::TopologyResult& r, const std::string& text) {
  for (const Diagnostic& d : r.diagnostics)
    if (d.severity == Diagnostic::Severity::Error && d.format().find(text) != std::string::npos) return &d;
  return nullptr;
}

}  // namespace

TEST_CASE("the seed example is a valid 3+3 cluster", "[topology]") {
  auto r = kb::load_topology(KB_SOURCE_DIR "/examples/aws-ha.yaml");
  INFO(all_diagnostics(r));
  REQUIRE(r.ok());
  CHECK(r.diagnostics.empty());
  const kb::Topology& t = *r.topology;
  CHECK(t.source_path == KB_SOURCE_DIR "/examples/aws-ha.yaml");
  CHECK(t.cluster.name == "kthw");
  CHECK(t.cluster.kubernetes_version == "v1.32.3");
  CHECK(t.api_server_url() == "https://api.kthw.example.com:6443");
  CHECK(t.api_service_ip() == "10.32.0.1");
  CHECK(t.cluster_dns_ip() == "10.32.0.10");
  CHECK(t.cluster.key_type == kb::KeyType::EcdsaP256);
  CHECK(t.cluster.encryption_provider == kb::EncryptionProvider::Aescbc);
  REQUIRE(t.nodes.size() == 6);
  auto cps = t.control_planes();
  auto workers = t.workers();
  REQUIRE(cps.size() == 3);
  REQUIRE(workers.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(cps[i]->name == "control-" + std::to_string(i));
    CHECK(cps[i]->private_ip == "10.0.1.1" + std::to_string(i));
    CHECK(cps[i]->hostname == "ip-10-0-1-1" + std::to_string(i));
    CHECK(cps[i]->pod_cidr.empty());
    CHECK(workers[i]->name == "worker-" + std::to_string(i));
    CHECK(workers[i]->private_ip == "10.0.1.2" + std::to_string(i));
    CHECK(workers[i]->hostname == "ip-10-0-1-2" + std::to_string(i));
    CHECK(workers[i]->pod_cidr == "10.200." + std::to_string(i) + ".0/24");
    CHECK(workers[i]->public_ip.empty());
  }
}

TEST_CASE("every broken topology in tests/topology_cases is rejected as its header says", "[topology]") {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(KB_SOURCE_DIR "/tests/topology_cases"))
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 30);

  for (const fs::path& file : files) {
    Case c = read_case(file);
    auto r = kb::load_topology(file.string());
    INFO(file.filename().string() << "\n" << all_diagnostics(r));
    REQUIRE(!c.expect.empty());
    CHECK_FALSE(r.ok());
    const Diagnostic* d = find_error(r, c.expect);
    CHECK(d != nullptr);
    if (d && c.expect_line > 0) CHECK(d->line == c.expect_line);
    for (const std::string& also : c.also_expect) {
      INFO("also-expect: " << also);
      CHECK(find_error(r, also) != nullptr);
    }
    for (const Diagnostic& diag : r.diagnostics) {
      CHECK(diag.file == file.string());
      CHECK(!diag.message.empty());
      CHECK(!diag.hint.empty());
    }
  }
}

TEST_CASE("every problem in a file is reported at once, top to bottom", "[topology]") {
  auto r = kb::load_topology(KB_SOURCE_DIR "/tests/topology_cases/54-several-problems.yaml");
  INFO(all_diagnostics(r));
  CHECK_FALSE(r.ok());
  CHECK(count_errors(r) >= 6);
  CHECK(std::is_sorted(r.diagnostics.begin(), r.diagnostics.end(),
                       [](const Diagnostic& a, const Diagnostic& b) { return a.line < b.line; }));
}

TEST_CASE("parse_ipv4 is strict", "[topology]") {
  CHECK(kb::parse_ipv4("10.0.1.10") == 0x0a00010au);
  CHECK(kb::parse_ipv4("0.0.0.0") == 0u);
  CHECK(kb::parse_ipv4("255.255.255.255") == 0xffffffffu);
  for (const char* bad :
       {"", "10.0.1", "10.0.1.10.1", "10.0.1.256", "10.0.1.010", "10.0.1.+1", "10.0.1.-1", " 10.0.1.1", "10.0.1.1 ",
        "10..1.1", "10.0.1.", ".10.0.1", "a.b.c.d", "1000.0.0.1", "0x0a.0.0.1", "10.0.1.1/24"}) {
    INFO(bad);
    CHECK_FALSE(kb::parse_ipv4(bad).has_value());
  }
  CHECK(kb::format_ipv4(0x0a00010au) == "10.0.1.10");
  CHECK(kb::format_ipv4(0xffffffffu) == "255.255.255.255");
}

TEST_CASE("Cidr parsing and arithmetic", "[topology]") {
  auto pod = Cidr::parse("10.200.0.0/16");
  REQUIRE(pod);
  CHECK(pod->network == 0x0ac80000u);
  CHECK(pod->prefix == 16);
  CHECK(pod->str() == "10.200.0.0/16");
  CHECK(pod->size() == 65536u);
  CHECK(pod->contains(*kb::parse_ipv4("10.200.255.255")));
  CHECK_FALSE(pod->contains(*kb::parse_ipv4("10.201.0.0")));
  CHECK(pod->address_at(1) == "10.200.0.1");
  CHECK(pod->address_at(256 + 10) == "10.200.1.10");

  auto block = Cidr::parse("10.200.3.0/24");
  REQUIRE(block);
  CHECK(pod->contains(*block));
  CHECK_FALSE(block->contains(*pod));
  CHECK(pod->overlaps(*block));
  CHECK(block->overlaps(*pod));
  CHECK_FALSE(block->overlaps(*Cidr::parse("10.200.4.0/24")));
  CHECK_FALSE(pod->overlaps(*Cidr::parse("10.32.0.0/24")));

  auto all = Cidr::parse("0.0.0.0/0");
  REQUIRE(all);
  CHECK(all->size() == 0xffffffffu);  // saturates
  CHECK(all->contains(*pod));
  CHECK(all->contains(0xffffffffu));
  auto host = Cidr::parse("10.0.1.10/32");
  REQUIRE(host);
  CHECK(host->size() == 1u);
  CHECK(host->contains(0x0a00010au));
  CHECK_FALSE(host->contains(0x0a00010bu));

  for (const char* bad : {"10.200.1.0/16", "10.200.0.0/33", "10.200.0.0", "10.200.0.0/", "10.200.0.0/016",
                          "10.200.0.0/-1", "10.200.0/16", "10.200.0.0/16/1", "/16", "10.200.0.0/ 16"}) {
    INFO(bad);
    CHECK_FALSE(Cidr::parse(bad).has_value());
  }
}

TEST_CASE("defaults fill what the file leaves out", "[topology]") {
  auto r = parse_topology(kMinimalCluster + "nodes:\n" + node_yaml("control-0", "control-plane", "10.0.1.10") +
                              node_yaml("worker-0", "worker", "10.0.1.20"),
                          "t.yaml");
  INFO(all_diagnostics(r));
  REQUIRE(r.ok());
  CHECK(r.diagnostics.empty());
  const kb::Cluster& c = r.topology->cluster;
  const kb::Cluster defaults;
  CHECK(c.kubernetes_version == defaults.kubernetes_version);
  CHECK(c.api_port == 6443);
  CHECK(c.pod_cidr == "10.200.0.0/16");
  CHECK(c.node_pod_cidr_prefix == 24);
  CHECK(c.service_cidr == "10.32.0.0/24");
  CHECK(c.cluster_domain == "cluster.local");
  CHECK(c.key_type == kb::KeyType::EcdsaP256);
  CHECK(c.ca_validity_days == 3650);
  CHECK(c.leaf_validity_days == 365);
  CHECK(c.renew_before_days == 30);
  CHECK(c.encryption_provider == kb::EncryptionProvider::Aescbc);
  CHECK(r.topology->source_path == "t.yaml");
  const kb::Node& worker = r.topology->nodes[1];
  CHECK(worker.hostname == "worker-0");  // hostname defaults to the name
  CHECK(worker.public_ip.empty());
  CHECK(worker.pod_cidr == "10.200.0.0/24");
}

TEST_CASE("every cluster setting is read", "[topology]") {
  auto r = parse_topology(
      "cluster:\n  name: prod\n  kubernetesVersion: v1.33.10\n  apiEndpoint: {host: 10.0.0.5, port: 443}\n"
      "  podCIDR: 172.16.0.0/12\n  nodePodCIDRPrefix: 20\n  serviceCIDR: 192.168.0.0/16\n"
      "  clusterDomain: k8s.internal\n  keyType: rsa-3072\n"
      "  validity: {caDays: 7300, leafDays: 90, renewBeforeDays: 10}\n  encryption: {provider: secretbox}\n"
      "nodes:\n" +
          node_yaml("cp", "both", "10.0.1.10", "    publicIP: 3.4.5.6\n    hostname: cp.example.com\n"),
      "t.yaml");
  INFO(all_diagnostics(r));
  REQUIRE(r.ok());
  const kb::Topology& t = *r.topology;
  CHECK(t.cluster.kubernetes_version == "v1.33.10");
  CHECK(t.api_server_url() == "https://10.0.0.5:443");
  CHECK(t.cluster.pod_cidr == "172.16.0.0/12");
  CHECK(t.cluster.node_pod_cidr_prefix == 20);
  CHECK(t.api_service_ip() == "192.168.0.1");
  CHECK(t.cluster_dns_ip() == "192.168.0.10");
  CHECK(t.cluster.cluster_domain == "k8s.internal");
  CHECK(t.cluster.key_type == kb::KeyType::Rsa3072);
  CHECK(t.cluster.ca_validity_days == 7300);
  CHECK(t.cluster.leaf_validity_days == 90);
  CHECK(t.cluster.renew_before_days == 10);
  CHECK(t.cluster.encryption_provider == kb::EncryptionProvider::Secretbox);
  REQUIRE(t.nodes.size() == 1);
  CHECK(t.nodes[0].is_control_plane());
  CHECK(t.nodes[0].is_worker());
  CHECK(t.nodes[0].public_ip == "3.4.5.6");
  CHECK(t.nodes[0].hostname == "cp.example.com");
  CHECK(t.nodes[0].pod_cidr == "172.16.0.0/20");
  CHECK(t.control_planes().size() == 1);
  CHECK(t.workers().size() == 1);
}

TEST_CASE("pod CIDRs are assigned in node order from the lowest free blocks", "[topology]") {
  std::string nodes = "nodes:\n" + node_yaml("control-0", "control-plane", "10.0.1.10") +
                      node_yaml("worker-0", "worker", "10.0.1.20") +
                      node_yaml("worker-1", "worker", "10.0.1.21", "    podCIDR: 10.200.1.0/24\n") +
                      node_yaml("both-0", "both", "10.0.1.22") +
                      node_yaml("worker-2", "worker", "10.0.1.23", "    podCIDR: 10.200.0.0/24\n") +
                      node_yaml("worker-3", "worker", "10.0.1.24");
  auto r = parse_topology(kMinimalCluster + nodes, "t.yaml");
  INFO(all_diagnostics(r));
  REQUIRE(r.ok());
  const auto& n = r.topology->nodes;
  CHECK(n[0].pod_cidr.empty());
  CHECK(n[1].pod_cidr == "10.200.2.0/24");  // 0 and 1 are taken explicitly
  CHECK(n[2].pod_cidr == "10.200.1.0/24");
  CHECK(n[3].pod_cidr == "10.200.3.0/24");
  CHECK(n[4].pod_cidr == "10.200.0.0/24");
  CHECK(n[5].pod_cidr == "10.200.4.0/24");
}

TEST_CASE("a pod CIDR with exactly enough blocks fits every worker", "[topology]") {
  std::string nodes = "nodes:\n" + node_yaml("control-0", "control-plane", "10.0.1.10");
  for (int i = 0; i < 4; ++i)
    nodes += node_yaml("worker-" + std::to_string(i), "worker", "10.0.1.2" + std::to_string(i));
  auto r = parse_topology(kMinimalCluster + "  podCIDR: 10.200.0.0/22\n" + nodes, "t.yaml");
  INFO(all_diagnostics(r));
  REQUIRE(r.ok());
  CHECK(r.topology->nodes[4].pod_cidr == "10.200.3.0/24");
  r = parse_topology(kMinimalCluster + "  podCIDR: 10.200.0.0/23\n" + nodes, "t.yaml");
  CHECK_FALSE(r.ok());
  CHECK(find_error(r, "has room for 2 /24 blocks, but there are 4 workers") != nullptr);
}

TEST_CASE("an even number of control-plane nodes is a warning, not an error", "[topology]") {
  auto r = parse_topology(kMinimalCluster + "nodes:\n" + node_yaml("control-0", "control-plane", "10.0.1.10") +
                              node_yaml("control-1", "control-plane", "10.0.1.11") +
                              node_yaml("worker-0", "worker", "10.0.1.20"),
                          "t.yaml");
  REQUIRE(r.ok());
  REQUIRE(r.diagnostics.size() == 1);
  const Diagnostic& d = r.diagnostics[0];
  CHECK(d.severity == Diagnostic::Severity::Warning);
  CHECK(d.message.find("even number of control-plane nodes (2)") != std::string::npos);
  CHECK(d.line == 5);
  CHECK(d.format().starts_with("t.yaml:5:1: warning: "));
}

TEST_CASE("a cluster with no workers is accepted with a warning", "[topology]") {
  auto r =
      parse_topology(kMinimalCluster + "nodes:\n" + node_yaml("control-0", "control-plane", "10.0.1.10"), "t.yaml");
  REQUIRE(r.ok());
  REQUIRE(r.diagnostics.size() == 1);
  CHECK(r.diagnostics[0].severity == Diagnostic::Severity::Warning);
  CHECK(r.diagnostics[0].message.find("no worker nodes") != std::string::npos);
}

TEST_CASE("diagnostics carry 1-based places and format like a compiler's", "[topology]") {
  auto r = parse_topology("cluster:\n  name: kthw\n  apiEndpoint: {host: api.example.com, prot: 6443}\n", "x.yaml");
  const Diagnostic* d = find_error(r, "unknown key 'prot'");
  REQUIRE(d != nullptr);
  CHECK(d->line == 3);
  CHECK(d->column == 40);
  CHECK(d->hint == "did you mean 'port'?");
  CHECK(d->format() == "x.yaml:3:40: error: unknown key 'prot' in cluster.apiEndpoint (hint: did you mean 'port'?)");

  Diagnostic bare;
  bare.message = "something";
  CHECK(bare.format() == "error: something");
  bare.file = "f.yaml";
  CHECK(bare.format() == "f.yaml: error: something");

  auto syntax = parse_topology("cluster:\n  name: [kthw\n", "s.yaml");
  CHECK_FALSE(syntax.ok());
  REQUIRE(syntax.diagnostics.size() == 1);
  CHECK(syntax.diagnostics[0].message.starts_with("YAML syntax error"));
  CHECK(syntax.diagnostics[0].line >= 2);
}

TEST_CASE("unknown keys get a suggestion or the list of valid keys", "[topology]") {
  auto r = parse_topology(kMinimalCluster + "  KEYTYPE: rsa-2048\n  flavour: vanilla\nnodes:\n" +
                              node_yaml("control-0", "control-plane", "10.0.1.10"),
                          "t.yaml");
  const Diagnostic* typo = find_error(r, "unknown key 'KEYTYPE'");
  REQUIRE(typo);
  CHECK(typo->hint == "did you mean 'keyType'?");
  const Diagnostic* other = find_error(r, "unknown key 'flavour'");
  REQUIRE(other);
  CHECK(other->hint.find("valid keys in cluster: name, kubernetesVersion") != std::string::npos);
}

TEST_CASE("invalid enum values list the valid ones", "[topology]") {
  auto r = parse_topology(
      kMinimalCluster + "  encryption: {provider: aes}\nnodes:\n" + node_yaml("control-0", "controlplane", "10.0.1.10"),
      "t.yaml");
  const Diagnostic* role = find_error(r, "'controlplane' is not a valid role");
  REQUIRE(role);
  CHECK(role->hint == "did you mean 'control-plane'? valid values: control-plane, worker, both");
  const Diagnostic* provider = find_error(r, "'aes' is not a valid encryption provider");
  REQUIRE(provider);
  CHECK(provider->hint.find("aescbc, secretbox, aesgcm") != std::string::npos);
}

TEST_CASE("unsupported versions name the supported ones", "[topology]") {
  CHECK(kb::is_supported_kubernetes_version("v1.32.0"));
  CHECK(kb::is_supported_kubernetes_version("v1.32.3"));
  CHECK(kb::is_supported_kubernetes_version("v1.33.12"));
  CHECK_FALSE(kb::is_supported_kubernetes_version("v1.31.9"));
  CHECK_FALSE(kb::is_supported_kubernetes_version("v1.34.0"));
  CHECK_FALSE(kb::is_supported_kubernetes_version("1.32.3"));
  CHECK_FALSE(kb::is_supported_kubernetes_version("v1.32"));
  CHECK_FALSE(kb::is_supported_kubernetes_version("v1.32.x"));
  CHECK_FALSE(kb::is_supported_kubernetes_version("v1.32.3-rc.1"));
  CHECK(kb::supported_kubernetes_versions() == "v1.32.x, v1.33.x");

  auto r = parse_topology(
      kMinimalCluster + "  kubernetesVersion: v1.30.1\nnodes:\n" + node_yaml("control-0", "control-plane", "10.0.1.10"),
      "t.yaml");
  const Diagnostic* d = find_error(r, "unsupported Kubernetes version 'v1.30.1'");
  REQUIRE(d);
  CHECK(d->hint.find("v1.32.x, v1.33.x") != std::string::npos);
}

TEST_CASE("names of roles, key types and providers", "[topology]") {
  CHECK(std::string(kb::to_string(kb::Role::ControlPlane)) == "control-plane");
  CHECK(std::string(kb::to_string(kb::Role::Worker)) == "worker");
  CHECK(std::string(kb::to_string(kb::Role::Both)) == "both");
  CHECK(std::string(kb::to_string(kb::KeyType::EcdsaP256)) == "ecdsa-p256");
  CHECK(std::string(kb::to_string(kb::KeyType::Rsa2048)) == "rsa-2048");
  CHECK(std::string(kb::to_string(kb::KeyType::Rsa3072)) == "rsa-3072");
  CHECK(std::string(kb::to_string(kb::KeyType::Rsa4096)) == "rsa-4096");
  CHECK(std::string(kb::to_string(kb::EncryptionProvider::Aescbc)) == "aescbc");
  CHECK(std::string(kb::to_string(kb::EncryptionProvider::Secretbox)) == "secretbox");
  CHECK(std::string(kb::to_string(kb::EncryptionProvider::Aesgcm)) == "aesgcm");
}

TEST_CASE("a file that cannot be read is a diagnostic, not an exception", "[topology]") {
  auto r = kb::load_topology(KB_BINARY_DIR "/no-such-topology.yaml");
  CHECK_FALSE(r.ok());
  REQUIRE(r.diagnostics.size() == 1);
  CHECK(r.diagnostics[0].message.find("cannot read") != std::string::npos);
  CHECK(r.diagnostics[0].file == KB_BINARY_DIR "/no-such-topology.yaml");

  auto dir = kb::load_topology(KB_SOURCE_DIR "/examples");
  CHECK_FALSE(dir.ok());
}

TEST_CASE("1000 workers parse and validate", "[topology]") {
  std::ostringstream y;
  y << kMinimalCluster << "  podCIDR: 10.128.0.0/9\n  serviceCIDR: 10.32.0.0/24\nnodes:\n";
  for (int i = 0; i < 3; ++i)
    y << node_yaml("control-" + std::to_string(i), "control-plane", "10.0.0." + std::to_string(10 + i));
  for (int i = 0; i < 1000; ++i) {
    std::string ip = "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    y << node_yaml("worker-" + std::to_string(i), "worker", ip,
                   "    publicIP: 3.4." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) +
                       "\n    hostname: ip-" + std::to_string(i) + "\n");
    // Every tenth worker pins a block among the low ones, so assignment has to skip them.
    if (i % 10 == 0) y << "    podCIDR: " << Cidr{0x0a800000u + uint32_t(i + 5) * 256, 24}.str() << "\n";
  }
  std::string text = y.str();

  kb::TopologyResult r = parse_topology(text, "big.yaml");
  INFO(all_diagnostics(r));
  REQUIRE(r.ok());
  REQUIRE(r.topology->workers().size() == 1000);
  CHECK(r.topology->nodes.back().pod_cidr == "10.131.231.0/24");
}

TEST_CASE("duplicates among 1000 workers are all found", "[topology]") {
  std::ostringstream y;
  y << kMinimalCluster << "  podCIDR: 10.128.0.0/9\nnodes:\n";
  y << node_yaml("control-0", "control-plane", "10.0.0.10");
  for (int i = 0; i < 1000; ++i)  // every name twice
    y << node_yaml("worker-" + std::to_string(i % 500), "worker",
                   "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1));
  auto r = parse_topology(y.str(), "dup.yaml");
  CHECK_FALSE(r.ok());
  CHECK(count_errors(r) == 500);  // the hostnames defaulting to the names are not reported again
}

TEST_CASE("a misspelt required key is reported once, not also as missing", "[topology]") {
  auto r = parse_topology("clusters:\n  name: kthw\n  apiEndpoint: {host: a.example.com}\nnodes:\n" +
                              node_yaml("control-0", "control-plane", "10.0.1.10"),
                          "t.yaml");
  INFO(all_diagnostics(r));
  CHECK_FALSE(r.ok());
  CHECK(count_errors(r) == 1);
  CHECK(find_error(r, "unknown key 'clusters' at the top level (hint: did you mean 'cluster'?)"));
}

TEST_CASE("document markers around a single document are fine", "[topology]") {
  std::string body = kMinimalCluster + "nodes:\n" + node_yaml("control-0", "control-plane", "10.0.1.10") +
                     node_yaml("worker-0", "worker", "10.0.1.20");
  for (const std::string& text :
       {"---\n" + body, "%YAML 1.2\n---\n" + body + "...\n", body + "---\n# only a comment\n"}) {
    auto r = parse_topology(text, "t.yaml");
    INFO(text << all_diagnostics(r));
    CHECK(r.ok());
  }
  auto two = parse_topology(body + "--- # next\n" + body, "t.yaml");
  CHECK_FALSE(two.ok());
  CHECK(find_error(two, "more than one YAML document"));
  auto null_doc = parse_topology("~\n", "t.yaml");
  CHECK(find_error(null_doc, "the top level must be a mapping, not empty"));
}

TEST_CASE("cluster.hardening: everything on by default, each key turns one setting off", "[topology]") {
  const std::string nodes = "nodes:\n" + node_yaml("control-0", "control-plane", "10.0.1.10");
  auto defaults = parse_topology(kMinimalCluster + nodes, "t.yaml");
  REQUIRE(defaults.ok());
  CHECK(defaults.topology->cluster.hardening.always_pull_images);
  CHECK(defaults.topology->cluster.hardening.deny_service_external_ips);

  auto off = parse_topology(
      kMinimalCluster + "  hardening:\n    alwaysPullImages: false\n    denyServiceExternalIPs: false\n" + nodes, "t.yaml");
  INFO(all_diagnostics(off));
  REQUIRE(off.ok());
  CHECK_FALSE(off.topology->cluster.hardening.always_pull_images);
  CHECK_FALSE(off.topology->cluster.hardening.deny_service_external_ips);

  auto bad = parse_topology(kMinimalCluster + "  hardening:\n    alwaysPullImages: no\n" + nodes, "t.yaml");
  CHECK_FALSE(bad.ok());
  CHECK(all_diagnostics(bad).find("cluster.hardening.alwaysPullImages must be true or false, not 'no'") !=
        std::string::npos);
}
