#include "topology/topology.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
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
  CHECK_FALSE(kb::is_supported_kubernetes_version("v1.32.03"));  // the catalog puts it in URLs: one spelling only
  CHECK_FALSE(kb::is_supported_kubernetes_version("v1.32.3/../x"));
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

namespace {

const std::string kValidBody = kMinimalCluster + "nodes:\n" + node_yaml("control-0", "control-plane", "10.0.1.10") +
                               node_yaml("worker-0", "worker", "10.0.1.20");

// No byte of a printed diagnostic is a control character: nothing reaches a terminal raw.
bool printable(const kb::TopologyResult& r) {
  for (const Diagnostic& d : r.diagnostics) {
    std::string s = d.format();
    if (std::any_of(s.begin(), s.end(), [](char c) {
          auto b = static_cast<unsigned char>(c);
          return b < 0x20 || b == 0x7f || b == 0x9b;  // 0x9b: 8-bit CSI
        }))
      return false;
  }
  return true;
}

struct Hostile {
  std::string name;
  std::string text;
  std::string expect;
  int line;
};

void check_refused(const Hostile& h) {
  auto r = parse_topology(h.text, "h.yaml");
  INFO(h.name << "\n" << all_diagnostics(r));
  CHECK_FALSE(r.ok());
  const Diagnostic* d = find_error(r, h.expect);
  REQUIRE(d != nullptr);
  CHECK(d->line == h.line);
  CHECK(printable(r));
}

}  // namespace

TEST_CASE("yaml-cpp's leniency is refused as a syntax error at its place", "[topology][hostile]") {
  const std::string b = kValidBody;  // 11 lines
  const std::string never_closed = "YAML syntax error: this quote is never closed";
  for (const Hostile& h : std::vector<Hostile>{
           {"double quote at the end", b + "    hostname: \"w0\n", never_closed, 12},
           {"double quote, no newline", b + "    hostname: \"w0", "YAML syntax error", 12},
           {"double quote, blank lines after", b + "    hostname: \"w0\n\n\n", never_closed, 12},
           {"double quote over lines", b + "    hostname: \"w0\n      more\n", never_closed, 12},
           {"escaped closing quote", b + "    hostname: \"w0\\\"\n", never_closed, 12},
           {"single quote at the end", b + "    hostname: 'w0\n", never_closed, 12},
           {"doubled single quote", b + "    hostname: 'it''s\n", never_closed, 12},
           {"quoted key", b + "\"aws: 1\n", never_closed, 12},
           {"quote in a flow list", b + "aws: [x, \"y\n", "YAML syntax error", 13},
           {"key without ':' at the end", b + "    podCIDR 10.200.9.0/24\n", "a key without ':' after it", 12},
           {"list then mapping", "- a\n" + b, "did not find expected '-' indicator", 2},
           {"flow mapping then more", "{cluster: {name: x}}\nnodes: []\n", "did not find expected <document start>", 2},
           {"two flow lists", "[a]\n[b]\n", "did not find expected <document start>", 2},
           {"scalar then mapping", "\"a\"\n" + b, "did not find expected <document start>", 2},
           {"doubled comma", kMinimalCluster + "  validity: {caDays: 10, , leafDays: 5}\n",
            "did not find expected node content", 5},
           {"unclosed flow list", b + "aws: [1, 2\n", "YAML syntax error", 13},
           {"unclosed flow mapping", b + "aws: {region: x\n", "YAML syntax error", 13},
           {"tab indentation", "cluster:\n\tname: kthw\n", "YAML syntax error", 2},
           {"tab before a nested key", kMinimalCluster + "\tpodCIDR: 10.200.0.0/16\n", "YAML syntax error", 5},
           {"content after '...'", b + "...\nx: 1\n", "more than one YAML document", 12},
       })
    check_refused(h);
}

