#include "aws/infra.h"

#include <algorithm>
#include <random>
#include <set>

#include "base/hash.h"

namespace kb::aws {

namespace {

constexpr const char* kRoleControlPlane = "control-plane";
constexpr const char* kRoleWorker = "worker";
constexpr int kApiServerPort = 6443;  // kube-apiserver's port on the nodes; the listener may differ
constexpr auto kPoll = std::chrono::milliseconds(5000);

std::string cluster_tag_key(const std::string& cluster) { return "kubernetes.io/cluster/" + cluster; }

// Filter.1: the cluster's ownership tag; more filters follow from index 2.
Params cluster_filter(const std::string& cluster) {
  return {{"Filter.1.Name", "tag:" + cluster_tag_key(cluster)}, {"Filter.1.Value.1", "owned"}};
}

std::vector<std::pair<std::string, std::string>> tags_for(const std::string& cluster, const std::string& name,
                                                          const std::string& node = "") {
  std::vector<std::pair<std::string, std::string>> t = {
      {"Name", name}, {"kbundle:cluster", cluster}, {cluster_tag_key(cluster), "owned"}};
  if (!node.empty()) t.emplace_back("kbundle:node", node);
  return t;
}

// EC2's TagSpecification.N for one resource type.
void add_tag_spec(Params& p, int n, const std::string& type, const std::vector<std::pair<std::string, std::string>>& tags) {
  std::string prefix = "TagSpecification." + std::to_string(n) + ".";
  p.emplace_back(prefix + "ResourceType", type);
  for (size_t i = 0; i < tags.size(); ++i) {
    p.emplace_back(prefix + "Tag." + std::to_string(i + 1) + ".Key", tags[i].first);
    p.emplace_back(prefix + "Tag." + std::to_string(i + 1) + ".Value", tags[i].second);
  }
}

// ELBv2's Tags.member.N.
void add_elb_tags(Params& p, const std::vector<std::pair<std::string, std::string>>& tags) {
  for (size_t i = 0; i < tags.size(); ++i) {
    p.emplace_back("Tags.member." + std::to_string(i + 1) + ".Key", tags[i].first);
    p.emplace_back("Tags.member." + std::to_string(i + 1) + ".Value", tags[i].second);
  }
}

uint32_t fnv1a(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

// "<cluster><suffix>", shortened with a hash of the cluster name when longer than `max`.
std::string short_name(const std::string& cluster, const std::string& suffix, size_t max) {
  if (cluster.size() + suffix.size() <= max) return cluster + suffix;
  char hash[9];
  std::snprintf(hash, sizeof hash, "%08x", fnv1a(cluster));
  std::string head = cluster.substr(0, max - suffix.size() - 5);
  while (head.ends_with('-')) head.pop_back();
  return head + "-" + std::string(hash, 4) + suffix;
}

const XmlElement* result_of(const XmlElement& doc, const std::string& action) {
  return doc.child(action + "Result");
}

bool is_not_found(const AwsError& e) {
  return e.code().find("NotFound") != std::string::npos || e.code() == "InvalidKeyPair.NotFound";
}

// The tags of an ELBv2 resource.
std::map<std::string, std::string> elb_tags(Client& c, const std::string& arn) {
  std::map<std::string, std::string> out;
  XmlElement doc = c.call(Service::Elb, "DescribeTags", {{"ResourceArns.member.1", arn}});
  if (const XmlElement* r = result_of(doc, "DescribeTags"))
    for (const XmlElement* d : r->items("TagDescriptions"))
      for (const XmlElement* t : d->items("Tags")) out[t->get("Key")] = t->get("Value");
  return out;
}

bool elb_owned(Client& c, const std::string& arn, const std::string& cluster) {
  auto tags = elb_tags(c, arn);
  auto it = tags.find(cluster_tag_key(cluster));
  return it != tags.end() && it->second == "owned";
}

std::map<std::string, std::string> ec2_tags(const XmlElement& item) {
  std::map<std::string, std::string> out;
  for (const XmlElement* t : item.items("tagSet")) out[t->get("key")] = t->get("value");
  return out;
}

// The load balancer or target group named `name`; empty when there is none. Throws when it
// exists but belongs to something else.
std::pair<std::string, const XmlElement*> find_elb_resource(Client& c, const std::string& action,
                                                            const std::string& list, const std::string& arn_key,
                                                            const std::string& name, const std::string& cluster,
                                                            XmlElement& holder) {
  try {
    holder = c.call(Service::Elb, action, {{"Names.member.1", name}});
  } catch (const AwsError& e) {
    if (e.code() == "LoadBalancerNotFound" || e.code() == "TargetGroupNotFound") return {"", nullptr};
    throw;
  }
  const XmlElement* r = result_of(holder, action);
  auto members = r ? r->items(list) : std::vector<const XmlElement*>{};
  if (members.empty()) return {"", nullptr};
  std::string arn = members[0]->get(arn_key);
  if (!elb_owned(c, arn, cluster))
    throw Error("the name '" + name + "' is taken by " + arn + ", which is not tagged " + cluster_tag_key(cluster) +
                "=owned (hint: delete or rename it, or rename the cluster)");
  return {arn, members[0]};
}

std::vector<Instance> live_instances(Client& c, const std::string& cluster, bool include_shutting_down) {
  Params p = cluster_filter(cluster);
  p.emplace_back("Filter.2.Name", "instance-state-name");
  std::vector<std::string> states = {"pending", "running", "stopping", "stopped"};
  if (include_shutting_down) states.push_back("shutting-down");
  for (size_t i = 0; i < states.size(); ++i) p.emplace_back("Filter.2.Value." + std::to_string(i + 1), states[i]);
  std::vector<Instance> out;
  for (const XmlElement& page : c.call_all(Service::Ec2, "DescribeInstances", p))
    for (const XmlElement* r : page.items("reservationSet"))
      for (const XmlElement* it : r->items("instancesSet")) {
        Instance i;
        i.id = it->get("instanceId");
        i.state = it->get("instanceState/name");
        i.private_ip = it->get("privateIpAddress");
        i.public_ip = it->get("ipAddress");
        i.instance_type = it->get("instanceType");
        i.source_dest_check = it->get("sourceDestCheck") != "false";
        auto tags = ec2_tags(*it);
        i.node = tags["kbundle:node"];
        out.push_back(i);
      }
  return out;
}

Rule parse_rule_common(const XmlElement& perm) {
  Rule r;
  r.protocol = perm.get("ipProtocol");
  std::string from = perm.get("fromPort"), to = perm.get("toPort");
  if (r.protocol != "-1") {
    r.from_port = from.empty() ? -1 : std::stoi(from);
    r.to_port = to.empty() ? -1 : std::stoi(to);
  }
  return r;
}

}  // namespace

std::string key_pair_name(const std::string& cluster) { return "kbundle-" + cluster; }
std::string load_balancer_name(const std::string& cluster) { return short_name(cluster, "-api", 32); }
std::string target_group_name(const std::string& cluster) { return short_name(cluster, "-apiservers", 32); }
std::string security_group_name(const std::string& cluster, const std::string& role) { return cluster + "-" + role; }

std::vector<Rule> desired_rules(const ClusterSpec& s, const std::string& role) {
  const std::string cp = std::string("group:") + kRoleControlPlane;
  std::vector<Rule> r;
  r.push_back({"tcp", 22, 22, s.admin_cidr, "SSH from the admin network"});
  if (role == kRoleControlPlane) {
    r.push_back({"tcp", kApiServerPort, kApiServerPort, s.admin_cidr, "Kubernetes API from the admin network"});
    r.push_back({"tcp", kApiServerPort, kApiServerPort, s.subnet_cidr,
                 "Kubernetes API from the load balancer (and its health checks)"});
    r.push_back({"tcp", 2379, 2380, cp, "etcd between control-plane nodes"});
  } else {
    r.push_back({"tcp", 10250, 10250, cp, "kubelet API from the control plane"});
    r.push_back({"tcp", 30000, 32767, s.admin_cidr, "NodePort services from the admin network"});
  }
  r.push_back({"-1", -1, -1, s.vpc_cidr, "all traffic inside the VPC"});
  if (!s.pod_cidr.empty()) r.push_back({"-1", -1, -1, s.pod_cidr, "all traffic from pods"});
  return r;
}

Inventory discover(Client& c, const std::string& cluster) {
  Inventory inv;
  const Params tagged = cluster_filter(cluster);

  // VPC: exactly one may carry the cluster's tag.
  std::vector<const XmlElement*> vpcs;
  auto vpc_pages = c.call_all(Service::Ec2, "DescribeVpcs", tagged);
  for (const XmlElement& page : vpc_pages)
    for (const XmlElement* v : page.items("vpcSet")) vpcs.push_back(v);
  if (vpcs.size() > 1) {
    std::string ids;
    for (const XmlElement* v : vpcs) ids += (ids.empty() ? "" : ", ") + v->get("vpcId");
    throw Error(std::to_string(vpcs.size()) + " VPCs are tagged for cluster '" + cluster + "' (" + ids +
                ") (hint: `kbundle aws down --yes` deletes them all; or delete the extra one)");
  }
  if (!vpcs.empty()) {
    inv.vpc_id = vpcs[0]->get("vpcId");
    inv.vpc_cidr = vpcs[0]->get("cidrBlock");
    XmlElement a = c.call(Service::Ec2, "DescribeVpcAttribute", {{"VpcId", inv.vpc_id}, {"Attribute", "enableDnsHostnames"}});
    inv.vpc_dns_hostnames = a.get("enableDnsHostnames/value") == "true";
  }

  // Subnet, internet gateway, route table: tagged, in the cluster's VPC.
  for (const XmlElement& page : c.call_all(Service::Ec2, "DescribeSubnets", tagged))
    for (const XmlElement* s : page.items("subnetSet")) {
      if (s->get("vpcId") != inv.vpc_id) continue;
      if (!inv.subnet_id.empty()) {
        inv.notes.push_back("extra subnet " + s->get("subnetId") + " is tagged for the cluster; ignored");
        continue;
      }
      inv.subnet_id = s->get("subnetId");
      inv.subnet_cidr = s->get("cidrBlock");
      inv.subnet_public_ip = s->get("mapPublicIpOnLaunch") == "true";
    }
  for (const XmlElement& page : c.call_all(Service::Ec2, "DescribeInternetGateways", tagged))
    for (const XmlElement* g : page.items("internetGatewaySet")) {
      std::string attached;
      for (const XmlElement* a : g->items("attachmentSet"))
        if (a->get("state") == "available" || a->get("state") == "attached") attached = a->get("vpcId");
      if (!inv.igw_id.empty() && (attached.empty() || attached != inv.vpc_id)) {
        inv.notes.push_back("extra internet gateway " + g->get("internetGatewayId") + " is tagged for the cluster");
        continue;
      }
      if (!inv.igw_id.empty()) inv.notes.push_back("extra internet gateway " + inv.igw_id + " is tagged for the cluster");
      inv.igw_id = g->get("internetGatewayId");
      inv.igw_vpc = attached;
    }
  for (const XmlElement& page : c.call_all(Service::Ec2, "DescribeRouteTables", tagged))
    for (const XmlElement* t : page.items("routeTableSet")) {
      if (t->get("vpcId") != inv.vpc_id) continue;
      if (!inv.route_table_id.empty()) {
        inv.notes.push_back("extra route table " + t->get("routeTableId") + " is tagged for the cluster; ignored");
        continue;
      }
      inv.route_table_id = t->get("routeTableId");
      for (const XmlElement* a : t->items("associationSet"))
        if (!a->get("subnetId").empty()) inv.route_table_subnets.push_back(a->get("subnetId"));
      for (const XmlElement* r : t->items("routeSet")) {
        std::string target = r->get("gatewayId");
        if (target.empty()) target = r->get("instanceId");
        if (target.empty()) target = r->get("networkInterfaceId");
        if (!r->get("destinationCidrBlock").empty()) inv.routes[r->get("destinationCidrBlock")] = target;
      }
    }

  // Security groups: by name in the cluster's VPC.
  if (!inv.vpc_id.empty()) {
    std::vector<const XmlElement*> groups;
    auto pages = c.call_all(Service::Ec2, "DescribeSecurityGroups", {{"Filter.1.Name", "vpc-id"}, {"Filter.1.Value.1", inv.vpc_id}});
    std::map<std::string, std::string> role_of_id;
    for (const XmlElement& page : pages)
      for (const XmlElement* g : page.items("securityGroupInfo"))
        for (const char* role : {kRoleControlPlane, kRoleWorker})
          if (g->get("groupName") == security_group_name(cluster, role)) {
            groups.push_back(g);
            role_of_id[g->get("groupId")] = role;
            inv.groups[role].id = g->get("groupId");
          }
    for (const XmlElement* g : groups) {
      auto& rules = inv.groups[role_of_id[g->get("groupId")]].rules;
      for (const XmlElement* perm : g->items("ipPermissions")) {
        for (const XmlElement* range : perm->items("ipRanges")) {
          Rule r = parse_rule_common(*perm);
          r.source = range->get("cidrIp");
          r.description = range->get("description");
          rules.push_back(r);
        }
        for (const XmlElement* pair : perm->items("groups")) {
          Rule r = parse_rule_common(*perm);
          auto it = role_of_id.find(pair->get("groupId"));
          r.source = "group:" + (it == role_of_id.end() ? pair->get("groupId") : it->second);
          r.description = pair->get("description");
          rules.push_back(r);
        }
      }
    }
  }

  // Key pair: by name.
  try {
    XmlElement k = c.call(Service::Ec2, "DescribeKeyPairs", {{"KeyName.1", key_pair_name(cluster)}});
    inv.key_pair = !k.items("keySet").empty();
  } catch (const AwsError& e) {
    if (!is_not_found(e)) throw;
  }

  // Instances: live ones with the cluster's tag, one per node.
  for (Instance& i : live_instances(c, cluster, false)) {
    if (i.node.empty() || inv.instances.count(i.node)) inv.strays.push_back(i);
    else inv.instances[i.node] = i;
  }

  // Load balancer, its listeners, the target group and its targets: by name, checked by tag.
  XmlElement holder;
  auto [lb_arn, lb] = find_elb_resource(c, "DescribeLoadBalancers", "LoadBalancers", "LoadBalancerArn",
                                        load_balancer_name(cluster), cluster, holder);
  if (lb) {
    inv.lb_arn = lb_arn;
    inv.lb_dns = lb->get("DNSName");
    inv.lb_state = lb->get("State/Code");
    for (const XmlElement& page : c.call_all(Service::Elb, "DescribeListeners", {{"LoadBalancerArn", lb_arn}}))
      if (const XmlElement* r = result_of(page, "DescribeListeners"))
        for (const XmlElement* l : r->items("Listeners")) inv.listeners[std::stoi(l->get("Port"))] = l->get("ListenerArn");
  }
  XmlElement tg_holder;
  auto [tg_arn, tg] = find_elb_resource(c, "DescribeTargetGroups", "TargetGroups", "TargetGroupArn",
                                        target_group_name(cluster), cluster, tg_holder);
  if (tg) {
    inv.tg_arn = tg_arn;
    XmlElement h = c.call(Service::Elb, "DescribeTargetHealth", {{"TargetGroupArn", tg_arn}});
    if (const XmlElement* r = result_of(h, "DescribeTargetHealth"))
      for (const XmlElement* d : r->items("TargetHealthDescriptions")) inv.targets[d->get("Target/Id")] = d->get("TargetHealth/State");
  }
  return inv;
}

std::string describe(const InfraChange& c) {
  switch (c.action) {
    case Action::CreateVpc: return "create " + c.resource + " " + c.detail;
    case Action::EnableDnsHostnames: return "enable DNS hostnames on " + c.resource;
    case Action::CreateSubnet: return "create " + c.resource + " " + c.detail;
    case Action::EnablePublicIp: return "enable public IPs on launch in " + c.resource;
    case Action::CreateInternetGateway: return "create " + c.resource;
    case Action::AttachInternetGateway: return "attach " + c.resource + " to the VPC";
    case Action::CreateRouteTable: return "create " + c.resource;
    case Action::AssociateRouteTable: return "associate " + c.resource + " with the subnet";
    case Action::CreateDefaultRoute: return "add route 0.0.0.0/0 -> internet gateway to " + c.resource;
    case Action::CreateSecurityGroup: return "create " + c.resource;
    case Action::AuthorizeIngress: return "allow " + c.detail + " in " + c.resource;
    case Action::ImportKeyPair: return "import " + c.resource + " " + c.detail;
    case Action::CreateTargetGroup: return "create " + c.resource + " " + c.detail;
    case Action::CreateLoadBalancer: return "create " + c.resource + " " + c.detail;
    case Action::CreateListener: return "create " + c.resource + " " + c.detail;
    case Action::RunInstance: return "launch " + c.resource + " " + c.detail;
    case Action::DisableSourceDestCheck: return "turn off source/dest check on " + c.resource;
    case Action::RegisterTarget: return "register target " + c.key + ":6443 in " + c.resource;
    case Action::DeregisterTarget: return "deregister target " + c.key + " from " + c.resource;
    case Action::CreatePodRoute: return "add route " + c.detail + " to " + c.resource;
    case Action::ReplacePodRoute: return "replace route " + c.detail + " in " + c.resource;
  }
  return "?";
}

namespace {

std::string rule_text(const Rule& r) {
  std::string ports = r.protocol == "-1" ? "all traffic"
                      : r.from_port == r.to_port
                          ? "tcp " + std::to_string(r.from_port)
                          : "tcp " + std::to_string(r.from_port) + "-" + std::to_string(r.to_port);
  std::string source = r.source.starts_with("group:") ? "the " + r.source.substr(6) + " group" : r.source;
  return ports + " from " + source + " (" + r.description + ")";
}

std::vector<std::string> roles_needed(const ClusterSpec& s) {
  std::vector<std::string> roles = {kRoleControlPlane};
  if (std::any_of(s.nodes.begin(), s.nodes.end(), [](const NodeSpec& n) { return n.worker; })) roles.push_back(kRoleWorker);
  return roles;
}

}  // namespace

InfraChanges compute_changes(const ClusterSpec& s, const Inventory& inv) {
  InfraChanges p;
  auto add = [&](Action a, std::string resource, std::string detail = "", std::string key = "") {
    InfraChange c{a, std::move(resource), std::move(detail), std::move(key), {}};
    p.changes.push_back(std::move(c));
  };

  // Network: VPC, subnet, internet gateway, route table.
  if (inv.vpc_id.empty()) {
    add(Action::CreateVpc, "vpc", s.vpc_cidr);
    add(Action::EnableDnsHostnames, "vpc");
  } else {
    if (inv.vpc_cidr != s.vpc_cidr)
      p.notes.push_back("vpc " + inv.vpc_id + " has CIDR " + inv.vpc_cidr + ", the topology asks for " + s.vpc_cidr +
                        "; not changed (`kbundle aws down --yes` and up again to move)");
    if (!inv.vpc_dns_hostnames) add(Action::EnableDnsHostnames, "vpc " + inv.vpc_id);
  }
  std::string subnet = inv.subnet_id.empty() ? "subnet" : "subnet " + inv.subnet_id;
  if (inv.subnet_id.empty()) {
    add(Action::CreateSubnet, "subnet", s.subnet_cidr + (s.availability_zone.empty() ? "" : " in " + s.availability_zone));
    add(Action::EnablePublicIp, "subnet");
  } else {
    if (inv.subnet_cidr != s.subnet_cidr)
      p.notes.push_back(subnet + " has CIDR " + inv.subnet_cidr + ", the topology asks for " + s.subnet_cidr +
                        "; not changed");
    if (!inv.subnet_public_ip) add(Action::EnablePublicIp, subnet);
  }
  if (inv.igw_id.empty()) {
    add(Action::CreateInternetGateway, "internet gateway");
    add(Action::AttachInternetGateway, "internet gateway");
  } else if (inv.vpc_id.empty() || inv.igw_vpc != inv.vpc_id) {
    add(Action::AttachInternetGateway, "internet gateway " + inv.igw_id);
  }
  std::string rt = inv.route_table_id.empty() ? "route table" : "route table " + inv.route_table_id;
  if (inv.route_table_id.empty()) add(Action::CreateRouteTable, "route table");
  bool associated = !inv.subnet_id.empty() && std::find(inv.route_table_subnets.begin(), inv.route_table_subnets.end(),
                                                        inv.subnet_id) != inv.route_table_subnets.end();
  if (!associated) add(Action::AssociateRouteTable, rt);
  auto default_route = inv.routes.find("0.0.0.0/0");
  if (default_route == inv.routes.end() || inv.igw_id.empty() || default_route->second != inv.igw_id)
    add(Action::CreateDefaultRoute, rt);

  // Security groups and their rules.
  for (const std::string& role : roles_needed(s)) {
    auto g = inv.groups.find(role);
    std::string name = "security group " + security_group_name(s.cluster, role);
    if (g == inv.groups.end()) add(Action::CreateSecurityGroup, name, "", role);
    for (const Rule& r : desired_rules(s, role)) {
      bool present = g != inv.groups.end() && std::any_of(g->second.rules.begin(), g->second.rules.end(),
                                                          [&](const Rule& have) { return have.same(r); });
      if (present) continue;
      InfraChange c{Action::AuthorizeIngress, name, rule_text(r), role, r};
      p.changes.push_back(std::move(c));
    }
  }

  // SSH key pair.
  if (!inv.key_pair) add(Action::ImportKeyPair, "key pair " + key_pair_name(s.cluster), "");

  // The API load balancer: target group, NLB, listener.
  if (inv.tg_arn.empty())
    add(Action::CreateTargetGroup, "target group " + target_group_name(s.cluster), "(TCP 6443, targets by IP, HTTPS /readyz health checks)");
  if (inv.lb_arn.empty())
    add(Action::CreateLoadBalancer, "load balancer " + load_balancer_name(s.cluster), "(network, internet-facing)");
  if (!inv.listeners.count(s.api_port))
    add(Action::CreateListener, "listener", "TCP " + std::to_string(s.api_port) + " -> target group");
  for (const auto& [port, arn] : inv.listeners)
    if (port != s.api_port) p.notes.push_back("listener on port " + std::to_string(port) + " is not the API port; left alone");

  // Instances.
  for (const NodeSpec& n : s.nodes) {
    auto it = inv.instances.find(n.name);
    std::string res = "instance " + n.name;
    if (it == inv.instances.end()) {
      add(Action::RunInstance, res, n.instance_type + " at " + n.private_ip, n.name);
    } else {
      const Instance& i = it->second;
      res += " (" + i.id + ")";
      if (i.private_ip != n.private_ip)
        p.notes.push_back(res + " has private IP " + i.private_ip + ", the topology says " + n.private_ip +
                          "; instances are never replaced: terminate it and run up again");
      if (i.instance_type != n.instance_type)
        p.notes.push_back(res + " is a " + i.instance_type + ", the topology says " + n.instance_type + "; not changed");
      if (i.state == "stopped" || i.state == "stopping") p.notes.push_back(res + " is " + i.state + "; start it");
    }
    if (n.worker && (it == inv.instances.end() || it->second.source_dest_check))
      add(Action::DisableSourceDestCheck, res, "", n.name);
  }
  for (const Instance& i : inv.strays)
    p.notes.push_back("instance " + i.id + (i.node.empty() ? "" : " (node " + i.node + ")") +
                      " is tagged for the cluster but is no node of the topology (or a duplicate); `down` deletes it");

  // Load balancer targets: the control-plane private IPs, nothing else.
  std::set<std::string> wanted;
  for (const NodeSpec& n : s.nodes)
    if (n.control_plane) wanted.insert(n.private_ip);
  std::string tg = "target group " + target_group_name(s.cluster);
  for (const std::string& ip : wanted)
    if (!inv.targets.count(ip)) add(Action::RegisterTarget, tg, "", ip);
  for (const auto& [ip, state] : inv.targets)
    if (!wanted.count(ip)) add(Action::DeregisterTarget, tg, "", ip);

  // Pod routes: each worker's pod CIDR to its instance.
  std::set<std::string> pod_cidrs;
  for (const NodeSpec& n : s.nodes) {
    if (!n.worker || n.pod_cidr.empty()) continue;
    pod_cidrs.insert(n.pod_cidr);
    auto route = inv.routes.find(n.pod_cidr);
    auto inst = inv.instances.find(n.name);
    std::string detail = n.pod_cidr + " -> instance " + n.name;
    if (route == inv.routes.end()) add(Action::CreatePodRoute, rt, detail, n.name);
    else if (inst == inv.instances.end() || route->second != inst->second.id)
      add(Action::ReplacePodRoute, rt, detail, n.name);
  }
  for (const auto& [dest, target] : inv.routes)
    if (target.starts_with("i-") && !pod_cidrs.count(dest))
      p.notes.push_back("route " + dest + " -> " + target + " is no worker's pod CIDR; left alone");
  for (const std::string& n : inv.notes) p.notes.push_back(n);
  return p;
}

std::string resolve_image(Client& c, const ClusterSpec& s) {
  if (!s.image_id.empty()) return s.image_id;
  Params p = {{"Filter.1.Name", "name"}, {"Filter.1.Value.1", s.image_name}, {"Filter.2.Name", "state"},
              {"Filter.2.Value.1", "available"}};
  if (!s.image_owner.empty()) p.emplace_back("Owner.1", s.image_owner);
  std::string best_id, best_date;
  for (const XmlElement& page : c.call_all(Service::Ec2, "DescribeImages", p))
    for (const XmlElement* i : page.items("imagesSet"))
      if (best_id.empty() || i->get("creationDate") > best_date) {
        best_id = i->get("imageId");
        best_date = i->get("creationDate");
      }
  if (best_id.empty())
    throw Error("no AMI matches the name '" + s.image_name + "'" +
                (s.image_owner.empty() ? "" : " from owner " + s.image_owner) +
                " (hint: check aws.image.name and aws.image.owner, or give aws.image.id)");
  return best_id;
}

void apply(Client& c, const ClusterSpec& s, const InfraChanges& pending, const std::string& image_id, Inventory& inv,
           const Progress& progress, const Waiter& wait, std::chrono::seconds timeout) {
  const std::string& k = s.cluster;
  auto need = [](const std::string& id, const char* what) {
    if (id.empty()) throw Error(std::string("internal: the ") + what + " is not known yet");
    return id;
  };
  std::mt19937_64 random(std::random_device{}());
  auto instance_of = [&](const std::string& node) -> Instance& {
    auto it = inv.instances.find(node);
    if (it == inv.instances.end()) throw Error("internal: no instance for node " + node);
    return it->second;
  };

  for (const InfraChange& ch : pending.changes) {
    progress(describe(ch));
    switch (ch.action) {
      case Action::CreateVpc: {
        Params p = {{"CidrBlock", s.vpc_cidr}};
        add_tag_spec(p, 1, "vpc", tags_for(k, k));
        XmlElement r = c.call(Service::Ec2, "CreateVpc", p);
        inv.vpc_id = r.get("vpc/vpcId");
        inv.vpc_cidr = s.vpc_cidr;
        break;
      }
      case Action::EnableDnsHostnames:
        c.call(Service::Ec2, "ModifyVpcAttribute", {{"VpcId", need(inv.vpc_id, "VPC")}, {"EnableDnsHostnames.Value", "true"}});
        inv.vpc_dns_hostnames = true;
        break;
      case Action::CreateSubnet: {
        Params p = {{"VpcId", need(inv.vpc_id, "VPC")}, {"CidrBlock", s.subnet_cidr}};
        if (!s.availability_zone.empty()) p.emplace_back("AvailabilityZone", s.availability_zone);
        add_tag_spec(p, 1, "subnet", tags_for(k, k));
        XmlElement r = c.call(Service::Ec2, "CreateSubnet", p);
        inv.subnet_id = r.get("subnet/subnetId");
        inv.subnet_cidr = s.subnet_cidr;
        break;
      }
      case Action::EnablePublicIp:
        c.call(Service::Ec2, "ModifySubnetAttribute", {{"SubnetId", need(inv.subnet_id, "subnet")}, {"MapPublicIpOnLaunch.Value", "true"}});
        inv.subnet_public_ip = true;
        break;
      case Action::CreateInternetGateway: {
        Params p;
        add_tag_spec(p, 1, "internet-gateway", tags_for(k, k));
        inv.igw_id = c.call(Service::Ec2, "CreateInternetGateway", p).get("internetGateway/internetGatewayId");
        break;
      }
      case Action::AttachInternetGateway:
        c.call(Service::Ec2, "AttachInternetGateway", {{"InternetGatewayId", need(inv.igw_id, "internet gateway")}, {"VpcId", need(inv.vpc_id, "VPC")}});
        inv.igw_vpc = inv.vpc_id;
        break;
      case Action::CreateRouteTable: {
        Params p = {{"VpcId", need(inv.vpc_id, "VPC")}};
        add_tag_spec(p, 1, "route-table", tags_for(k, k));
        inv.route_table_id = c.call(Service::Ec2, "CreateRouteTable", p).get("routeTable/routeTableId");
        break;
      }
      case Action::AssociateRouteTable:
        c.call(Service::Ec2, "AssociateRouteTable", {{"RouteTableId", need(inv.route_table_id, "route table")}, {"SubnetId", need(inv.subnet_id, "subnet")}});
        inv.route_table_subnets.push_back(inv.subnet_id);
        break;
      case Action::CreateDefaultRoute: {
        Params p = {{"RouteTableId", need(inv.route_table_id, "route table")}, {"DestinationCidrBlock", "0.0.0.0/0"},
                    {"GatewayId", need(inv.igw_id, "internet gateway")}};
        c.call(Service::Ec2, inv.routes.count("0.0.0.0/0") ? "ReplaceRoute" : "CreateRoute", p);
        inv.routes["0.0.0.0/0"] = inv.igw_id;
        break;
      }
      case Action::CreateSecurityGroup: {
        Params p = {{"GroupName", security_group_name(k, ch.key)},
                    {"GroupDescription", "kbundle cluster " + k + ": " + ch.key + " nodes"},
                    {"VpcId", need(inv.vpc_id, "VPC")}};
        add_tag_spec(p, 1, "security-group", tags_for(k, security_group_name(k, ch.key)));
        inv.groups[ch.key].id = c.call(Service::Ec2, "CreateSecurityGroup", p).get("groupId");
        break;
      }
      case Action::AuthorizeIngress: {
        const Rule& r = ch.rule;
        Params p = {{"GroupId", need(inv.groups[ch.key].id, "security group")}, {"IpPermissions.1.IpProtocol", r.protocol}};
        if (r.protocol != "-1") {
          p.emplace_back("IpPermissions.1.FromPort", std::to_string(r.from_port));
          p.emplace_back("IpPermissions.1.ToPort", std::to_string(r.to_port));
        }
        if (r.source.starts_with("group:")) {
          p.emplace_back("IpPermissions.1.Groups.1.GroupId", need(inv.groups[r.source.substr(6)].id, "security group"));
          p.emplace_back("IpPermissions.1.Groups.1.Description", r.description);
        } else {
          p.emplace_back("IpPermissions.1.IpRanges.1.CidrIp", r.source);
          p.emplace_back("IpPermissions.1.IpRanges.1.Description", r.description);
        }
        try {
          c.call(Service::Ec2, "AuthorizeSecurityGroupIngress", p);
        } catch (const AwsError& e) {
          if (e.code() != "InvalidPermission.Duplicate") throw;
        }
        inv.groups[ch.key].rules.push_back(r);
        break;
      }
      case Action::ImportKeyPair: {
        Params p = {{"KeyName", key_pair_name(k)}, {"PublicKeyMaterial", base64_encode(s.ssh_public_key)}};
        add_tag_spec(p, 1, "key-pair", tags_for(k, key_pair_name(k)));
        c.call(Service::Ec2, "ImportKeyPair", p);
        inv.key_pair = true;
        break;
      }
      case Action::CreateTargetGroup: {
        Params p = {{"Name", target_group_name(k)},          {"Protocol", "TCP"},
                    {"Port", std::to_string(kApiServerPort)}, {"VpcId", need(inv.vpc_id, "VPC")},
                    {"TargetType", "ip"},                     {"HealthCheckProtocol", "HTTPS"},
                    {"HealthCheckPath", "/readyz"},           {"HealthCheckPort", "traffic-port"},
                    {"HealthCheckIntervalSeconds", "10"},     {"HealthyThresholdCount", "2"},
                    {"UnhealthyThresholdCount", "2"}};
        add_elb_tags(p, tags_for(k, target_group_name(k)));
        XmlElement r = c.call(Service::Elb, "CreateTargetGroup", p);
        auto tgs = result_of(r, "CreateTargetGroup") ? result_of(r, "CreateTargetGroup")->items("TargetGroups")
                                                     : std::vector<const XmlElement*>{};
        if (tgs.empty()) throw Error("elbv2 CreateTargetGroup: the response names no target group");
        inv.tg_arn = tgs[0]->get("TargetGroupArn");
        break;
      }
      case Action::CreateLoadBalancer: {
        Params p = {{"Name", load_balancer_name(k)}, {"Type", "network"}, {"Scheme", "internet-facing"},
                    {"Subnets.member.1", need(inv.subnet_id, "subnet")}};
        add_elb_tags(p, tags_for(k, load_balancer_name(k)));
        XmlElement r = c.call(Service::Elb, "CreateLoadBalancer", p);
        auto lbs = result_of(r, "CreateLoadBalancer") ? result_of(r, "CreateLoadBalancer")->items("LoadBalancers")
                                                      : std::vector<const XmlElement*>{};
        if (lbs.empty()) throw Error("elbv2 CreateLoadBalancer: the response names no load balancer");
        inv.lb_arn = lbs[0]->get("LoadBalancerArn");
        inv.lb_dns = lbs[0]->get("DNSName");
        inv.lb_state = lbs[0]->get("State/Code");
        break;
      }
      case Action::CreateListener: {
        XmlElement r = c.call(Service::Elb, "CreateListener",
                              {{"LoadBalancerArn", need(inv.lb_arn, "load balancer")},
                               {"Protocol", "TCP"},
                               {"Port", std::to_string(s.api_port)},
                               {"DefaultActions.member.1.Type", "forward"},
                               {"DefaultActions.member.1.TargetGroupArn", need(inv.tg_arn, "target group")}});
        const XmlElement* res = result_of(r, "CreateListener");
        auto ls = res ? res->items("Listeners") : std::vector<const XmlElement*>{};
        inv.listeners[s.api_port] = ls.empty() ? std::string("?") : ls[0]->get("ListenerArn");
        break;
      }
      case Action::RunInstance: {
        const NodeSpec* n = nullptr;
        for (const NodeSpec& candidate : s.nodes)
          if (candidate.name == ch.key) n = &candidate;
        if (!n) throw Error("internal: no node " + ch.key);
        char token[33];
        std::snprintf(token, sizeof token, "%016llx%016llx", static_cast<unsigned long long>(random()),
                      static_cast<unsigned long long>(random()));
        Params p = {{"ImageId", need(image_id, "image")}, {"InstanceType", n->instance_type}, {"MinCount", "1"},
                    {"MaxCount", "1"},  {"KeyName", key_pair_name(k)},      {"SubnetId", need(inv.subnet_id, "subnet")},
                    {"PrivateIpAddress", n->private_ip}, {"ClientToken", token}};
        int g = 1;
        if (n->control_plane) p.emplace_back("SecurityGroupId." + std::to_string(g++), need(inv.groups[kRoleControlPlane].id, "security group"));
        if (n->worker) p.emplace_back("SecurityGroupId." + std::to_string(g++), need(inv.groups[kRoleWorker].id, "security group"));
        if (!n->user_data.empty()) p.emplace_back("UserData", base64_encode(n->user_data));
        add_tag_spec(p, 1, "instance", tags_for(k, k + "-" + n->name, n->name));
        add_tag_spec(p, 2, "volume", tags_for(k, k + "-" + n->name, n->name));
        XmlElement r = c.call(Service::Ec2, "RunInstances", p);
        auto items = r.items("instancesSet");
        if (items.empty()) throw Error("ec2 RunInstances: the response names no instance");
        Instance i;
        i.id = items[0]->get("instanceId");
        i.node = n->name;
        i.state = items[0]->get("instanceState/name");
        i.private_ip = items[0]->get("privateIpAddress");
        i.public_ip = items[0]->get("ipAddress");
        i.instance_type = n->instance_type;
        i.source_dest_check = items[0]->get("sourceDestCheck") != "false";
        inv.instances[n->name] = i;
        break;
      }
      case Action::DisableSourceDestCheck: {
        Instance& i = instance_of(ch.key);
        c.call(Service::Ec2, "ModifyInstanceAttribute", {{"InstanceId", i.id}, {"SourceDestCheck.Value", "false"}});
        i.source_dest_check = false;
        break;
      }
      case Action::RegisterTarget:
      case Action::DeregisterTarget: {
        bool reg = ch.action == Action::RegisterTarget;
        c.call(Service::Elb, reg ? "RegisterTargets" : "DeregisterTargets",
               {{"TargetGroupArn", need(inv.tg_arn, "target group")},
                {"Targets.member.1.Id", ch.key},
                {"Targets.member.1.Port", std::to_string(kApiServerPort)}});
        if (reg) inv.targets[ch.key] = "initial";
        else inv.targets.erase(ch.key);
        break;
      }
      case Action::CreatePodRoute:
      case Action::ReplacePodRoute: {
        const NodeSpec* n = nullptr;
        for (const NodeSpec& candidate : s.nodes)
          if (candidate.name == ch.key) n = &candidate;
        if (!n) throw Error("internal: no node " + ch.key);
        Instance& i = instance_of(ch.key);
        c.call(Service::Ec2, ch.action == Action::CreatePodRoute ? "CreateRoute" : "ReplaceRoute",
               {{"RouteTableId", need(inv.route_table_id, "route table")},
                {"DestinationCidrBlock", n->pod_cidr},
                {"InstanceId", i.id}});
        inv.routes[n->pod_cidr] = i.id;
        break;
      }
    }
  }

  // Every node's instance running, with its public address known.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    std::vector<std::string> waiting;
    std::map<std::string, Instance> now;
    for (Instance& i : live_instances(c, s.cluster, false))
      if (!i.node.empty() && !now.count(i.node)) now[i.node] = i;
    for (const NodeSpec& n : s.nodes) {
      auto it = now.find(n.name);
      if (it == now.end()) throw Error("instance of node " + n.name + " disappeared (terminated while starting?)");
      if (it->second.state != "running" || (inv.subnet_public_ip && it->second.public_ip.empty()))
        waiting.push_back(n.name + " (" + it->second.state + ")");
    }
    for (auto& [node, i] : now) inv.instances[node] = i;
    if (waiting.empty()) break;
    if (std::chrono::steady_clock::now() > deadline) {
      std::string list;
      for (const auto& w : waiting) list += (list.empty() ? "" : ", ") + w;
      throw Error("instances not running after " + std::to_string(timeout.count()) + " s: " + list +
                  " (hint: `kbundle aws status`; run up again to finish)");
    }
    progress("waiting for " + std::to_string(waiting.size()) + " instance(s) to run: " + waiting.front() + "...");
    wait(kPoll);
  }
}

namespace {

// Runs `fn` until it succeeds; DependencyViolation and ResourceInUse are retried (something that
// depends on the resource is still going away), NotFound counts as done. True if it deleted.
bool delete_with_retry(const std::string& what, const std::function<void()>& fn, const Waiter& wait,
                       std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    try {
      fn();
      return true;
    } catch (const AwsError& e) {
      if (is_not_found(e)) return false;
      bool busy = e.code() == "DependencyViolation" || e.code() == "ResourceInUse" || e.code() == "InvalidGroup.InUse";
      if (!busy || std::chrono::steady_clock::now() > deadline)
        throw Error("deleting " + what + ": " + e.what());
      wait(kPoll);
    }
  }
}

}  // namespace

