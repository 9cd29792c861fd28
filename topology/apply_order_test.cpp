#include "topology/apply_order.h"

#include <catch2/catch.hpp>

#include "base/error.h"

namespace {

using Batches = std::vector<std::vector<std::string>>;

// Nodes in a deliberately mixed file order: the order must come from roles, then file order.
kb::Topology mixed_topology() {
  const std::string yaml =
      "cluster:\n  name: c\n  apiEndpoint:\n    host: api.example.com\nnodes:\n"
      "  - {name: w1, role: worker, privateIP: 10.0.0.11}\n"
      "  - {name: cp1, role: control-plane, privateIP: 10.0.0.1}\n"
      "  - {name: w2, role: worker, privateIP: 10.0.0.12}\n"
      "  - {name: both1, role: both, privateIP: 10.0.0.3}\n"
      "  - {name: cp2, role: control-plane, privateIP: 10.0.0.2}\n"
      "  - {name: w3, role: worker, privateIP: 10.0.0.13}\n"
      "  - {name: w4, role: worker, privateIP: 10.0.0.14}\n"
      "  - {name: w5, role: worker, privateIP: 10.0.0.15}\n";
  kb::TopologyResult r = kb::parse_topology(yaml, "topology.yaml");
  REQUIRE(r.ok());
  return *r.topology;
}

}  // namespace

TEST_CASE("apply_order: control plane one at a time in file order, then workers in batches") {
  const kb::Topology t = mixed_topology();
  CHECK(kb::apply_order(t, 2) ==
        Batches{{"cp1"}, {"both1"}, {"cp2"}, {"w1", "w2"}, {"w3", "w4"}, {"w5"}});
  CHECK(kb::apply_order(t, 1) ==
        Batches{{"cp1"}, {"both1"}, {"cp2"}, {"w1"}, {"w2"}, {"w3"}, {"w4"}, {"w5"}});
  // A batch never exceeds the workers there are; control-plane nodes stay alone whatever N is.
  CHECK(kb::apply_order(t, 5) == Batches{{"cp1"}, {"both1"}, {"cp2"}, {"w1", "w2", "w3", "w4", "w5"}});
  CHECK(kb::apply_order(t, 100) == Batches{{"cp1"}, {"both1"}, {"cp2"}, {"w1", "w2", "w3", "w4", "w5"}});
}

TEST_CASE("apply_order: `only` restricts, keeping the topology's order, not the list's") {
  const kb::Topology t = mixed_topology();
  CHECK(kb::apply_order(t, 2, {"w5", "cp2", "w1", "cp1"}) == Batches{{"cp1"}, {"cp2"}, {"w1", "w5"}});
  CHECK(kb::apply_order(t, 2, {"w3"}) == Batches{{"w3"}});
  CHECK(kb::apply_order(t, 3, {"w2", "w2", "w4"}) == Batches{{"w2", "w4"}});  // a repeat counts once
}

TEST_CASE("apply_order: refuses max-unavailable 0 and unknown names, naming them") {
  const kb::Topology t = mixed_topology();
  CHECK_THROWS_WITH(kb::apply_order(t, 0), Catch::Contains("max-unavailable must be at least 1"));
  CHECK_THROWS_WITH(kb::apply_order(t, 1, {"cp1", "nope"}),
                    Catch::Contains("topology.yaml: no node named \"nope\""));
  // Outside text is quoted and escaped, never printed raw.
  CHECK_THROWS_WITH(kb::apply_order(t, 1, {"a\x1b[2Jb"}), !Catch::Contains("\x1b"));
  CHECK_THROWS_AS(kb::apply_order(t, 1, {""}), kb::Error);
}

TEST_CASE("describe_apply_order: one line") {
  CHECK(kb::describe_apply_order({{"cp1"}, {"cp2"}, {"w1", "w2"}, {"w3"}}) ==
        "cp1, then cp2, then [w1 w2], then w3");
  CHECK(kb::describe_apply_order({}) == "(no nodes)");
}