TEST_CASE("NUL, broken UTF-8 and control characters are refused anywhere, comments included",
          "[topology][hostile]") {
  const std::string b = kValidBody;
  auto at_end = [&](std::string bytes) { return b + "# comment " + bytes + "\n"; };
  for (const Hostile& h : std::vector<Hostile>{
           {"NUL", at_end(std::string(1, '\0')), "a NUL byte", 12},
           {"NUL in a value", kMinimalCluster + "  podCIDR: 10.200.0.0/16" + std::string(1, '\0') + "x\n",
            "a NUL byte", 5},
           {"latin-1", at_end("caf\xe9"), "invalid UTF-8 (byte 0xE9", 12},
           {"0xff", at_end("\xff"), "invalid UTF-8 (byte 0xFF", 12},
           {"stray continuation byte", at_end("\x80"), "invalid UTF-8 (byte 0x80", 12},
           {"overlong '/'", at_end("\xc0\xaf"), "invalid UTF-8 (byte 0xC0", 12},
           {"overlong NUL", at_end("\xe0\x80\x80"), "invalid UTF-8 (byte 0xE0", 12},
           {"surrogate", at_end("\xed\xa0\x80"), "invalid UTF-8 (byte 0xED", 12},
           {"above U+10FFFF", at_end("\xf4\x90\x80\x80"), "invalid UTF-8 (byte 0xF4", 12},
           {"cut short at the end", b + "# \xe2\x82", "invalid UTF-8 (byte 0xE2", 12},
           {"ESC", at_end("\x1b[2J"), "control character U+001B", 12},
           {"BEL", at_end("\x07"), "control character U+0007", 12},
           {"backspace", at_end("\x08"), "control character U+0008", 12},
           {"DEL", at_end("\x7f"), "control character U+007F", 12},
           {"C1 CSI", at_end("\xc2\x9b"), "control character U+009B", 12},
           {"U+FFFE", at_end("\xef\xbf\xbe"), "control character U+FFFE", 12},
           {"BOM after the start", b + "\xef\xbb\xbf# x\n", "byte order mark (U+FEFF) after the start", 12},
       })
    check_refused(h);

  // Allowed: a BOM as the first character, tabs and CRLF, and any printable character.
  for (const std::string& text : {"\xef\xbb\xbf" + b, b + "# caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0\t\n",
                                  std::string("cluster:\r\n  name: kthw\r\n  apiEndpoint:\r\n    host: a.example.com\r\n"
                                              "nodes:\r\n") + node_yaml("control-0", "control-plane", "10.0.1.10")}) {
    auto r = parse_topology(text, "ok.yaml");
    INFO(all_diagnostics(r));
    CHECK(r.ok());
  }
}

TEST_CASE("control characters made by escapes are refused in values and escaped in messages",
          "[topology][hostile]") {
  const std::string b = kValidBody;
  for (std::string_view value : {"\\e[2J", "\\e]0;title\\a", "w0\\nExecStartPre=/bin/sh", "w\\t0", "w\\r", "w\\0",
                                   "w\\x7f", "\\x9b" "31m", "\\u009b", "w\\b"}) {
    auto r = parse_topology(b + "    hostname: \"" + std::string(value) + "\"\n", "e.yaml");
    INFO(value << "\n" << all_diagnostics(r));
    CHECK_FALSE(r.ok());
    const Diagnostic* d = find_error(r, "nodes[1].hostname holds a control character");
    REQUIRE(d != nullptr);
    CHECK(d->line == 12);
    CHECK(printable(r));
  }
  // Keys are echoed too ("unknown key"), and so is the file name.
  auto key = parse_topology(kMinimalCluster + "  \"na\\e[31mme\\n\": x\n", "\x1b[31mevil\n.yaml");
  CHECK(find_error(key, "unknown key 'na\\x1b[31mme\\n' in cluster"));
  CHECK(all_diagnostics(key).find("\\x1b[31mevil\\n.yaml:5:3:") != std::string::npos);
  CHECK(printable(key));

  Diagnostic d;
  d.file = "f.yaml";
  d.message = "bad '\x1b[2J\n'";
  d.hint = "\r\x07";
  CHECK(d.format() == "f.yaml: error: bad '\\x1b[2J\\n' (hint: \\r\\x07)");
}

TEST_CASE("a topology over the size limit is refused before parsing", "[topology][hostile]") {
  std::string big = kValidBody + "# " + std::string(kb::kMaxTopologyBytes, 'x') + "\n";
  auto r = parse_topology(big, "big.yaml");
  CHECK_FALSE(r.ok());
  CHECK(find_error(r, "over the limit of 4 MiB"));

  // A huge sparse file is refused from its size alone, a device after limit + 1 bytes.
  fs::path sparse = fs::path(KB_BINARY_DIR) / "topology-test-sparse.yaml";
  { std::ofstream(sparse) << "cluster:\n"; }
  fs::resize_file(sparse, uint64_t{64} << 30);
  auto t0 = std::chrono::steady_clock::now();
  auto s = kb::load_topology(sparse.string());
  fs::remove(sparse);
  CHECK(find_error(s, "the topology is 65536 MiB, over the limit of 4 MiB"));
  auto z = kb::load_topology("/dev/zero");
  CHECK(find_error(z, "the topology is more than 4 MiB, over the limit of 4 MiB"));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}

