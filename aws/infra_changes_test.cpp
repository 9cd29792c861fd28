#include <catch2/catch.hpp>

#include "aws/infra.h"

namespace {

using namespace kb::aws;

ClusterSpec spec() {
  ClusterSpec s;
  s.cluster = "kthw";
  s.vpc_cidr = "10.0.0.0/16";
  s.subnet_cidr = "10.0.1.0/24";
  s.pod_cidr = "10.200.0.0/16";
  s.admin_cidr = "203.0.113.0/24";
  s.image_id = "ami-0123456789abcdef0";
  s.nodes = {{"control-0", true, false, "10.0.1.10", "", "t3.medium", ""},
             {"control-1", true, false, "10.0.1.11", "", "t3.medium", ""},
             {"worker-0", false, true, "10.0.1.20", "10.200.0.0/24", "t3.large", ""},
             {"worker-1", false, true, "10.0.1.21", "10.200.1.0/24", "t3.large", ""}};
  return s;
}

// Everything `up` creates for spec(), as discovery would report it.
Inventory complete(const ClusterSpec& s) {
  Inventory inv;
  inv.vpc_id = "vpc-1";
  inv.vpc_cidr = s.vpc_cidr;
  inv.vpc_dns_hostnames = true;
  inv.subnet_id = "subnet-1";
  inv.subnet_cidr = s.subnet_cidr;
  inv.subnet_public_ip = true;
  inv.igw_id = "igw-1";
  inv.igw_vpc = "vpc-1";
  inv.route_table_id = "rtb-1";
  inv.route_table_subnets = {"subnet-1"};
  inv.routes = {{"10.0.0.0/16", "local"}, {"0.0.0.0/0", "igw-1"}, {"10.200.0.0/24", "i-w0"}, {"10.200.1.0/24", "i-w1"}};
  for (const char* role : {"control-plane", "worker", "api-lb"}) {
    inv.groups[role].id = std::string("sg-") + role;
    inv.groups[role].rules = desired_rules(s, role);
    inv.groups[role].egress = desired_egress(s, role);
  }
  inv.lb_groups = {"sg-api-lb"};
  inv.tg_preserve_client_ip = "false";
  inv.key_pair = true;
  inv.lb_arn = "arn:lb";
  inv.lb_dns = "kthw-api-1.elb.eu-west-1.amazonaws.com";
  inv.tg_arn = "arn:tg";
  inv.listeners[6443] = "arn:listener";
  inv.targets = {{"10.0.1.10", "healthy"}, {"10.0.1.11", "healthy"}};
  inv.instances["control-0"] = {"i-c0", "control-0", "running", "10.0.1.10", "3.0.0.10", "t3.medium", true, "", ""};
  inv.instances["control-1"] = {"i-c1", "control-1", "running", "10.0.1.11", "3.0.0.11", "t3.medium", true, "", ""};
  inv.instances["worker-0"] = {"i-w0", "worker-0", "running", "10.0.1.20", "3.0.0.20", "t3.large", false, "", ""};
  inv.instances["worker-1"] = {"i-w1", "worker-1", "running", "10.0.1.21", "3.0.0.21", "t3.large", false, "", ""};
  for (const Rule& r : node_address_rules(s, inv)) inv.groups["api-lb"].rules.push_back(r);
  return inv;
}

std::vector<Action> actions(const InfraChanges& p) {
  std::vector<Action> out;
  for (const auto& c : p.changes) out.push_back(c.action);
  return out;
}

size_t count(const InfraChanges& p, Action a) {
  return static_cast<size_t>(std::count_if(p.changes.begin(), p.changes.end(), [&](const InfraChange& c) { return c.action == a; }));
}

}  // namespace

