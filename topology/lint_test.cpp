#include "topology/lint.h"

#include <catch2/catch.hpp>

namespace {

const std::string kNodes =
    "nodes:\n"
    "  - name: control-0\n"
    "    role: control-plane\n"
    "    privateIP: 10.0.1.10\n";

std::vector<kb::LintFinding> lint(const std::string& cluster_extra) {
  const std::string text = "cluster:\n  name: kthw\n  apiEndpoint: {host: api.example.com}\n" + cluster_extra + kNodes;
  auto r = kb::parse_topology(text, "t.yaml");
  REQUIRE(r.ok());
  return kb::lint_topology(*r.topology, text);
}

}  // namespace

TEST_CASE("lint: the defaults turn nothing off", "[lint]") {
  CHECK(lint("").empty());
  CHECK(lint("  hardening: {alwaysPullImages: true}\n  encryption: {provider: secretbox}\n").empty());
}

TEST_CASE("lint: each setting that turns a check off is reported at its key", "[lint]") {
  const auto f = lint(
      "  encryption:\n"
      "    provider: aesgcm\n"
      "  hardening:\n"
      "    alwaysPullImages: false\n"
      "    denyServiceExternalIPs: false\n");
  REQUIRE(f.size() == 3);
  CHECK(f[0].check_id == "1.2.3");
  CHECK(f[0].setting == "cluster.hardening.denyServiceExternalIPs: false");
  CHECK(f[0].line == 8);
  CHECK(f[1].check_id == "1.2.11");
  CHECK(f[1].setting == "cluster.hardening.alwaysPullImages: false");
  CHECK(f[1].line == 7);
  CHECK(f[1].column == 23);
  CHECK_FALSE(f[1].scored);
  CHECK(f[2].check_id == "1.2.28");
  CHECK(f[2].line == 5);
  for (const auto& x : f) {
    CHECK(!x.title.empty());
    CHECK(!x.why.empty());
  }
}

TEST_CASE("lint: an adminCIDR that is the whole internet is a warning at its key", "[lint]") {
  auto with_admin = [](const std::string& cidr) {
    const std::string text = "cluster:\n  name: kthw\n  apiEndpoint: {host: api.example.com}\n" + kNodes +
                             "aws:\n  region: eu-west-1\n  image: {id: ami-0123456789abcdef0}\n"
                             "  sshPublicKeyFile: id.pub\n  adminCIDR: " + cidr + "\n";
    auto r = kb::parse_topology(text, "t.yaml");
    REQUIRE(r.ok());
    return kb::lint_topology(*r.topology, text);
  };
  CHECK(with_admin("203.0.113.0/24").empty());
  const auto f = with_admin("0.0.0.0/0");
  REQUIRE(f.size() == 1);
  CHECK(f[0].check_id.empty());  // no CIS check: not counted as one
  CHECK(f[0].setting == "aws.adminCIDR 0.0.0.0/0");
  CHECK(f[0].line == 12);
}