TEST_CASE("5,000 nodes fit well under the limit and parse", "[topology][hostile]") {
  std::ostringstream y;
  y << kMinimalCluster << "  podCIDR: 10.128.0.0/9\n  serviceCIDR: 10.32.0.0/24\nnodes:\n";
  for (int i = 0; i < 3; ++i)
    y << node_yaml("control-" + std::to_string(i), "control-plane", "10.0.0." + std::to_string(10 + i));
  for (int i = 0; i < 4997; ++i) {
    std::string ip = "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    y << node_yaml("worker-" + std::to_string(i), "worker", ip,
                   "    publicIP: 3.4." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) +
                       "\n    hostname: ip-10-1-" + std::to_string(i / 250) + "-" + std::to_string(i % 250 + 1) +
                       "\n    instanceId: i-0123456789abcdef0\n");
  }
  std::string text = y.str();
  CHECK(text.size() < (size_t{1} << 20));
  auto r = parse_topology(text, "5000.yaml");
  INFO(all_diagnostics(r));
  REQUIRE(r.ok());
  CHECK(r.topology->nodes.size() == 5000);
}

TEST_CASE("alias bombs and deep nesting stay cheap and are refused", "[topology][hostile]") {
  // Billion laughs: ten levels of nine aliases each. yaml-cpp shares aliased nodes and the parser
  // never walks what the schema does not hold, so nothing is expanded.
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 10; ++i) {
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 9; ++k) bomb += std::string(k ? ", " : "") + "*a" + std::to_string(i - 1);
    bomb += "]\n";
  }
  auto t0 = std::chrono::steady_clock::now();
  auto r = parse_topology(bomb + kValidBody.substr(0, kMinimalCluster.size()) + "nodes: [*a9, *a9]\n", "bomb.yaml");
  CHECK_FALSE(r.ok());
  CHECK(find_error(r, "unknown key 'a9'"));
  CHECK(find_error(r, "nodes[0] must be a mapping, not a list"));
  auto deep = parse_topology("cluster: " + std::string(100000, '[') + "\n", "deep.yaml");
  CHECK(find_error(deep, "YAML syntax error"));
  std::string nested = "cluster:\n";
  for (int i = 1; i < 1500; ++i) nested += std::string(2 * i, ' ') + "a:\n";
  auto deep_block = parse_topology(nested, "deep.yaml");
  CHECK_FALSE(deep_block.ok());
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}

TEST_CASE("aliases cannot multiply nodes or messages past the bounds", "[topology][hostile]") {
  // 4 bytes per node through an alias: bounded by the node limit, not by the file size.
  std::string many = "x: &a {name: w, role: worker, privateIP: 10.0.0.1}\n" + kMinimalCluster + "nodes: [";
  for (int i = 0; i < 200000; ++i) many += i ? ", *a" : "*a";
  many += "]\n";
  auto t0 = std::chrono::steady_clock::now();
  auto r = parse_topology(many, "alias.yaml");
  CHECK(find_error(r, "nodes lists 200000 nodes, more than the 5000 a Kubernetes cluster supports"));
  CHECK(r.diagnostics.size() <= kb::kMaxDiagnostics);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));

  // Thousands of problems: the first ones and a count of the rest.
  std::string dup = kMinimalCluster + "nodes:\n";
  for (int i = 0; i < 3000; ++i) dup += "  - {name: w, role: worker, privateIP: 10.0.0.1}\n";
  auto d = parse_topology(dup, "dup.yaml");
  REQUIRE(d.diagnostics.size() == kb::kMaxDiagnostics);
  CHECK(d.diagnostics.back().message.ends_with("more problems not shown"));
}

TEST_CASE("etcd.backup: defaults when absent, every key read when given", "[topology]") {
  const std::string nodes = "nodes:\n" + node_yaml("control-0", "control-plane", "10.0.1.10");
  auto r = parse_topology(kMinimalCluster + nodes, "t.yaml");
  REQUIRE(r.ok());
  CHECK(r.topology->etcd_backup.schedule == "hourly");
  CHECK(r.topology->etcd_backup.keep == 24);
  CHECK(r.topology->etcd_backup.max_age_days == 7);
  CHECK(r.topology->etcd_backup.dir == "/var/backups/etcd");
  r = parse_topology(kMinimalCluster + nodes +
                         "etcd:\n  backup:\n    schedule: '*-*-* 00/4:00:00'\n    keep: 3\n    maxAgeDays: 2\n"
                         "    dir: /srv/etcd-snapshots\n",
                     "t.yaml");
  INFO(all_diagnostics(r));
  REQUIRE(r.ok());
  CHECK(r.topology->etcd_backup.schedule == "*-*-* 00/4:00:00");
  CHECK(r.topology->etcd_backup.keep == 3);
  CHECK(r.topology->etcd_backup.max_age_days == 2);
  CHECK(r.topology->etcd_backup.dir == "/srv/etcd-snapshots");
  CHECK(parse_topology(kMinimalCluster + nodes + "etcd:\n  backup:\n", "t.yaml").ok());
}
