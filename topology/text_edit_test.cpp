#include "topology/text_edit.h"

#include <catch2/catch.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "topology/topology.h"

using kb::patch_topology_text;

TEST_CASE("aws: the topology is patched in place, comments and layout kept", "[text_edit]") {
  const std::string text =
      "# my cluster\n"
      "cluster:\n"
      "  name: kthw   # the name\n"
      "  apiEndpoint:\n"
      "    host: api.kthw.example.com   # filled in by aws up\n"
      "    port: 6443\n"
      "nodes:\n"
      "  - name: control-0\n"
      "    role: control-plane\n"
      "    privateIP: 10.0.1.10  # first\n"
      "    hostname: ip-10-0-1-10\n"
      "  - name: worker-0\n"
      "    role: worker\n"
      "    privateIP: 10.0.1.20\n"
      "    publicIP: \"1.2.3.4\"\n"
      "  - {name: worker-1, role: worker, privateIP: 10.0.1.21}\n"
      "  - name: worker-2\n"
      "    role: worker\n"
      "    publicIP:\n"
      "    privateIP: 10.0.1.22\n";
  std::string out = patch_topology_text(text, "kthw-api-0123.elb.eu-west-1.amazonaws.com",
                                        {{"control-0", "3.0.0.10"}, {"worker-0", "3.0.0.20"},
                                         {"worker-1", "3.0.0.21"}, {"worker-2", "3.0.0.22"}});
  CHECK(out ==
        "# my cluster\n"
        "cluster:\n"
        "  name: kthw   # the name\n"
        "  apiEndpoint:\n"
        "    host: kthw-api-0123.elb.eu-west-1.amazonaws.com   # filled in by aws up\n"
        "    port: 6443\n"
        "nodes:\n"
        "  - name: control-0\n"
        "    role: control-plane\n"
        "    privateIP: 10.0.1.10  # first\n"
        "    publicIP: 3.0.0.10\n"
        "    hostname: ip-10-0-1-10\n"
        "  - name: worker-0\n"
        "    role: worker\n"
        "    privateIP: 10.0.1.20\n"
        "    publicIP: 3.0.0.20\n"
        "  - {name: worker-1, role: worker, privateIP: 10.0.1.21, publicIP: 3.0.0.21}\n"
        "  - name: worker-2\n"
        "    role: worker\n"
        "    publicIP: 3.0.0.22\n"
        "    privateIP: 10.0.1.22\n");
  auto r = kb::parse_topology(out, "t.yaml");
  REQUIRE(r.ok());
  CHECK(r.topology->nodes[2].public_ip == "3.0.0.21");
}

TEST_CASE("aws: patching the example keeps it valid and changes only those values", "[text_edit]") {
  std::string text = kb::read_file(std::string(KB_SOURCE_DIR) + "/examples/aws-ha.yaml");
  std::string out = patch_topology_text(text, "x-api.elb.amazonaws.com", {{"worker-2", "3.3.3.3"}});
  auto r = kb::parse_topology(out, "aws-ha.yaml");
  REQUIRE(r.ok());
  CHECK(r.topology->cluster.api_host == "x-api.elb.amazonaws.com");
  CHECK(r.topology->nodes.back().public_ip == "3.3.3.3");
  CHECK(out.size() == text.size() - std::string("api.kthw.example.com").size() +
                          std::string("x-api.elb.amazonaws.com").size() + std::string("\n    publicIP: 3.3.3.3").size());
  CHECK(patch_topology_text(text, "", {}) == text);
}

TEST_CASE("aws: instance ids are written next to privateIP and bind the nodes", "[text_edit]") {
  std::string text = kb::read_file(std::string(KB_SOURCE_DIR) + "/examples/aws-ha.yaml");
  std::string out = patch_topology_text(text, "", {{"worker-2", "3.3.3.3"}}, {{"worker-2", "i-0123456789abcdef0"}, {"control-0", "i-0a"}});
  auto r = kb::parse_topology(out, "aws-ha.yaml");
  REQUIRE(r.ok());
  CHECK(r.topology->nodes.back().instance_id == "i-0123456789abcdef0");
  CHECK(r.topology->nodes.back().public_ip == "3.3.3.3");
  CHECK(r.topology->nodes.front().instance_id == "i-0a");
  // A second run with another id replaces the value where it stands.
  std::string again = patch_topology_text(out, "", {}, {{"worker-2", "i-0b"}});
  auto r2 = kb::parse_topology(again, "aws-ha.yaml");
  REQUIRE(r2.ok());
  CHECK(r2.topology->nodes.back().instance_id == "i-0b");
  CHECK(again.size() == out.size() - std::string("0123456789abcdef0").size() + 2);
}