TEST_CASE("changes: nothing exists: everything, dependencies first", "[infra_changes]") {
  ClusterSpec s = spec();
  InfraChanges p = compute_changes(s, Inventory{});
  auto a = actions(p);
  auto pos = [&](Action x) { return std::find(a.begin(), a.end(), x) - a.begin(); };
  CHECK(pos(Action::CreateVpc) == 0);
  CHECK(pos(Action::CreateVpc) < pos(Action::CreateSubnet));
  CHECK(pos(Action::CreateInternetGateway) < pos(Action::AttachInternetGateway));
  CHECK(pos(Action::AttachInternetGateway) < pos(Action::CreateLoadBalancer));  // internet-facing needs the gateway
  CHECK(pos(Action::CreateTargetGroup) < pos(Action::CreateListener));
  CHECK(pos(Action::CreateLoadBalancer) < pos(Action::CreateListener));
  CHECK(pos(Action::CreateSecurityGroup) < pos(Action::RunInstance));
  CHECK(pos(Action::ImportKeyPair) < pos(Action::RunInstance));
  CHECK(pos(Action::RunInstance) < pos(Action::CreatePodRoute));
  CHECK(count(p, Action::CreateSecurityGroup) == 3);
  CHECK(count(p, Action::AuthorizeIngress) ==
        desired_rules(s, "control-plane").size() + desired_rules(s, "worker").size() + desired_rules(s, "api-lb").size());
  // The load balancer's group loses AWS's default egress and may reach only the API port.
  CHECK(count(p, Action::AuthorizeEgress) == 1);
  CHECK(count(p, Action::RevokeEgress) == 1);
  CHECK(count(p, Action::AuthorizeNodeAddresses) == 1);
  CHECK(count(p, Action::SetTargetGroupAttributes) == 1);
  CHECK(pos(Action::CreateSecurityGroup) < pos(Action::AuthorizeIngress));
  CHECK(pos(Action::AuthorizeEgress) < pos(Action::CreateLoadBalancer));
  CHECK(count(p, Action::RunInstance) == 4);
  CHECK(count(p, Action::DisableSourceDestCheck) == 2);  // workers only
  CHECK(count(p, Action::RegisterTarget) == 2);          // control-plane IPs
  CHECK(count(p, Action::CreatePodRoute) == 2);
  CHECK(p.notes.empty());
  // Every group exists before any rule names it.
  size_t last_group = 0, first_rule = p.changes.size();
  for (size_t i = 0; i < p.changes.size(); ++i) {
    if (p.changes[i].action == Action::CreateSecurityGroup) last_group = i;
    if (p.changes[i].action == Action::AuthorizeIngress && first_rule == p.changes.size()) first_rule = i;
  }
  CHECK(last_group < first_rule);
}

TEST_CASE("changes: everything exists: nothing to do", "[infra_changes]") {
  ClusterSpec s = spec();
  InfraChanges p = compute_changes(s, complete(s));
  for (const auto& c : p.changes) INFO(describe(c));
  CHECK(p.empty());
  CHECK(p.notes.empty());
}

TEST_CASE("changes: an interrupted run: only what is missing", "[infra_changes]") {
  ClusterSpec s = spec();
  Inventory inv = complete(s);
  inv.instances.erase("worker-1");
  inv.routes.erase("10.200.1.0/24");
  inv.instances["worker-0"].source_dest_check = true;
  inv.groups["worker"].rules.pop_back();
  inv.targets.erase("10.0.1.11");
  inv.listeners.clear();
  InfraChanges p = compute_changes(s, inv);
  CHECK(count(p, Action::RunInstance) == 1);
  for (const auto& c : p.changes)
    if (c.action == Action::RunInstance) CHECK(c.key == "worker-1");
  CHECK(count(p, Action::DisableSourceDestCheck) == 2);
  CHECK(count(p, Action::CreatePodRoute) == 1);
  CHECK(count(p, Action::AuthorizeIngress) == 1);
  CHECK(count(p, Action::RegisterTarget) == 1);
  CHECK(count(p, Action::CreateListener) == 1);
  CHECK(count(p, Action::CreateVpc) == 0);
  CHECK(count(p, Action::CreateLoadBalancer) == 0);
}

TEST_CASE("changes: a replaced worker gets its pod route moved; removed nodes leave the target group", "[infra_changes]") {
  ClusterSpec s = spec();
  Inventory inv = complete(s);
  inv.instances["worker-0"].id = "i-new";
  inv.targets["10.0.1.12"] = "healthy";  // a control-plane node no longer in the topology
  InfraChanges p = compute_changes(s, inv);
  REQUIRE(count(p, Action::ReplacePodRoute) == 1);
  CHECK(count(p, Action::DeregisterTarget) == 1);
  for (const auto& c : p.changes)
    if (c.action == Action::DeregisterTarget) CHECK(c.key == "10.0.1.12");
}