int destroy(Client& c, const std::string& cluster, const Progress& progress, const Waiter& wait,
            std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const Params tagged = cluster_filter(cluster);
  int deleted = 0;
  auto step = [&](const std::string& what, const std::function<void()>& fn) {
    progress("delete " + what);
    if (delete_with_retry(what, fn, wait, deadline)) ++deleted;
  };

  // 1. The load balancer (its listeners go with it), then the target group.
  XmlElement holder;
  auto [lb_arn, lb] = find_elb_resource(c, "DescribeLoadBalancers", "LoadBalancers", "LoadBalancerArn",
                                        load_balancer_name(cluster), cluster, holder);
  if (lb) {
    for (const XmlElement& page : c.call_all(Service::Elb, "DescribeListeners", {{"LoadBalancerArn", lb_arn}}))
      if (const XmlElement* r = result_of(page, "DescribeListeners"))
        for (const XmlElement* l : r->items("Listeners")) {
          std::string arn = l->get("ListenerArn");
          step("listener " + arn, [&] { c.call(Service::Elb, "DeleteListener", {{"ListenerArn", arn}}); });
        }
    const std::string arn = lb_arn;
    step("load balancer " + load_balancer_name(cluster), [&] { c.call(Service::Elb, "DeleteLoadBalancer", {{"LoadBalancerArn", arn}}); });
  }
  XmlElement tg_holder;
  auto [tg_arn, tg] = find_elb_resource(c, "DescribeTargetGroups", "TargetGroups", "TargetGroupArn",
                                        target_group_name(cluster), cluster, tg_holder);
  if (tg) {
    const std::string arn = tg_arn;
    step("target group " + target_group_name(cluster), [&] { c.call(Service::Elb, "DeleteTargetGroup", {{"TargetGroupArn", arn}}); });
  }

  // 2. Instances: terminate, and wait until they are gone (their network interfaces hold the subnet).
  std::vector<Instance> instances = live_instances(c, cluster, true);
  if (!instances.empty()) {
    Params p;
    int n = 0;
    for (const Instance& i : instances)
      if (i.state != "shutting-down") p.emplace_back("InstanceId." + std::to_string(++n), i.id);
    if (n > 0) {
      progress("terminate " + std::to_string(n) + " instance(s)");
      c.call(Service::Ec2, "TerminateInstances", p);
      deleted += n;
    }
    for (;;) {
      auto left = live_instances(c, cluster, true);
      if (left.empty()) break;
      if (std::chrono::steady_clock::now() > deadline)
        throw Error(std::to_string(left.size()) + " instance(s) still terminating after " +
                    std::to_string(timeout.count()) + " s (hint: run down again)");
      progress("waiting for " + std::to_string(left.size()) + " instance(s) to terminate");
      wait(kPoll);
    }
  }

  // 3. The key pair, when it is the cluster's.
  try {
    XmlElement k = c.call(Service::Ec2, "DescribeKeyPairs", {{"KeyName.1", key_pair_name(cluster)}});
    for (const XmlElement* kp : k.items("keySet")) {
      auto tags = ec2_tags(*kp);
      if (tags[cluster_tag_key(cluster)] != "owned") {
        progress("key pair " + key_pair_name(cluster) + " is not tagged for the cluster; left alone");
        continue;
      }
      step("key pair " + key_pair_name(cluster),
           [&] { c.call(Service::Ec2, "DeleteKeyPair", {{"KeyName", key_pair_name(cluster)}}); });
    }
  } catch (const AwsError& e) {
    if (!is_not_found(e)) throw;
  }

  // 4. Route tables: disassociate, delete.
  for (const XmlElement& page : c.call_all(Service::Ec2, "DescribeRouteTables", tagged))
    for (const XmlElement* t : page.items("routeTableSet")) {
      std::string id = t->get("routeTableId");
      for (const XmlElement* a : t->items("associationSet")) {
        if (a->get("main") == "true") continue;
        std::string assoc = a->get("routeTableAssociationId");
        progress("disassociate route table " + id + " (" + assoc + ")");
        delete_with_retry(assoc, [&] { c.call(Service::Ec2, "DisassociateRouteTable", {{"AssociationId", assoc}}); }, wait, deadline);
      }
      step("route table " + id, [&] { c.call(Service::Ec2, "DeleteRouteTable", {{"RouteTableId", id}}); });
    }

  // 5. Internet gateways: detach, delete.
  for (const XmlElement& page : c.call_all(Service::Ec2, "DescribeInternetGateways", tagged))
    for (const XmlElement* g : page.items("internetGatewaySet")) {
      std::string id = g->get("internetGatewayId");
      for (const XmlElement* a : g->items("attachmentSet")) {
        std::string vpc = a->get("vpcId");
        progress("detach internet gateway " + id + " from " + vpc);
        delete_with_retry("the attachment of " + id, [&] {
          c.call(Service::Ec2, "DetachInternetGateway", {{"InternetGatewayId", id}, {"VpcId", vpc}});
        }, wait, deadline);
      }
      step("internet gateway " + id, [&] { c.call(Service::Ec2, "DeleteInternetGateway", {{"InternetGatewayId", id}}); });
    }

  // 6. Security groups of the cluster's VPCs (and any tagged elsewhere): first the rules that
  // reference another group, which would block deleting it, then the groups.
  std::vector<std::string> vpcs, subnets;
  for (const XmlElement& page : c.call_all(Service::Ec2, "DescribeVpcs", tagged))
    for (const XmlElement* v : page.items("vpcSet")) vpcs.push_back(v->get("vpcId"));
  std::vector<std::pair<std::string, std::string>> groups;  // id, name
  std::set<std::string> seen;
  auto collect_groups = [&](const Params& filter) {
    for (const XmlElement& page : c.call_all(Service::Ec2, "DescribeSecurityGroups", filter))
      for (const XmlElement* g : page.items("securityGroupInfo")) {
        std::string id = g->get("groupId");
        if (g->get("groupName") == "default" || !seen.insert(id).second) continue;
        groups.emplace_back(id, g->get("groupName"));
        for (const XmlElement* perm : g->items("ipPermissions"))
          for (const XmlElement* pair : perm->items("groups")) {
            Params p = {{"GroupId", id}, {"IpPermissions.1.IpProtocol", perm->get("ipProtocol")},
                        {"IpPermissions.1.Groups.1.GroupId", pair->get("groupId")}};
            if (!perm->get("fromPort").empty()) p.emplace_back("IpPermissions.1.FromPort", perm->get("fromPort"));
            if (!perm->get("toPort").empty()) p.emplace_back("IpPermissions.1.ToPort", perm->get("toPort"));
            delete_with_retry("a rule of " + id, [&] { c.call(Service::Ec2, "RevokeSecurityGroupIngress", p); }, wait, deadline);
          }
      }
  };
  for (const std::string& vpc : vpcs) collect_groups({{"Filter.1.Name", "vpc-id"}, {"Filter.1.Value.1", vpc}});
  collect_groups(tagged);
  for (const auto& [id, name] : groups)
    step("security group " + name + " (" + id + ")", [&] { c.call(Service::Ec2, "DeleteSecurityGroup", {{"GroupId", id}}); });

  // 7. Subnets, then the VPCs.
  for (const XmlElement& page : c.call_all(Service::Ec2, "DescribeSubnets", tagged))
    for (const XmlElement* sn : page.items("subnetSet")) subnets.push_back(sn->get("subnetId"));
  for (const std::string& vpc : vpcs)
    for (const XmlElement& page : c.call_all(Service::Ec2, "DescribeSubnets", {{"Filter.1.Name", "vpc-id"}, {"Filter.1.Value.1", vpc}}))
      for (const XmlElement* sn : page.items("subnetSet"))
        if (std::find(subnets.begin(), subnets.end(), sn->get("subnetId")) == subnets.end()) subnets.push_back(sn->get("subnetId"));
  for (const std::string& id : subnets)
    step("subnet " + id, [&] { c.call(Service::Ec2, "DeleteSubnet", {{"SubnetId", id}}); });
  for (const std::string& id : vpcs) step("vpc " + id, [&] { c.call(Service::Ec2, "DeleteVpc", {{"VpcId", id}}); });
  return deleted;
}

