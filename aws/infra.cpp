#include "aws/infra.h"

#include <algorithm>
#include <optional>
#include <random>
#include <set>

#include "base/hash.h"

namespace kb::aws {

namespace {

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

// A client token: 32 hex digits (AWS allows 64 ASCII characters).
std::string random_token(std::mt19937_64& random) {
  char token[33];
  std::snprintf(token, sizeof token, "%016llx%016llx", static_cast<unsigned long long>(random()),
                static_cast<unsigned long long>(random()));
  return token;
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
        i.launch_time = it->get("launchTime");
        i.subnet_id = it->get("subnetId");
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

// Every rule of one direction ("ipPermissions" or "ipPermissionsEgress"), one Rule per source:
// IPv4 and IPv6 ranges, prefix lists and groups (a group of the cluster by its role).
std::vector<Rule> parse_rules(const XmlElement& group, const char* direction,
                              const std::map<std::string, std::string>& role_of_id) {
  std::vector<Rule> rules;
  for (const XmlElement* perm : group.items(direction)) {
    auto add = [&](std::string source, std::string description) {
      Rule r = parse_rule_common(*perm);
      r.source = std::move(source);
      r.description = std::move(description);
      rules.push_back(std::move(r));
    };
    for (const XmlElement* x : perm->items("ipRanges")) add(x->get("cidrIp"), x->get("description"));
    for (const XmlElement* x : perm->items("ipv6Ranges")) add(x->get("cidrIpv6"), x->get("description"));
    for (const XmlElement* x : perm->items("prefixListIds")) add("prefix-list:" + x->get("prefixListId"), x->get("description"));
    for (const XmlElement* x : perm->items("groups")) {
      auto it = role_of_id.find(x->get("groupId"));
      add("group:" + (it == role_of_id.end() ? x->get("groupId") : it->second), x->get("description"));
    }
  }
  return rules;
}

// IpPermissions.1.* for one rule; `group_id` turns a role into its group id.
void add_permission(Params& p, const Rule& r, const std::function<std::string(const std::string&)>& group_id,
                    bool with_description) {
  p.emplace_back("IpPermissions.1.IpProtocol", r.protocol);
  if (r.protocol != "-1") {
    p.emplace_back("IpPermissions.1.FromPort", std::to_string(r.from_port));
    p.emplace_back("IpPermissions.1.ToPort", std::to_string(r.to_port));
  }
  std::string prefix;
  if (r.source.starts_with("group:")) {
    std::string g = r.source.substr(6);
    p.emplace_back("IpPermissions.1.Groups.1.GroupId", g.starts_with("sg-") ? g : group_id(g));
    prefix = "IpPermissions.1.Groups.1.";
  } else if (r.source.starts_with("prefix-list:")) {
    p.emplace_back("IpPermissions.1.PrefixListIds.1.PrefixListId", r.source.substr(12));
    prefix = "IpPermissions.1.PrefixListIds.1.";
  } else if (r.source.find(':') != std::string::npos) {
    p.emplace_back("IpPermissions.1.Ipv6Ranges.1.CidrIpv6", r.source);
    prefix = "IpPermissions.1.Ipv6Ranges.1.";
  } else {
    p.emplace_back("IpPermissions.1.IpRanges.1.CidrIp", r.source);
    prefix = "IpPermissions.1.IpRanges.1.";
  }
  if (with_description && !r.description.empty()) p.emplace_back(prefix + "Description", r.description);
}

bool has_rule(const std::vector<Rule>& rules, const Rule& r) {
  return std::any_of(rules.begin(), rules.end(), [&](const Rule& have) { return have.same(r); });
}

}  // namespace

bool admin_cidr_is_everyone(const std::string& cidr) { return cidr.ends_with("/0"); }

std::string key_pair_name(const std::string& cluster) { return "kbundle-" + cluster; }
std::string load_balancer_name(const std::string& cluster) { return short_name(cluster, "-api", 32); }
std::string target_group_name(const std::string& cluster) { return short_name(cluster, "-apiservers", 32); }
std::string security_group_name(const std::string& cluster, const std::string& role) { return cluster + "-" + role; }

namespace {
bool has_workers(const ClusterSpec& s) {
  return std::any_of(s.nodes.begin(), s.nodes.end(), [](const NodeSpec& n) { return n.worker; });
}
}  // namespace

// No rule admits the VPC or subnet CIDR: the load balancer's private addresses are in the subnet,
// and whatever it forwards would then pass. Nodes admit each other by group instead.
std::vector<Rule> desired_rules(const ClusterSpec& s, const std::string& role) {
  const std::string cp = std::string("group:") + kRoleControlPlane, wk = std::string("group:") + kRoleWorker,
                    lb = std::string("group:") + kRoleApiLb;
  std::vector<Rule> r;
  if (role == kRoleApiLb) {
    r.push_back({"tcp", s.api_port, s.api_port, s.admin_cidr, "Kubernetes API from the admin network"});
    r.push_back({"tcp", s.api_port, s.api_port, cp, "Kubernetes API from the control-plane nodes"});
    if (has_workers(s)) r.push_back({"tcp", s.api_port, s.api_port, wk, "Kubernetes API from the workers"});
    return r;
  }
  r.push_back({"tcp", 22, 22, s.admin_cidr, "SSH from the admin network"});
  if (role == kRoleControlPlane) {
    r.push_back({"tcp", kApiServerPort, kApiServerPort, s.admin_cidr, "Kubernetes API from the admin network"});
    r.push_back({"tcp", kApiServerPort, kApiServerPort, lb, "Kubernetes API through the load balancer, and its health checks"});
  } else {
    r.push_back({"tcp", 30000, 32767, s.admin_cidr, "NodePort services from the admin network"});
  }
  r.push_back({"-1", -1, -1, cp, "all traffic from the control-plane nodes"});
  if (has_workers(s)) r.push_back({"-1", -1, -1, wk, "all traffic from the workers"});
  if (!s.pod_cidr.empty()) r.push_back({"-1", -1, -1, s.pod_cidr, "all traffic from pods"});
  return r;
}

std::vector<Rule> desired_egress(const ClusterSpec&, const std::string& role) {
  if (role == kRoleApiLb)
    return {{"tcp", kApiServerPort, kApiServerPort, std::string("group:") + kRoleControlPlane,
             "to the kube-apiservers: forwarded connections and health checks"}};
  return {{"-1", -1, -1, "0.0.0.0/0", "anywhere: packages, images, the AWS APIs"}};
}

std::vector<Rule> node_address_rules(const ClusterSpec& s, const Inventory& inv) {
  std::vector<Rule> r;
  for (const NodeSpec& n : s.nodes) {
    auto it = inv.instances.find(n.name);
    if (it == inv.instances.end() || it->second.public_ip.empty()) continue;
    r.push_back({"tcp", s.api_port, s.api_port, it->second.public_ip + "/32",
                 "Kubernetes API from node " + n.name + " (its public IP)"});
  }
  return r;
}

Inventory discover(Client& c, const std::string& cluster) {
  Inventory inv;
  const Params tagged = cluster_filter(cluster);

  // What is tagged for the cluster, gathered first: the VPC to adopt is the one with the most
  // in it, so a lost answer to CreateVpc (two tagged VPCs) never stops every command.
  std::vector<const XmlElement*> vpcs, subnets;
  auto vpc_pages = c.call_all(Service::Ec2, "DescribeVpcs", tagged);
  for (const XmlElement& page : vpc_pages)
    for (const XmlElement* v : page.items("vpcSet")) vpcs.push_back(v);
  auto subnet_pages = c.call_all(Service::Ec2, "DescribeSubnets", tagged);
  for (const XmlElement& page : subnet_pages)
    for (const XmlElement* sn : page.items("subnetSet")) subnets.push_back(sn);
  std::vector<Instance> live = live_instances(c, cluster, false);
  std::map<std::string, int> in_subnet;  // subnet id -> live instances in it
  for (const Instance& i : live) ++in_subnet[i.subnet_id];
  auto by_id = [](const XmlElement* a, const XmlElement* b, const char* key) { return a->get(key) < b->get(key); };
  std::map<std::string, int> weight;  // vpc id -> tagged subnets + instances in them
  for (const XmlElement* sn : subnets) weight[sn->get("vpcId")] += 1 + in_subnet[sn->get("subnetId")];
  std::sort(vpcs.begin(), vpcs.end(), [&](const XmlElement* a, const XmlElement* b) {
    int wa = weight[a->get("vpcId")], wb = weight[b->get("vpcId")];
    return wa != wb ? wa > wb : by_id(a, b, "vpcId");
  });
  if (!vpcs.empty()) {
    inv.vpc_id = vpcs[0]->get("vpcId");
    inv.vpc_cidr = vpcs[0]->get("cidrBlock");
    XmlElement a = c.call(Service::Ec2, "DescribeVpcAttribute", {{"VpcId", inv.vpc_id}, {"Attribute", "enableDnsHostnames"}});
    inv.vpc_dns_hostnames = a.get("enableDnsHostnames/value") == "true";
  }

  // Subnet: of the tagged ones in the VPC, the one with the most instances (then the lowest id).
  std::sort(subnets.begin(), subnets.end(), [&](const XmlElement* a, const XmlElement* b) {
    int ia = in_subnet[a->get("subnetId")], ib = in_subnet[b->get("subnetId")];
    return ia != ib ? ia > ib : by_id(a, b, "subnetId");
  });
  for (const XmlElement* sn : subnets) {
    if (sn->get("vpcId") != inv.vpc_id) continue;
    std::string id = sn->get("subnetId");
    if (inv.subnet_id.empty()) {
      inv.subnet_id = id;
      inv.subnet_cidr = sn->get("cidrBlock");
      inv.subnet_public_ip = sn->get("mapPublicIpOnLaunch") == "true";
      continue;
    }
    int n = in_subnet[id];
    inv.duplicates.push_back({"subnet", id, n == 0,
                              n == 0 ? "a second tagged subnet, empty; " + inv.subnet_id + " is adopted"
                                     : "a second tagged subnet with " + std::to_string(n) + " instance(s); left alone",
                              {}});
  }

  // Internet gateway: the tagged one attached to the VPC, else the lowest id; a detached extra is deleted.
  std::vector<std::pair<std::string, std::string>> igws;  // id, attached VPC
  for (const XmlElement& page : c.call_all(Service::Ec2, "DescribeInternetGateways", tagged))
    for (const XmlElement* g : page.items("internetGatewaySet")) {
      std::string attached;
      for (const XmlElement* a : g->items("attachmentSet"))
        if (a->get("state") == "available" || a->get("state") == "attached") attached = a->get("vpcId");
      igws.emplace_back(g->get("internetGatewayId"), attached);
    }
  std::sort(igws.begin(), igws.end(), [&](const auto& a, const auto& b) {
    bool ours_a = !inv.vpc_id.empty() && a.second == inv.vpc_id, ours_b = !inv.vpc_id.empty() && b.second == inv.vpc_id;
    return ours_a != ours_b ? ours_a : a.first < b.first;
  });
  for (const auto& [id, attached] : igws) {
    if (inv.igw_id.empty() && (attached.empty() || attached == inv.vpc_id)) {
      inv.igw_id = id;
      inv.igw_vpc = attached;
      continue;
    }
    inv.duplicates.push_back({"internet gateway", id, attached.empty(),
                              attached.empty() ? "a second tagged internet gateway, detached" +
                                                     (inv.igw_id.empty() ? std::string() : "; " + inv.igw_id + " is adopted")
                                               : "a tagged internet gateway attached to " + attached + "; left alone",
                              {}});
  }

  // Route table: of the tagged ones in the VPC, the one associated with the subnet, else the one
  // with the most routes, else the lowest id. The others are deleted (after their associations).
  std::vector<const XmlElement*> tables;
  auto rt_pages = c.call_all(Service::Ec2, "DescribeRouteTables", tagged);
  for (const XmlElement& page : rt_pages)
    for (const XmlElement* t : page.items("routeTableSet"))
      if (!inv.vpc_id.empty() && t->get("vpcId") == inv.vpc_id) tables.push_back(t);
  auto serves_subnet = [&](const XmlElement* t) {
    for (const XmlElement* a : t->items("associationSet"))
      if (!inv.subnet_id.empty() && a->get("subnetId") == inv.subnet_id) return true;
    return false;
  };
  std::sort(tables.begin(), tables.end(), [&](const XmlElement* a, const XmlElement* b) {
    bool sa = serves_subnet(a), sb = serves_subnet(b);
    if (sa != sb) return sa;
    size_t ra = a->items("routeSet").size(), rb = b->items("routeSet").size();
    return ra != rb ? ra > rb : by_id(a, b, "routeTableId");
  });
  for (const XmlElement* t : tables) {
    if (!inv.route_table_id.empty()) {
      Duplicate d{"route table", t->get("routeTableId"), true,
                  "a second tagged route table; " + inv.route_table_id + " is adopted", {}};
      for (const XmlElement* a : t->items("associationSet")) {
        if (a->get("main") == "true") d.deletable = false, d.why = "a tagged route table that is the VPC's main one; left alone";
        else d.associations.push_back(a->get("routeTableAssociationId"));
      }
      inv.duplicates.push_back(std::move(d));
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

  // Other tagged VPCs: deleted when nothing is in them (a lost CreateVpc answer's twin).
  for (size_t i = 1; i < vpcs.size(); ++i) {
    std::string id = vpcs[i]->get("vpcId");
    std::vector<std::string> inside;
    if (weight[id] > 0) inside.push_back("subnets");
    for (const auto& [g, attached] : igws)
      if (attached == id) inside.push_back("internet gateway " + g);
    for (const XmlElement& page : rt_pages)
      for (const XmlElement* t : page.items("routeTableSet"))
        if (t->get("vpcId") == id) inside.push_back("route table " + t->get("routeTableId"));
    for (const XmlElement& page : c.call_all(Service::Ec2, "DescribeSecurityGroups", {{"Filter.1.Name", "vpc-id"}, {"Filter.1.Value.1", id}}))
      for (const XmlElement* g : page.items("securityGroupInfo"))
        if (g->get("groupName") != "default") inside.push_back("security group " + g->get("groupId"));
    std::string list;
    for (const std::string& x : inside) list += (list.empty() ? "" : ", ") + x;
    inv.duplicates.push_back({"vpc", id, inside.empty(),
                              "a second VPC tagged for the cluster; " + inv.vpc_id + " is adopted" +
                                  (inside.empty() ? ", this one is empty" : "; it holds " + list + ": left alone"),
                              {}});
  }

  // Security groups: by name in the cluster's VPC.
  if (!inv.vpc_id.empty()) {
    std::vector<const XmlElement*> groups;
    auto pages = c.call_all(Service::Ec2, "DescribeSecurityGroups", {{"Filter.1.Name", "vpc-id"}, {"Filter.1.Value.1", inv.vpc_id}});
    std::map<std::string, std::string> role_of_id;
    for (const XmlElement& page : pages)
      for (const XmlElement* g : page.items("securityGroupInfo"))
        for (const char* role : {kRoleControlPlane, kRoleWorker, kRoleApiLb})
          if (g->get("groupName") == security_group_name(cluster, role)) {
            groups.push_back(g);
            role_of_id[g->get("groupId")] = role;
            inv.groups[role].id = g->get("groupId");
          }
    for (const XmlElement* g : groups) {
      auto& group = inv.groups[role_of_id[g->get("groupId")]];
      group.rules = parse_rules(*g, "ipPermissions", role_of_id);
      group.egress = parse_rules(*g, "ipPermissionsEgress", role_of_id);
    }
  }
  // Key pair: by name.
  try {
    XmlElement k = c.call(Service::Ec2, "DescribeKeyPairs", {{"KeyName.1", key_pair_name(cluster)}});
    inv.key_pair = !k.items("keySet").empty();
  } catch (const AwsError& e) {
    if (!is_not_found(e)) throw;
  }

  // Instances: live ones with the cluster's tag, one per node: the oldest (then the lowest id);
  // a later one for the same node is a duplicate that `up` terminates.
  std::sort(live.begin(), live.end(), [](const Instance& a, const Instance& b) {
    return a.launch_time != b.launch_time ? a.launch_time < b.launch_time : a.id < b.id;
  });
  for (Instance& i : live) {
    if (i.node.empty()) {
      inv.strays.push_back(i);
    } else if (inv.instances.count(i.node)) {
      inv.duplicates.push_back({"instance", i.id, true,
                                "a second instance of node " + i.node + "; " + inv.instances[i.node].id + " is adopted", {}});
    } else {
      inv.instances[i.node] = i;
    }
  }

  // Load balancer, its listeners, the target group and its targets: by name, checked by tag.
  XmlElement holder;
  auto [lb_arn, lb] = find_elb_resource(c, "DescribeLoadBalancers", "LoadBalancers", "LoadBalancerArn",
                                        load_balancer_name(cluster), cluster, holder);
  if (lb) {
    inv.lb_arn = lb_arn;
    inv.lb_dns = lb->get("DNSName");
    inv.lb_state = lb->get("State/Code");
    for (const XmlElement* g : lb->items("SecurityGroups")) inv.lb_groups.push_back(g->text);
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
    XmlElement attrs = c.call(Service::Elb, "DescribeTargetGroupAttributes", {{"TargetGroupArn", tg_arn}});
    if (const XmlElement* r = result_of(attrs, "DescribeTargetGroupAttributes"))
      for (const XmlElement* a : r->items("Attributes"))
        if (a->get("Key") == "preserve_client_ip.enabled") inv.tg_preserve_client_ip = a->get("Value");
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
    case Action::CreateSecurityGroup: return "create " + c.resource + (c.detail.empty() ? "" : " " + c.detail);
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
    case Action::RevokeIngress: return "revoke " + c.detail + " in " + c.resource;
    case Action::AuthorizeEgress: return "allow egress " + c.detail + " in " + c.resource;
    case Action::RevokeEgress: return "revoke egress " + c.detail + " in " + c.resource;
    case Action::SetTargetGroupAttributes: return "set " + c.detail + " on " + c.resource;
    case Action::AuthorizeNodeAddresses: return "allow " + c.detail + " in " + c.resource;
    case Action::DeleteDuplicate: return "delete duplicate " + c.resource + " (" + c.detail + ")";
  }
  return "?";
}

namespace {

std::string rule_text(const Rule& r, bool egress = false) {
  std::string ports = r.protocol == "-1" ? "all traffic"
                      : r.from_port == r.to_port
                          ? "tcp " + std::to_string(r.from_port)
                          : "tcp " + std::to_string(r.from_port) + "-" + std::to_string(r.to_port);
  if (r.protocol != "-1" && r.protocol != "tcp") ports = r.protocol + " " + std::to_string(r.from_port) + "-" + std::to_string(r.to_port);
  std::string source = r.source.starts_with("group:") ? "the " + r.source.substr(6) + " group" : r.source;
  return ports + (egress ? " to " : " from ") + source + (r.description.empty() ? "" : " (" + r.description + ")");
}

// Roles of the groups the cluster needs; the load balancer's last, as its rules name the others.
std::vector<std::string> roles_needed(const ClusterSpec& s) {
  std::vector<std::string> roles = {kRoleControlPlane};
  if (has_workers(s)) roles.push_back(kRoleWorker);
  roles.push_back(kRoleApiLb);
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

  // Security groups: each kbundle-owned group gets exactly its desired rules, in and out; what
  // else is there (an old adminCIDR, a rule added by hand) is revoked, after the new ones are in.
  bool nodes_pending = false;  // a node's public IP is not known yet: its rule comes after launch
  for (const NodeSpec& n : s.nodes) {
    auto it = inv.instances.find(n.name);
    if (it == inv.instances.end() || (it->second.public_ip.empty() && it->second.state == "pending")) nodes_pending = true;
  }
  for (const std::string& role : roles_needed(s))  // all groups first: rules name each other
    if (!inv.groups.count(role))
      add(Action::CreateSecurityGroup, "security group " + security_group_name(s.cluster, role),
          role == kRoleApiLb ? "(for the load balancer)" : "", role);
  for (const std::string& role : roles_needed(s)) {
    auto g = inv.groups.find(role);
    std::string name = "security group " + security_group_name(s.cluster, role);
    bool exists = g != inv.groups.end();
    std::vector<Rule> want = desired_rules(s, role);
    if (role == kRoleApiLb)
      for (const Rule& r : node_address_rules(s, inv)) want.push_back(r);
    const std::vector<Rule> none;
    // A new group comes with AWS's default egress rule (all traffic to 0.0.0.0/0).
    const std::vector<Rule> default_egress = {{"-1", -1, -1, "0.0.0.0/0", ""}};
    const std::vector<Rule>& have_in = exists ? g->second.rules : none;
    const std::vector<Rule>& have_out = exists ? g->second.egress : default_egress;
    std::vector<Rule> want_out = desired_egress(s, role);
    for (const Rule& r : want)
      if (!has_rule(have_in, r)) p.changes.push_back({Action::AuthorizeIngress, name, rule_text(r), role, r});
    for (const Rule& r : want_out)
      if (!has_rule(have_out, r)) p.changes.push_back({Action::AuthorizeEgress, name, rule_text(r, true), role, r});
    for (const Rule& r : have_in)
      if (!has_rule(want, r)) p.changes.push_back({Action::RevokeIngress, name, rule_text(r), role, r});
    for (const Rule& r : have_out)
      if (!has_rule(want_out, r)) p.changes.push_back({Action::RevokeEgress, name, rule_text(r, true), role, r});
    if (role == kRoleApiLb && nodes_pending)
      add(Action::AuthorizeNodeAddresses, name,
          "tcp " + std::to_string(s.api_port) + " from each new node's public IP, once it runs", role);
  }

  // SSH key pair.
  if (!inv.key_pair) add(Action::ImportKeyPair, "key pair " + key_pair_name(s.cluster), "");

  // The API load balancer: target group, NLB, listener.
  std::string tg_name = "target group " + target_group_name(s.cluster);
  if (inv.tg_arn.empty())
    add(Action::CreateTargetGroup, tg_name, "(TCP 6443, targets by IP, HTTPS /readyz health checks)");
  // Traffic reaches the targets from the load balancer's own addresses, so the control-plane
  // group's "from the load balancer's group" rule is what admits it; said, not left to a default.
  if (inv.tg_preserve_client_ip != "false") add(Action::SetTargetGroupAttributes, tg_name, "preserve_client_ip.enabled=false");
  if (inv.lb_arn.empty()) {
    add(Action::CreateLoadBalancer, "load balancer " + load_balancer_name(s.cluster),
        "(network, internet-facing, in security group " + security_group_name(s.cluster, kRoleApiLb) + ")");
  } else {
    auto lb_group = inv.groups.find(kRoleApiLb);
    bool guarded = lb_group != inv.groups.end() &&
                   std::find(inv.lb_groups.begin(), inv.lb_groups.end(), lb_group->second.id) != inv.lb_groups.end();
    if (!guarded)
      p.notes.push_back("load balancer " + load_balancer_name(s.cluster) + " is not in security group " +
                        security_group_name(s.cluster, kRoleApiLb) +
                        " (made by an older kbundle), so the API is closed through it: the control plane admits 6443 "
                        "only from that group. A group can only be given to a network load balancer when it is "
                        "created: delete the load balancer and run up again, then gen (its DNS name changes)");
  }
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

  // Duplicates discovery did not adopt: deleted first, before anything is attached to them.
  std::vector<InfraChange> first;
  for (const Duplicate& d : inv.duplicates) {
    if (d.deletable) first.push_back({Action::DeleteDuplicate, d.kind + " " + d.id, d.why, d.id, {}});
    else p.notes.push_back(d.kind + " " + d.id + ": " + d.why);
  }
  p.changes.insert(p.changes.begin(), first.begin(), first.end());
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
  auto group_id = [&](const std::string& role) { return need(inv.groups[role].id, "security group"); };

  // A create call is sent once. When its answer is lost it may have been carried out: what it
  // made carries the cluster's tags (or a derived name), so look it up and adopt it; only when
  // nothing is there is the call sent again. `adopt` copies the thing from a fresh discovery.
  auto create = [&](Service sv, const std::string& action, const Params& p,
                    const std::function<bool(const Inventory&)>& adopt) -> std::optional<XmlElement> {
    try {
      return c.call(sv, action, p, false);
    } catch (const LostAnswer& e) {
      progress(std::string(e.what()) + "; looking it up by the cluster's tags");
      if (adopt(discover(c, k))) {
        progress("adopted what " + action + " made before its answer was lost");
        return std::nullopt;
      }
      progress("nothing was made; sending " + action + " again");
      return c.call(sv, action, p);
    }
  };
  // A call that changes something in place, retried after a lost answer: the error that says
  // it is done already counts as success.
  auto change = [&](Service sv, const std::string& action, const Params& p, std::initializer_list<const char*> done) {
    try {
      c.call(sv, action, p);
    } catch (const AwsError& e) {
      if (std::none_of(done.begin(), done.end(), [&](const char* code) { return e.code() == code; })) throw;
    }
  };
  std::string root_device, root_snapshot, root_size;  // the image's root volume, looked up once
  bool node_addresses = false;

  for (const InfraChange& ch : pending.changes) {
    progress(describe(ch));
    switch (ch.action) {
      case Action::CreateVpc: {
        Params p = {{"CidrBlock", s.vpc_cidr}};
        add_tag_spec(p, 1, "vpc", tags_for(k, k));
        auto r = create(Service::Ec2, "CreateVpc", p, [&](const Inventory& now) {
          inv.vpc_id = now.vpc_id;
          return !now.vpc_id.empty();
        });
        if (r) inv.vpc_id = r->get("vpc/vpcId");
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
        auto r = create(Service::Ec2, "CreateSubnet", p, [&](const Inventory& now) {
          inv.subnet_id = now.subnet_id;
          return !now.subnet_id.empty();
        });
        if (r) inv.subnet_id = r->get("subnet/subnetId");
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
        auto r = create(Service::Ec2, "CreateInternetGateway", p, [&](const Inventory& now) {
          inv.igw_id = now.igw_id;
          return !now.igw_id.empty();
        });
        if (r) inv.igw_id = r->get("internetGateway/internetGatewayId");
        break;
      }
      case Action::AttachInternetGateway:
        change(Service::Ec2, "AttachInternetGateway",
               {{"InternetGatewayId", need(inv.igw_id, "internet gateway")}, {"VpcId", need(inv.vpc_id, "VPC")}},
               {"Resource.AlreadyAssociated"});
        inv.igw_vpc = inv.vpc_id;
        break;
      case Action::CreateRouteTable: {
        Params p = {{"VpcId", need(inv.vpc_id, "VPC")}, {"ClientToken", "kbundle-" + random_token(random)}};
        add_tag_spec(p, 1, "route-table", tags_for(k, k));
        auto r = create(Service::Ec2, "CreateRouteTable", p, [&](const Inventory& now) {
          inv.route_table_id = now.route_table_id;
          return !now.route_table_id.empty();
        });
        if (r) inv.route_table_id = r->get("routeTable/routeTableId");
        break;
      }
      case Action::AssociateRouteTable:
        change(Service::Ec2, "AssociateRouteTable",
               {{"RouteTableId", need(inv.route_table_id, "route table")}, {"SubnetId", need(inv.subnet_id, "subnet")}},
               {"Resource.AlreadyAssociated"});
        inv.route_table_subnets.push_back(inv.subnet_id);
        break;
      case Action::CreateDefaultRoute: {
        Params p = {{"RouteTableId", need(inv.route_table_id, "route table")}, {"DestinationCidrBlock", "0.0.0.0/0"},
                    {"GatewayId", need(inv.igw_id, "internet gateway")}};
        change(Service::Ec2, inv.routes.count("0.0.0.0/0") ? "ReplaceRoute" : "CreateRoute", p, {"RouteAlreadyExists"});
        inv.routes["0.0.0.0/0"] = inv.igw_id;
        break;
      }
      case Action::CreateSecurityGroup: {
        Params p = {{"GroupName", security_group_name(k, ch.key)},
                    {"GroupDescription", "kbundle cluster " + k + ": " + ch.key + " nodes"},
                    {"VpcId", need(inv.vpc_id, "VPC")}};
        add_tag_spec(p, 1, "security-group", tags_for(k, security_group_name(k, ch.key)));
        auto r = create(Service::Ec2, "CreateSecurityGroup", p, [&](const Inventory& now) {
          auto g = now.groups.find(ch.key);
          if (g != now.groups.end()) inv.groups[ch.key].id = g->second.id;
          return g != now.groups.end();
        });
        if (r) inv.groups[ch.key].id = r->get("groupId");
        break;
      }
      case Action::AuthorizeIngress:
      case Action::AuthorizeEgress:
      case Action::RevokeIngress:
      case Action::RevokeEgress: {
        bool grant = ch.action == Action::AuthorizeIngress || ch.action == Action::AuthorizeEgress;
        bool out = ch.action == Action::AuthorizeEgress || ch.action == Action::RevokeEgress;
        Params p = {{"GroupId", group_id(ch.key)}};
        add_permission(p, ch.rule, group_id, grant);
        change(Service::Ec2,
               std::string(grant ? "Authorize" : "Revoke") + "SecurityGroup" + (out ? "Egress" : "Ingress"), p,
               {grant ? "InvalidPermission.Duplicate" : "InvalidPermission.NotFound"});
        auto& rules = out ? inv.groups[ch.key].egress : inv.groups[ch.key].rules;
        if (grant) rules.push_back(ch.rule);
        else std::erase_if(rules, [&](const Rule& have) { return have.same(ch.rule); });
        break;
      }
      case Action::AuthorizeNodeAddresses:
        node_addresses = true;  // after the instances run, below
        break;
      case Action::SetTargetGroupAttributes:
        c.call(Service::Elb, "ModifyTargetGroupAttributes",
               {{"TargetGroupArn", need(inv.tg_arn, "target group")},
                {"Attributes.member.1.Key", "preserve_client_ip.enabled"},
                {"Attributes.member.1.Value", "false"}});
        inv.tg_preserve_client_ip = "false";
        break;
      case Action::DeleteDuplicate: {
        const Duplicate* d = nullptr;
        for (const Duplicate& candidate : inv.duplicates)
          if (candidate.id == ch.key) d = &candidate;
        if (!d) throw Error("internal: no duplicate " + ch.key);
        if (d->kind == "vpc") {
          change(Service::Ec2, "DeleteVpc", {{"VpcId", d->id}}, {"InvalidVpcID.NotFound"});
        } else if (d->kind == "subnet") {
          change(Service::Ec2, "DeleteSubnet", {{"SubnetId", d->id}}, {"InvalidSubnetID.NotFound"});
        } else if (d->kind == "internet gateway") {
          change(Service::Ec2, "DeleteInternetGateway", {{"InternetGatewayId", d->id}}, {"InvalidInternetGatewayID.NotFound"});
        } else if (d->kind == "route table") {
          for (const std::string& a : d->associations)
            change(Service::Ec2, "DisassociateRouteTable", {{"AssociationId", a}}, {"InvalidAssociationID.NotFound"});
          change(Service::Ec2, "DeleteRouteTable", {{"RouteTableId", d->id}}, {"InvalidRouteTableID.NotFound"});
        } else if (d->kind == "instance") {
          c.call(Service::Ec2, "TerminateInstances", {{"InstanceId.1", d->id}});
        }
        break;
      }
      case Action::ImportKeyPair: {
        Params p = {{"KeyName", key_pair_name(k)}, {"PublicKeyMaterial", base64_encode(s.ssh_public_key)}};
        add_tag_spec(p, 1, "key-pair", tags_for(k, key_pair_name(k)));
        create(Service::Ec2, "ImportKeyPair", p, [&](const Inventory& now) { return now.key_pair; });
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
        auto r = create(Service::Elb, "CreateTargetGroup", p, [&](const Inventory& now) {
          inv.tg_arn = now.tg_arn;
          return !now.tg_arn.empty();
        });
        if (!r) break;
        auto tgs = result_of(*r, "CreateTargetGroup") ? result_of(*r, "CreateTargetGroup")->items("TargetGroups")
                                                      : std::vector<const XmlElement*>{};
        if (tgs.empty()) throw Error("elbv2 CreateTargetGroup: the response names no target group");
        inv.tg_arn = tgs[0]->get("TargetGroupArn");
        break;
      }
      case Action::CreateLoadBalancer: {
        // The security group is given now or never: a network load balancer created without one
        // cannot get one later.
        Params p = {{"Name", load_balancer_name(k)}, {"Type", "network"}, {"Scheme", "internet-facing"},
                    {"Subnets.member.1", need(inv.subnet_id, "subnet")}, {"SecurityGroups.member.1", group_id(kRoleApiLb)}};
        add_elb_tags(p, tags_for(k, load_balancer_name(k)));
        auto r = create(Service::Elb, "CreateLoadBalancer", p, [&](const Inventory& now) {
          inv.lb_arn = now.lb_arn, inv.lb_dns = now.lb_dns, inv.lb_state = now.lb_state, inv.lb_groups = now.lb_groups;
          return !now.lb_arn.empty();
        });
        if (!r) break;
        inv.lb_groups = {group_id(kRoleApiLb)};
        auto lbs = result_of(*r, "CreateLoadBalancer") ? result_of(*r, "CreateLoadBalancer")->items("LoadBalancers")
                                                       : std::vector<const XmlElement*>{};
        if (lbs.empty()) throw Error("elbv2 CreateLoadBalancer: the response names no load balancer");
        inv.lb_arn = lbs[0]->get("LoadBalancerArn");
        inv.lb_dns = lbs[0]->get("DNSName");
        inv.lb_state = lbs[0]->get("State/Code");
        break;
      }
      case Action::CreateListener: {
        auto r = create(Service::Elb, "CreateListener",
                        {{"LoadBalancerArn", need(inv.lb_arn, "load balancer")},
                         {"Protocol", "TCP"},
                         {"Port", std::to_string(s.api_port)},
                         {"DefaultActions.member.1.Type", "forward"},
                         {"DefaultActions.member.1.TargetGroupArn", need(inv.tg_arn, "target group")}},
                        [&](const Inventory& now) {
                          auto l = now.listeners.find(s.api_port);
                          if (l != now.listeners.end()) inv.listeners[s.api_port] = l->second;
                          return l != now.listeners.end();
                        });
        if (!r) break;
        const XmlElement* res = result_of(*r, "CreateListener");
        auto ls = res ? res->items("Listeners") : std::vector<const XmlElement*>{};
        inv.listeners[s.api_port] = ls.empty() ? std::string("?") : ls[0]->get("ListenerArn");
        break;
      }
      case Action::RunInstance: {
        const NodeSpec* n = nullptr;
        for (const NodeSpec& candidate : s.nodes)
          if (candidate.name == ch.key) n = &candidate;
        if (!n) throw Error("internal: no node " + ch.key);
        if (root_device.empty()) {
          XmlElement img = c.call(Service::Ec2, "DescribeImages", {{"ImageId.1", need(image_id, "image")}});
          auto images = img.items("imagesSet");
          root_device = images.empty() ? "" : images[0]->get("rootDeviceName");
          if (root_device.empty()) throw Error("ec2 DescribeImages: image " + image_id + " names no root device");
          for (const XmlElement* b : images[0]->items("blockDeviceMapping"))
            if (b->get("deviceName") == root_device) {
              root_snapshot = b->get("ebs/snapshotId");
              root_size = b->get("ebs/volumeSize");
            }
        }
        // IMDSv2 only (a token, so a forwarded request cannot read credentials); hop limit 1 keeps
        // the token from pods in their own network namespaces. The root volume is encrypted.
        Params p = {{"ImageId", need(image_id, "image")}, {"InstanceType", n->instance_type}, {"MinCount", "1"},
                    {"MaxCount", "1"},  {"KeyName", key_pair_name(k)},      {"SubnetId", need(inv.subnet_id, "subnet")},
                    {"PrivateIpAddress", n->private_ip}, {"ClientToken", random_token(random)},
                    {"MetadataOptions.HttpTokens", "required"}, {"MetadataOptions.HttpPutResponseHopLimit", "1"},
                    {"MetadataOptions.HttpEndpoint", "enabled"},
                    {"BlockDeviceMapping.1.DeviceName", root_device}, {"BlockDeviceMapping.1.Ebs.Encrypted", "true"},
                    {"BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true"},
                    {"BlockDeviceMapping.1.Ebs.VolumeType", "gp3"}};
        // The image's own snapshot and size, said again: a mapping that changes only Encrypted.
        if (!root_snapshot.empty()) p.emplace_back("BlockDeviceMapping.1.Ebs.SnapshotId", root_snapshot);
        if (!root_size.empty()) p.emplace_back("BlockDeviceMapping.1.Ebs.VolumeSize", root_size);
        int g = 1;
        if (n->control_plane) p.emplace_back("SecurityGroupId." + std::to_string(g++), need(inv.groups[kRoleControlPlane].id, "security group"));
        if (n->worker) p.emplace_back("SecurityGroupId." + std::to_string(g++), need(inv.groups[kRoleWorker].id, "security group"));
        if (!n->user_data.empty()) p.emplace_back("UserData", base64_encode(n->user_data));
        add_tag_spec(p, 1, "instance", tags_for(k, k + "-" + n->name, n->name));
        add_tag_spec(p, 2, "volume", tags_for(k, k + "-" + n->name, n->name));
        auto r = create(Service::Ec2, "RunInstances", p, [&](const Inventory& now) {
          auto it = now.instances.find(n->name);
          if (it != now.instances.end()) inv.instances[n->name] = it->second;
          return it != now.instances.end();
        });
        if (!r) break;
        auto items = r->items("instancesSet");
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
        c.call(Service::Elb, reg ? "RegisterTargets" : "DeregisterTargets",  // both idempotent
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
        change(Service::Ec2, ch.action == Action::CreatePodRoute ? "CreateRoute" : "ReplaceRoute",
               {{"RouteTableId", need(inv.route_table_id, "route table")},
                {"DestinationCidrBlock", n->pod_cidr},
                {"InstanceId", i.id}},
               {"RouteAlreadyExists"});
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

  // The load balancer's group admits each node's public IP, now that every node has one.
  if (node_addresses)
    for (const Rule& r : node_address_rules(s, inv)) {
      auto& rules = inv.groups[kRoleApiLb].rules;
      if (has_rule(rules, r)) continue;
      progress("allow " + rule_text(r) + " in security group " + security_group_name(k, kRoleApiLb));
      Params p = {{"GroupId", group_id(kRoleApiLb)}};
      add_permission(p, r, group_id, true);
      change(Service::Ec2, "AuthorizeSecurityGroupIngress", p, {"InvalidPermission.Duplicate"});
      rules.push_back(r);
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
        // Rules naming another group (either way) would keep that group from being deleted.
        for (const char* direction : {"Ingress", "Egress"})
          for (const XmlElement* perm : g->items(direction == std::string("Ingress") ? "ipPermissions" : "ipPermissionsEgress"))
            for (const XmlElement* pair : perm->items("groups")) {
              Params p = {{"GroupId", id}, {"IpPermissions.1.IpProtocol", perm->get("ipProtocol")},
                          {"IpPermissions.1.Groups.1.GroupId", pair->get("groupId")}};
              if (!perm->get("fromPort").empty()) p.emplace_back("IpPermissions.1.FromPort", perm->get("fromPort"));
              if (!perm->get("toPort").empty()) p.emplace_back("IpPermissions.1.ToPort", perm->get("toPort"));
              delete_with_retry("a rule of " + id, [&] {
                c.call(Service::Ec2, std::string("RevokeSecurityGroup") + direction, p);
              }, wait, deadline);
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
  auto rules_json = [](const std::vector<Rule>& rules) {
    json out = json::array();
    for (const Rule& r : rules)
      out.push_back({{"protocol", r.protocol}, {"fromPort", r.from_port}, {"toPort", r.to_port}, {"source", r.source},
                     {"description", r.description}});
    return out;
  };
  for (const auto& [role, g] : inv.groups)
    groups[role] = {{"id", g.id}, {"rules", rules_json(g.rules)}, {"egress", rules_json(g.egress)}};
  j["securityGroups"] = groups;
  j["keyPair"] = inv.key_pair;
  json listeners = json::array();
  for (const auto& [port, arn] : inv.listeners) listeners.push_back({{"port", port}, {"arn", arn}});
  json targets = json::array();
  for (const auto& [ip, state] : inv.targets) targets.push_back({{"ip", ip}, {"state", state}});
  j["loadBalancer"] = inv.lb_arn.empty()
                          ? json(nullptr)
                          : json{{"arn", inv.lb_arn}, {"dnsName", inv.lb_dns}, {"state", inv.lb_state},
                                 {"listeners", listeners}, {"securityGroups", inv.lb_groups}};
  j["targetGroup"] = inv.tg_arn.empty() ? json(nullptr)
                                        : json{{"arn", inv.tg_arn}, {"targets", targets},
                                               {"preserveClientIp", opt(inv.tg_preserve_client_ip)}};
  json duplicates = json::array();
  for (const Duplicate& d : inv.duplicates)
    duplicates.push_back({{"kind", d.kind}, {"id", d.id}, {"deletable", d.deletable}, {"why", d.why}});
  j["duplicates"] = duplicates;
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

}  // namespace kb::aws