TEST_CASE("changes: differences up never fixes are notes, not changes", "[infra_changes]") {
  ClusterSpec s = spec();
  Inventory inv = complete(s);
  inv.instances["control-0"].private_ip = "10.0.1.99";
  inv.instances["control-1"].instance_type = "t3.small";
  inv.instances["worker-1"].state = "stopped";
  inv.strays.push_back({"i-old", "worker-9", "running", "10.0.1.29", "", "t3.large", true, "", ""});
  inv.routes["10.200.9.0/24"] = "i-old";
  InfraChanges p = compute_changes(s, inv);
  CHECK(p.empty());
  CHECK(p.notes.size() == 5);
}

TEST_CASE("changes: security group rules", "[infra_changes]") {
  ClusterSpec s = spec();
  auto cp = desired_rules(s, "control-plane");
  auto has = [](const std::vector<Rule>& rules, const std::string& proto, int from, int to, const std::string& src) {
    return std::any_of(rules.begin(), rules.end(), [&](const Rule& r) {
      return r.protocol == proto && r.from_port == from && r.to_port == to && r.source == src;
    });
  };
  CHECK(has(cp, "tcp", 6443, 6443, "203.0.113.0/24"));
  CHECK(has(cp, "tcp", 6443, 6443, "group:api-lb"));  // through the load balancer only
  CHECK(has(cp, "-1", -1, -1, "group:control-plane"));
  CHECK(has(cp, "-1", -1, -1, "group:worker"));
  CHECK(has(cp, "tcp", 22, 22, "203.0.113.0/24"));
  CHECK(has(cp, "-1", -1, -1, "10.200.0.0/16"));
  auto w = desired_rules(s, "worker");
  CHECK(has(w, "-1", -1, -1, "group:control-plane"));
  CHECK(has(w, "tcp", 30000, 32767, "203.0.113.0/24"));
  auto lb = desired_rules(s, "api-lb");
  CHECK(lb.size() == 3);
  CHECK(has(lb, "tcp", 6443, 6443, "203.0.113.0/24"));
  CHECK(has(lb, "tcp", 6443, 6443, "group:control-plane"));
  CHECK(has(lb, "tcp", 6443, 6443, "group:worker"));
  // No group admits the VPC or the subnet (where the load balancer's own addresses are), nor everyone.
  for (const char* role : {"control-plane", "worker", "api-lb"})
    for (const Rule& r : desired_rules(s, role)) {
      CHECK(r.source != "10.0.0.0/16");
      CHECK(r.source != "10.0.1.0/24");
      CHECK(r.source != "0.0.0.0/0");
    }
  auto lb_out = desired_egress(s, "api-lb");
  REQUIRE(lb_out.size() == 1);
  CHECK(has(lb_out, "tcp", 6443, 6443, "group:control-plane"));
}

TEST_CASE("changes: rules that should not be there are revoked, after the new ones", "[infra_changes]") {
  ClusterSpec s = spec();
  Inventory inv = complete(s);
  s.admin_cidr = "198.51.100.0/24";  // adminCIDR changed
  inv.groups["control-plane"].rules.push_back({"tcp", 6443, 6443, "0.0.0.0/0", "by hand"});
  inv.groups["control-plane"].rules.push_back({"tcp", 6443, 6443, "::/0", "by hand"});
  inv.groups["worker"].rules.push_back({"-1", -1, -1, "group:sg-foreign", ""});
  inv.groups["worker"].rules.push_back({"tcp", 443, 443, "prefix-list:pl-1", ""});
  inv.groups["api-lb"].egress.push_back({"-1", -1, -1, "0.0.0.0/0", ""});
  inv.groups["api-lb"].rules.push_back({"tcp", 6443, 6443, "3.0.0.99/32", "Kubernetes API from node gone"});
  InfraChanges p = compute_changes(s, inv);
  std::vector<std::string> text;
  for (const auto& c : p.changes) text.push_back(describe(c));
  auto has_text = [&](const std::string& t) {
    return std::any_of(text.begin(), text.end(), [&](const std::string& x) { return x.find(t) != std::string::npos; });
  };
  // The old adminCIDR: SSH and API on the control plane, SSH and NodePorts on workers, the API on the NLB.
  CHECK(count(p, Action::AuthorizeIngress) == 5);
  CHECK(count(p, Action::RevokeIngress) == 5 + 4 + 1);
  CHECK(count(p, Action::RevokeEgress) == 1);
  CHECK(has_text("revoke tcp 6443 from 0.0.0.0/0"));
  CHECK(has_text("revoke tcp 6443 from ::/0"));
  CHECK(has_text("revoke all traffic from the sg-foreign group"));
  CHECK(has_text("revoke tcp 443 from prefix-list:pl-1"));
  CHECK(has_text("revoke egress all traffic to 0.0.0.0/0"));
  CHECK(has_text("revoke tcp 6443 from 3.0.0.99/32"));
  CHECK(has_text("revoke tcp 22 from 203.0.113.0/24"));
  CHECK(has_text("allow tcp 22 from 198.51.100.0/24"));
  size_t last_allow = 0, first_revoke = p.changes.size();
  for (size_t i = 0; i < p.changes.size(); ++i) {
    if (p.changes[i].action == Action::AuthorizeIngress && p.changes[i].key == "control-plane") last_allow = i;
    if (p.changes[i].action == Action::RevokeIngress && p.changes[i].key == "control-plane" && first_revoke == p.changes.size())
      first_revoke = i;
  }
  CHECK(last_allow < first_revoke);  // never a moment with neither the old nor the new CIDR
}

