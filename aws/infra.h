#pragma once
// The cluster's AWS infrastructure: what the topology asks for (ClusterSpec), what exists
// (Inventory, found by the cluster's tags and derived names), the difference (InfraChanges), and the
// calls that create (apply) or delete (destroy) it. Every resource carries the tags
// Name, kbundle:cluster=<cluster> and kubernetes.io/cluster/<cluster>=owned.

#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aws/client.h"

namespace kb::aws {

struct NodeSpec {
  std::string name;
  bool control_plane = false;
  bool worker = false;
  std::string private_ip;
  std::string pod_cidr;  // workers only
  std::string instance_type;
  std::string user_data;  // the instance's user-data script; empty for none
};

struct ClusterSpec {
  std::string cluster;
  std::string vpc_cidr, subnet_cidr, availability_zone;  // zone empty: AWS picks
  std::string pod_cidr;                                  // the cluster's; allowed inside the VPC
  std::string admin_cidr;                                // SSH, the API and NodePorts from here
  std::string image_id;                                  // ami-..., or
  std::string image_name, image_owner;                   // a name filter; the newest match wins
  std::string ssh_public_key;                            // OpenSSH public key text
  int api_port = 6443;                                   // the load balancer's listener
  std::vector<NodeSpec> nodes;
};

// True for a CIDR of prefix length 0 (0.0.0.0/0, ::/0): every address on the internet.
bool admin_cidr_is_everyone(const std::string& cidr);

// Names derived from the cluster name, within AWS's length limits.
std::string key_pair_name(const std::string& cluster);
std::string load_balancer_name(const std::string& cluster);  // at most 32 characters
std::string target_group_name(const std::string& cluster);   // at most 32 characters
std::string security_group_name(const std::string& cluster, const std::string& role);

// The security groups kbundle owns, by role: the nodes' two and the load balancer's.
inline constexpr const char* kRoleControlPlane = "control-plane";
inline constexpr const char* kRoleWorker = "worker";
inline constexpr const char* kRoleApiLb = "api-lb";

// One ingress or egress rule. `source` (the destination of an egress rule) is an IPv4 or IPv6
// CIDR, "group:<role>" (a security group of the cluster), "group:sg-..." (any other group) or
// "prefix-list:pl-...".
struct Rule {
  std::string protocol;  // "tcp" or "-1" (all)
  int from_port = -1, to_port = -1;
  std::string source;
  std::string description;
  bool same(const Rule& o) const {
    return protocol == o.protocol && from_port == o.from_port && to_port == o.to_port && source == o.source;
  }
};
// The ingress rules of the "control-plane", "worker" or "api-lb" group that do not depend on
// what exists (the load balancer's group also admits each node's public IP: node_address_rules).
std::vector<Rule> desired_rules(const ClusterSpec& spec, const std::string& role);
// The egress rules of a group: the nodes may reach anywhere (packages, images); the load
// balancer only the API port of the control-plane group (forwarding and health checks).
std::vector<Rule> desired_egress(const ClusterSpec& spec, const std::string& role);

struct Instance {
  std::string id, node, state, private_ip, public_ip, instance_type;
  bool source_dest_check = true;
  std::string launch_time, subnet_id;  // to choose among duplicates; to tell an empty subnet
};

// Something tagged for the cluster that exists twice (a lost answer to a create call, a run
// of an older kbundle): discovery adopts one and lists the others here.
struct Duplicate {
  std::string kind;  // "vpc", "subnet", "internet gateway", "route table", "instance"
  std::string id;
  bool deletable = false;  // ours, tagged, and nothing depends on it: `up` deletes it
  std::string why;         // what was adopted instead, or why it is left alone
  std::vector<std::string> associations;  // route table: association ids to remove first
};

struct Inventory {
  std::string vpc_id, vpc_cidr;
  bool vpc_dns_hostnames = false;
  std::string subnet_id, subnet_cidr;
  bool subnet_public_ip = false;
  std::string igw_id, igw_vpc;  // igw_vpc: the VPC it is attached to, empty when detached
  std::string route_table_id;
  std::vector<std::string> route_table_subnets;  // associated subnets
  std::map<std::string, std::string> routes;     // destination CIDR -> target (igw-..., i-..., eni-...)
  struct Group {
    std::string id;
    std::vector<Rule> rules;   // ingress
    std::vector<Rule> egress;
  };
  std::map<std::string, Group> groups;  // by role: "control-plane", "worker", "api-lb"
  bool key_pair = false;
  std::string lb_arn, lb_dns, lb_state, tg_arn;
  std::vector<std::string> lb_groups;  // the load balancer's security group ids
  std::string tg_preserve_client_ip;   // the target group's preserve_client_ip.enabled ("" unknown)
  std::map<int, std::string> listeners;  // port -> listener ARN
  std::map<std::string, std::string> targets;  // registered IP -> health state
  std::map<std::string, Instance> instances;   // live instances by node name
  std::vector<Instance> strays;                // the cluster's live instances for no node (or duplicates)
  std::vector<Duplicate> duplicates;           // what discovery did not adopt
  std::vector<std::string> notes;              // what discovery found odd (duplicates, foreign names)
};

// Everything that exists for the cluster. Throws when a name the cluster needs is taken by
// a resource that is not the cluster's. Of two tagged VPCs (subnets, gateways, route tables,
// instances of one node) it adopts one deterministically and lists the others as duplicates.
Inventory discover(Client& client, const std::string& cluster);

// The load balancer group's rules for the nodes' public IPs: the nodes reach the API through the
// load balancer's public address, so it sees their public IPs, not their groups.
std::vector<Rule> node_address_rules(const ClusterSpec& spec, const Inventory& inventory);

enum class Action {
  CreateVpc, EnableDnsHostnames, CreateSubnet, EnablePublicIp, CreateInternetGateway, AttachInternetGateway,
  CreateRouteTable, AssociateRouteTable, CreateDefaultRoute, CreateSecurityGroup, AuthorizeIngress, ImportKeyPair,
  CreateTargetGroup, CreateLoadBalancer, CreateListener, RunInstance, DisableSourceDestCheck, RegisterTarget,
  DeregisterTarget, CreatePodRoute, ReplacePodRoute, RevokeIngress, AuthorizeEgress, RevokeEgress,
  SetTargetGroupAttributes, AuthorizeNodeAddresses, DeleteDuplicate
};

// One step `up` takes: create, attach, authorize or register one thing.
struct InfraChange {
  Action action;
  std::string resource;  // "vpc", "security-group worker", "instance worker-0", ...
  std::string detail;    // what, for people
  std::string key;       // the role, node name or IP the change is about
  Rule rule;             // Authorize/Revoke Ingress/Egress only
};

// Every step `up` would take, from what exists; printed by `kbundle aws plan`.
struct InfraChanges {
  std::vector<InfraChange> changes;     // in the order `apply` runs them
  std::vector<std::string> notes;  // differences `up` does not change (it never replaces instances)
  bool empty() const { return changes.empty(); }
};

// What `up` would do, from what exists. Pure: no calls.
InfraChanges compute_changes(const ClusterSpec& spec, const Inventory& inventory);
std::string describe(const InfraChange& c);  // "create vpc 10.0.0.0/16"

using Progress = std::function<void(const std::string& line)>;
using Waiter = std::function<void(std::chrono::milliseconds)>;

// The AMI to launch: spec.image_id, or the newest image matching the name filter.
std::string resolve_image(Client& client, const ClusterSpec& spec);

// Runs the changes in order; ids of what it creates go into `inventory` as it goes, so an
// interrupted run leaves tagged resources that the next discovery finds. Then waits (up to
// `timeout`) until every node's instance runs. `image_id` is needed only for RunInstance.
void apply(Client& client, const ClusterSpec& spec, const InfraChanges& pending, const std::string& image_id,
           Inventory& inventory, const Progress& progress, const Waiter& wait,
           std::chrono::seconds timeout = std::chrono::seconds(600));

// Deletes everything tagged for the cluster, dependencies first; waits for instances to
// terminate and retries DependencyViolation. Returns how many resources it deleted (0: nothing there).
int destroy(Client& client, const std::string& cluster, const Progress& progress, const Waiter& wait,
            std::chrono::seconds timeout = std::chrono::seconds(900));

// The inventory as JSON (ids, states, addresses, rules, routes); never credentials.
nlohmann::json to_json(const Inventory& inventory);

}  // namespace kb::aws