nlohmann::json to_json(const Inventory& inv) {
  using nlohmann::json;
  auto opt = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  json j;
  j["vpc"] = inv.vpc_id.empty() ? json(nullptr)
                                : json{{"id", inv.vpc_id}, {"cidr", inv.vpc_cidr}, {"dnsHostnames", inv.vpc_dns_hostnames}};
  j["subnet"] = inv.subnet_id.empty()
                    ? json(nullptr)
                    : json{{"id", inv.subnet_id}, {"cidr", inv.subnet_cidr}, {"mapPublicIpOnLaunch", inv.subnet_public_ip}};
  j["internetGateway"] = inv.igw_id.empty() ? json(nullptr) : json{{"id", inv.igw_id}, {"attachedTo", opt(inv.igw_vpc)}};
  json routes = json::array();
  for (const auto& [dest, target] : inv.routes) routes.push_back({{"destination", dest}, {"target", target}});
  j["routeTable"] = inv.route_table_id.empty()
                        ? json(nullptr)
                        : json{{"id", inv.route_table_id}, {"subnets", inv.route_table_subnets}, {"routes", routes}};
  json groups = json::object();
  for (const auto& [role, g] : inv.groups) {
    json rules = json::array();
    for (const Rule& r : g.rules)
      rules.push_back({{"protocol", r.protocol}, {"fromPort", r.from_port}, {"toPort", r.to_port}, {"source", r.source},
                       {"description", r.description}});
    groups[role] = {{"id", g.id}, {"rules", rules}};
  }
  j["securityGroups"] = groups;
  j["keyPair"] = inv.key_pair;
  json listeners = json::array();
  for (const auto& [port, arn] : inv.listeners) listeners.push_back({{"port", port}, {"arn", arn}});
  json targets = json::array();
  for (const auto& [ip, state] : inv.targets) targets.push_back({{"ip", ip}, {"state", state}});
  j["loadBalancer"] = inv.lb_arn.empty()
                          ? json(nullptr)
                          : json{{"arn", inv.lb_arn}, {"dnsName", inv.lb_dns}, {"state", inv.lb_state}, {"listeners", listeners}};
  j["targetGroup"] = inv.tg_arn.empty() ? json(nullptr) : json{{"arn", inv.tg_arn}, {"targets", targets}};
  auto inst = [&](const Instance& i) {
    return json{{"node", opt(i.node)},         {"id", i.id},
                {"state", i.state},            {"privateIP", opt(i.private_ip)},
                {"publicIP", opt(i.public_ip)}, {"instanceType", i.instance_type},
                {"sourceDestCheck", i.source_dest_check}};
  };
  json instances = json::array();
  for (const auto& [node, i] : inv.instances) instances.push_back(inst(i));
  json strays = json::array();
  for (const Instance& i : inv.strays) strays.push_back(inst(i));
  j["instances"] = instances;
  j["strayInstances"] = strays;
  j["notes"] = inv.notes;
  return j;
}

