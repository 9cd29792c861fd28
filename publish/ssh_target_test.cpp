#include "publish/ssh_target.h"

#include <catch2/catch.hpp>

#include "publish/targets.h"

using namespace kb;

TEST_CASE("ssh target: scp URLs", "[ssh_target]") {
  SshTarget t = parse_scp_url("scp://admin@10.0.1.10:2222/srv/kb/", "root", "/var/lib/kbundle/incoming");
  CHECK(t.user == "admin");
  CHECK(t.host == "10.0.1.10");
  CHECK(t.port == 2222);
  CHECK(t.dir == "/srv/kb");
  t = parse_scp_url("scp://node-1", "root", "/var/lib/kbundle/incoming");
  CHECK(t.user == "root");
  CHECK(t.port == 22);
  CHECK(t.dir == "/var/lib/kbundle/incoming");
  t = parse_scp_url("sftp://u@[fd00::1]:2200/x", "root", "/d");
  CHECK(t.host == "fd00::1");
  CHECK(t.port == 2200);
  CHECK_THROWS_AS(parse_scp_url("scp://u@h:99999/x", "root", "/d"), PublishUsageError);
  CHECK_THROWS_WITH(parse_scp_url("scp://u@h:22x/x", "root", "/d"), Catch::Contains("'22x' is not a port"));
  CHECK_THROWS_WITH(parse_scp_url("scp://@h/x", "root", "/d"), Catch::Contains("no host or user"));
  CHECK_THROWS_WITH(parse_scp_url("scp://h/a/../etc", "root", "/d"), Catch::Contains("must not contain .."));
}

TEST_CASE("ssh target: one per bundle, from the topology", "[ssh_target]") {
  Topology topo;
  Node a;
  a.name = "control-0";
  a.private_ip = "10.0.1.10";
  a.public_ip = "203.0.113.7";
  Node b;
  b.name = "worker-0";
  b.private_ip = "10.0.1.20";
  topo.nodes = {a, b};
  PublishSet set;
  set.bundles = {Artifact{"control-0.kbundle", "/o/control-0.kbundle", "control-0", 1, 1, "x"},
                 Artifact{"worker-0.kbundle", "/o/worker-0.kbundle", "worker-0", 1, 1, "y"}};
  PublishOptions o;
  o.ssh_user = "admin";
  o.ssh_port = 2022;
  auto t = ssh_targets_from_topology(topo, set, o);
  REQUIRE(t.size() == 2);
  CHECK(t[0].host == "203.0.113.7");
  CHECK(t[1].host == "10.0.1.20");
  CHECK(t[1].port == 2022);
  CHECK(t[1].user == "admin");
  CHECK(t[1].dir == "/var/lib/kbundle/incoming");
  set.bundles.push_back(Artifact{"gone.kbundle", "/o/gone.kbundle", "gone", 1, 1, "z"});
  CHECK_THROWS_WITH(ssh_targets_from_topology(topo, set, o), Catch::Contains("node 'gone' is not in"));
}