TEST_CASE("changes: the load balancer's group admits each node's public IP", "[infra_changes]") {
  ClusterSpec s = spec();
  Inventory inv = complete(s);
  auto rules = node_address_rules(s, inv);
  REQUIRE(rules.size() == 4);
  CHECK(rules[0].source == "3.0.0.10/32");
  inv.groups["api-lb"].rules.pop_back();
  InfraChanges p = compute_changes(s, inv);
  REQUIRE(p.changes.size() == 1);
  CHECK(p.changes[0].action == Action::AuthorizeIngress);
  CHECK(p.changes[0].rule.source == "3.0.0.21/32");
}

TEST_CASE("changes: duplicates are deleted first, or noted", "[infra_changes]") {
  ClusterSpec s = spec();
  Inventory inv = complete(s);
  inv.duplicates.push_back({"vpc", "vpc-2", true, "empty", {}});
  inv.duplicates.push_back({"route table", "rtb-2", true, "second", {"rtbassoc-1"}});
  inv.duplicates.push_back({"instance", "i-dup", true, "second instance of worker-0", {}});
  inv.duplicates.push_back({"subnet", "subnet-2", false, "has instances", {}});
  InfraChanges p = compute_changes(s, inv);
  REQUIRE(p.changes.size() == 3);
  for (const auto& c : p.changes) CHECK(c.action == Action::DeleteDuplicate);
  CHECK(describe(p.changes[0]) == "delete duplicate vpc vpc-2 (empty)");
  REQUIRE(p.notes.size() == 1);
  CHECK(p.notes[0] == "subnet subnet-2: has instances");
}

TEST_CASE("changes: a load balancer without the group is reported; client IP preservation is set off", "[infra_changes]") {
  ClusterSpec s = spec();
  Inventory inv = complete(s);
  inv.lb_groups.clear();
  inv.tg_preserve_client_ip = "true";
  InfraChanges p = compute_changes(s, inv);
  REQUIRE(p.changes.size() == 1);
  CHECK(p.changes[0].action == Action::SetTargetGroupAttributes);
  REQUIRE(p.notes.size() == 1);
  CHECK(p.notes[0].find("is not in security group kthw-api-lb") != std::string::npos);
  CHECK(admin_cidr_is_everyone("0.0.0.0/0"));
  CHECK(admin_cidr_is_everyone("::/0"));
  CHECK_FALSE(admin_cidr_is_everyone("203.0.113.0/24"));
}

TEST_CASE("changes: names fit AWS's limits", "[infra_changes]") {
  CHECK(load_balancer_name("kthw") == "kthw-api");
  std::string long_name(63, 'a');
  CHECK(load_balancer_name(long_name).size() <= 32);
  CHECK(target_group_name(long_name).size() <= 32);
  CHECK(load_balancer_name(long_name) != load_balancer_name(std::string(62, 'a') + "b"));
  CHECK(key_pair_name("kthw") == "kbundle-kthw");
}