std::string render_user_data(const std::string& bundle_url, const std::string& installer_url,
                             const std::string& cluster, const std::string& node) {
  auto expand = [&](std::string s) {
    for (auto [from, to] : {std::pair<std::string, std::string>{"{node}", node}, {"{cluster}", cluster}})
      for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
    // Single-quoted for the shell: ' becomes '\''.
    std::string quoted = "'";
    for (char ch : s) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    return quoted + "'";
  };
  std::string s =
      "#!/bin/sh\n"
      "# Written by `kbundle aws up` for node " + node + " of cluster " + cluster + ":\n"
      "# fetch this node's bundle and apply it with kbundle-installer.\n"
      "set -eu\n"
      "dir=/var/lib/kbundle/incoming\n"
      "mkdir -p \"$dir\" && chmod 0700 \"$dir\" && cd \"$dir\"\n"
      "fetch() { curl -fsSL --retry 10 --retry-connrefused --retry-delay 5 -o \"$2\" \"$1\"; }\n";
  if (!installer_url.empty())
    s += "fetch " + expand(installer_url) + " kbundle-installer.new && chmod 0755 kbundle-installer.new && "
         "mv kbundle-installer.new /usr/local/bin/kbundle-installer\n";
  s += "fetch " + expand(bundle_url) + " " + node + ".kbundle\n";
  s += "exec /usr/local/bin/kbundle-installer apply \"$dir/" + node + ".kbundle\"\n";
  return s;
}

}  // namespace kb::aws
