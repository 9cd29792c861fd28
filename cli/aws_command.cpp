#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <ostream>
#include <thread>

#include "aws/client.h"
#include "aws/config.h"
#include "aws/http.h"
#include "aws/infra.h"
#include "aws/s3.h"
#include "aws/user_data.h"
#include "base/hash.h"
#include "base/time.h"
#include "bundles/signing.h"
#include "generator/state.h"
#include "publish/artifacts.h"
#include "topology/s3_location.h"
#include "base/atomic_file.h"
#include "base/error.h"
#include "base/exit_code.h"
#include "base/text_escape.h"
#include "cli/commands.h"
#include "topology/text_edit.h"
#include "topology/topology.h"

namespace kb {

CLI::App* add_aws_command(CLI::App& app, AwsOptions& o) {
  auto* aws = app.add_subcommand("aws", "Create, inspect and delete the cluster's AWS infrastructure (docs/aws.md)");
  aws->require_subcommand(1);
  struct Sub {
    const char* name;
    const char* help;
  };
  for (Sub s : {Sub{"up", "Create what is missing (idempotent); write the load balancer's name and public IPs "
                          "into the topology"},
                Sub{"plan", "Show what up would create or change"},
                Sub{"status", "Show every resource of the cluster and its state"},
                Sub{"down", "Delete everything tagged for the cluster"}}) {
    auto* sub = aws->add_subcommand(s.name, s.help);
    std::string name = s.name;
    sub->add_option("--topology,-t", o.topology_path, "Topology file (YAML) with an aws section")->required();
    sub->callback([&o, name] { o.command = name; });
    if (name == "status") sub->add_flag("--json", o.json, "Print the resources as JSON");
    if (name == "down") sub->add_flag("--yes", o.yes, "Really delete (required)");
    if (name == "up") {
      sub->add_flag("--keep-topology", o.keep_topology,
                    "Do not rewrite the topology; print the values to set instead");
    }
    if (name == "up" || name == "down")
      sub->add_option("--timeout", o.timeout_seconds, "Seconds to wait for instances")->capture_default_str();
    if (name == "up" || name == "plan") {
      sub->add_option("--state", o.state_dir,
                      "State directory (as kbundle gen's): its signing key is pinned in the user data; created "
                      "as gen would when missing (up)")
          ->capture_default_str();
      sub->add_option("--installer", o.installer,
                      "kbundle-installer whose sha256 the user data pins (default: the one beside this kbundle, "
                      "as publish)");
    }
  }
  return aws;
}

namespace {

// The ssh public key named by aws.sshPublicKeyFile: '~/' is the home directory, relative
// paths start at the topology's folder.
std::string read_public_key(const std::string& written, const std::string& topology_path) {
  std::filesystem::path p = written;
  if (written.starts_with("~/")) {
    const char* home = std::getenv("HOME");
    p = std::filesystem::path(home ? home : "") / written.substr(2);
  } else if (p.is_relative()) {
    p = std::filesystem::path(topology_path).parent_path() / p;
  }
  std::string text;
  try {
    text = read_file(p.string());
  } catch (const Error& e) {
    throw Error("aws.sshPublicKeyFile: " + std::string(e.what()));
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.find("PRIVATE KEY") != std::string::npos)
    throw Error("aws.sshPublicKeyFile: " + p.string() + " is a private key (hint: give the .pub file)");
  if (!(text.starts_with("ssh-") || text.starts_with("ecdsa-")) || text.find('\n') != std::string::npos)
    throw Error("aws.sshPublicKeyFile: " + p.string() +
                " is not one OpenSSH public key line (hint: e.g. ~/.ssh/id_ed25519.pub)");
  return text;
}

// aws.userData, per node: the presigned (bundles) or templated (bundleURL) URLs, the installer's
// sha256 and the state's signing key, rendered into the user-data script (aws/user_data.h). Empty
// when the topology has no userData, or for `plan` before the state exists.
std::map<std::string, std::string> boot_user_data(const Topology& t, const AwsOptions& o, const aws::AwsConfig& config,
                                                  std::ostream& out, std::ostream& err) {
  const AwsSettings& a = *t.aws;
  std::map<std::string, std::string> scripts;
  if (a.bundles.empty() && a.bundle_url.empty()) return scripts;

  aws::UserDataInput in;
  in.cluster = t.cluster.name;
  if (!a.bundles.empty() || !a.installer_url.empty()) {
    std::string path = o.installer.empty() ? default_installer_path(o.self_exe) : o.installer;
    if (path.empty() || !std::filesystem::is_regular_file(path))
      throw Error("--installer " + (path.empty() ? std::string("(none beside this kbundle)") : path) +
                  ": not found; the user data pins the sha256 of the kbundle-installer that `kbundle publish` uploads "
                  "(hint: --installer FILE, e.g. build/installer/kbundle-installer)");
    in.installer_sha256 = sha256_file(path).sha256;
  }

  // The signing key: read from the state without touching it. A missing state is created exactly
  // as gen would create it (State::open), because the documented flow is up -> gen -> publish:
  // gen needs the instance ids that only up knows, and up needs the key that gen would make.
  std::optional<std::string> pem = read_signing_public_key(o.state_dir, t.cluster.name);
  if (!pem) {
    if (o.command != "up") {
      out << "  ! state " << o.state_dir << " does not exist yet: up creates it as `kbundle gen` would, to pin its "
             "signing key in the user data\n";
      return scripts;
    }
    auto state = State::open(o.state_dir, t, std::time(nullptr));
    pem = state->signing_public_key_pem();
    out << "  created state " << o.state_dir << " (CAs, keys) as `kbundle gen` would; gen --state " << o.state_dir
        << " uses it\n";
  }
  in.signing_public_key_pem = *pem;
  in.signing_fingerprint = VerifyKey(*pem).fingerprint();
  out << "  user data pins: signing key sha256:" << in.signing_fingerprint
      << (in.installer_sha256.empty() ? std::string() : ", kbundle-installer sha256 " + in.installer_sha256) << "\n";

  std::optional<S3Location> loc;
  aws::S3Endpoint endpoint;
  const std::time_t now = std::time(nullptr);
  const auto expires = std::chrono::seconds(604800);  // SigV4's longest: 7 days
  if (!a.bundles.empty()) {
    loc = parse_s3_location(a.bundles, nullptr);  // validated with the topology
    endpoint = aws::resolve_s3_endpoint(config.region, aws::process_env());
    in.urls_expire = rfc3339_utc(now + expires.count());
    in.installer.url = aws::presign_get(aws::s3_object_url(endpoint, loc->bucket, loc->prefix + "kbundle-installer"),
                                        config.credentials, config.region, expires, now);
    in.installer.label = "s3://" + loc->bucket + "/" + loc->prefix + "kbundle-installer";
    out << "  user data: presigned GET URLs for " << a.bundles << "<node>.kbundle and kbundle-installer ("
        << endpoint.base << "), valid until " << in.urls_expire << "; publish with `kbundle publish --to " << a.bundles
        << "` before then\n";
    if (!config.credentials.session_token.empty())
      err << "kbundle: warning: the credentials (" << config.credentials.source
          << ") are temporary (a session token): the presigned URLs in the user data stop working when that session "
             "expires, possibly long before "
          << in.urls_expire << " (hint: run `aws up` with an IAM user's long-lived access key; docs/aws.md)\n";
  }
  auto expand = [&](std::string s, const std::string& node) {
    for (auto [from, to] : {std::pair<std::string, std::string>{"{node}", node}, {"{cluster}", t.cluster.name}})
      for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
    return s;
  };
  for (const Node& n : t.nodes) {
    in.node = n.name;
    if (loc) {
      const std::string key = loc->prefix + n.name + ".kbundle";
      in.bundle.url = aws::presign_get(aws::s3_object_url(endpoint, loc->bucket, key), config.credentials, config.region,
                                       expires, now);
      in.bundle.label = "s3://" + loc->bucket + "/" + key;
    } else {
      in.bundle.url = expand(a.bundle_url, n.name);
      in.bundle.label = aws::url_without_query(in.bundle.url);
      in.installer.url = a.installer_url.empty() ? "" : expand(a.installer_url, n.name);
      in.installer.label = aws::url_without_query(in.installer.url);
    }
    scripts[n.name] = aws::render_user_data(in);
  }
  return scripts;
}

aws::ClusterSpec make_spec(const Topology& t, bool with_key, const std::map<std::string, std::string>& user_data) {
  const AwsSettings& a = *t.aws;
  aws::ClusterSpec s;
  s.cluster = t.cluster.name;
  s.vpc_cidr = a.vpc_cidr;
  s.subnet_cidr = a.subnet_cidr;
  s.availability_zone = a.availability_zone;
  s.pod_cidr = t.cluster.pod_cidr;
  s.admin_cidr = a.admin_cidr;
  s.image_id = a.image_id;
  s.image_name = a.image_name;
  s.image_owner = a.image_owner;
  if (with_key) s.ssh_public_key = read_public_key(a.ssh_public_key_file, t.source_path);
  s.api_port = t.cluster.api_port;
  for (const Node& n : t.nodes) {
    aws::NodeSpec ns;
    ns.name = n.name;
    ns.control_plane = n.is_control_plane();
    ns.worker = n.is_worker();
    ns.private_ip = n.private_ip;
    ns.pod_cidr = n.is_worker() ? n.pod_cidr : "";
    ns.instance_type = n.is_control_plane() ? a.control_plane_instance_type : a.worker_instance_type;
    if (auto it = user_data.find(n.name); it != user_data.end()) ns.user_data = it->second;
    s.nodes.push_back(std::move(ns));
  }
  return s;
}

std::optional<Topology> load(const AwsOptions& o, std::ostream& err) {
  TopologyResult r = load_topology(o.topology_path);
  for (const auto& d : r.diagnostics) err << d.format() << "\n";
  if (!r.ok()) {
    err << "kbundle: error: " << escape_text(o.topology_path) << ": invalid topology; nothing was done\n";
    return std::nullopt;
  }
  if (!r.topology->aws) {
    err << "kbundle: error: " << escape_text(o.topology_path)
        << ": no aws section (hint: add one as in docs/aws.md: region, adminCIDR, image, sshPublicKeyFile)\n";
    return std::nullopt;
  }
  return std::move(r.topology);
}

// What `gen` reads that `up` knows: the load balancer's DNS name, each node's public IP and
// instance id (bundles are bound to their instance).
struct TopologyValues {
  std::string api_host;
  std::map<std::string, std::string> public_ips;
  std::map<std::string, std::string> instance_ids;
  bool empty() const { return api_host.empty() && public_ips.empty() && instance_ids.empty(); }
};

TopologyValues values_from(const aws::Inventory& inv, const Topology& t) {
  TopologyValues v;
  if (!inv.lb_dns.empty() && inv.lb_dns != t.cluster.api_host) v.api_host = inv.lb_dns;
  for (const Node& n : t.nodes) {
    auto it = inv.instances.find(n.name);
    if (it == inv.instances.end()) continue;
    if (!it->second.public_ip.empty() && it->second.public_ip != n.public_ip) v.public_ips[n.name] = it->second.public_ip;
    if (!it->second.id.empty() && it->second.id != n.instance_id) v.instance_ids[n.name] = it->second.id;
  }
  return v;
}

void print_values(const TopologyValues& v, std::ostream& out, const char* prefix) {
  if (!v.api_host.empty()) out << prefix << "cluster.apiEndpoint.host: " << v.api_host << "\n";
  for (const auto& [node, ip] : v.public_ips) out << prefix << "nodes[" << node << "].publicIP: " << ip << "\n";
  for (const auto& [node, id] : v.instance_ids) out << prefix << "nodes[" << node << "].instanceId: " << id << "\n";
}

// Writes the values into the topology file (atomically, same mode), then checks that it still
// parses to the same cluster with exactly those values.
void update_topology(const std::string& path, const TopologyValues& v) {
  std::string text = read_file(path);
  std::string patched = patch_topology_text(text, v.api_host, v.public_ips, v.instance_ids);
  TopologyResult check = parse_topology(patched, path);
  bool same = check.ok();
  if (same && !v.api_host.empty()) same = check.topology->cluster.api_host == v.api_host;
  if (same)
    for (const auto& [node, ip] : v.public_ips)
      for (const Node& n : check.topology->nodes)
        if (n.name == node) same = same && n.public_ip == ip;
  if (same)
    for (const auto& [node, id] : v.instance_ids)
      for (const Node& n : check.topology->nodes)
        if (n.name == node) same = same && n.instance_id == id;
  if (!same)
    throw Error(path + ": could not update the topology in place (hint: set the values printed above by hand, "
                       "or run up with --keep-topology)");
  struct stat st {};
  mode_t mode = ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0644;
  write_file_atomic(path, patched, mode);
}

std::string change_mark(aws::Action a) {
  switch (a) {
    case aws::Action::EnableDnsHostnames:
    case aws::Action::EnablePublicIp:
    case aws::Action::DisableSourceDestCheck:
    case aws::Action::ReplacePodRoute:
    case aws::Action::AttachInternetGateway:
    case aws::Action::AssociateRouteTable:
      return "~ ";
    case aws::Action::SetTargetGroupAttributes: return "~ ";
    case aws::Action::DeregisterTarget:
    case aws::Action::RevokeIngress:
    case aws::Action::RevokeEgress:
    case aws::Action::DeleteDuplicate:
      return "- ";
    default: return "+ ";
  }
}

void print_inventory(const aws::Inventory& inv, const aws::ClusterSpec& s, std::ostream& out) {
  auto line = [&](const std::string& what, const std::string& value) {
    out << "  " << what << std::string(what.size() < 22 ? 22 - what.size() : 1, ' ') << (value.empty() ? "missing" : value)
        << "\n";
  };
  line("vpc", inv.vpc_id.empty() ? "" : inv.vpc_id + " " + inv.vpc_cidr + (inv.vpc_dns_hostnames ? " dns-hostnames" : ""));
  line("subnet", inv.subnet_id.empty() ? "" : inv.subnet_id + " " + inv.subnet_cidr);
  line("internet gateway", inv.igw_id.empty() ? "" : inv.igw_id + (inv.igw_vpc.empty() ? " detached" : " attached"));
  line("route table", inv.route_table_id);
  for (const auto& [dest, target] : inv.routes) line("  route " + dest, target);
  for (const char* role : {aws::kRoleControlPlane, aws::kRoleWorker, aws::kRoleApiLb}) {
    auto g = inv.groups.find(role);
    line(std::string("security group ") + role,
         g == inv.groups.end() ? "" : g->second.id + " (" + std::to_string(g->second.rules.size()) + " rules)");
  }
  line("key pair", inv.key_pair ? aws::key_pair_name(s.cluster) : "");
  line("load balancer", inv.lb_arn.empty() ? "" : inv.lb_dns + " (" + inv.lb_state + ")");
  for (const auto& [port, arn] : inv.listeners) line("  listener", "TCP " + std::to_string(port));
  line("target group", inv.tg_arn.empty() ? "" : aws::target_group_name(s.cluster));
  for (const auto& [ip, state] : inv.targets) line("  target " + ip, state);
  for (const aws::NodeSpec& n : s.nodes) {
    auto it = inv.instances.find(n.name);
    if (it == inv.instances.end()) {
      line("instance " + n.name, "");
      continue;
    }
    const aws::Instance& i = it->second;
    line("instance " + n.name, i.id + " " + i.state + " " + i.private_ip + (i.public_ip.empty() ? "" : " " + i.public_ip) +
                                   (n.worker ? (i.source_dest_check ? " src/dst-check on" : " src/dst-check off") : ""));
  }
  for (const aws::Instance& i : inv.strays) line("stray instance", i.id + " " + i.state + " " + i.node);
  for (const aws::Duplicate& d : inv.duplicates) line("duplicate " + d.kind, d.id + ": " + d.why);
}

}  // namespace

int run_aws(const AwsOptions& o, std::ostream& out, std::ostream& err) {
  auto topology = load(o, err);
  if (!topology) return kExitInvalidInput;
  const Topology& t = *topology;
  const std::string& cluster = t.cluster.name;
  aws::ClusterSpec spec = make_spec(t, o.command == "up", {});

  if (o.command == "down" && !o.yes) {
    err << "kbundle: error: aws down deletes every resource tagged kubernetes.io/cluster/" << cluster
        << "=owned; run it with --yes\n";
    return kExitUsage;
  }

  aws::AwsConfig config = aws::resolve_config(t.aws->region, aws::process_env());
  auto http = aws::make_curl_http_client();
  aws::Client client(config, *http);
  auto progress = [&](const std::string& line) { out << "  " << line << "\n" << std::flush; };
  aws::Waiter wait = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  if (!(o.command == "status" && o.json))
    out << "kbundle aws " << o.command << ": cluster " << cluster << " in " << config.region << " ("
        << config.ec2_endpoint << ", credentials from " << config.credentials.source << ")\n";
  if (o.command != "down" && aws::admin_cidr_is_everyone(spec.admin_cidr))
    err << "kbundle: warning: " << o.topology_path << ": aws.adminCIDR " << spec.admin_cidr
        << " opens SSH, the Kubernetes API and NodePorts to the whole internet (hint: your network's CIDR, "
           "e.g. 203.0.113.0/24)\n";

  if (o.command == "down") {
    int n = aws::destroy(client, cluster, progress, wait, std::chrono::seconds(o.timeout_seconds));
    out << (n == 0 ? "nothing to delete: no resource is tagged for cluster " + cluster
                   : "deleted " + std::to_string(n) + " resource(s) of cluster " + cluster)
        << "\n";
    return kExitOk;
  }

  // Before any AWS call, so that a missing installer or a damaged state stops the run early. Only
  // instances launched by this run get it: AWS runs user data at first boot only.
  if (o.command == "up" || o.command == "plan") {
    auto user_data = boot_user_data(t, o, config, out, err);
    spec = make_spec(t, o.command == "up", user_data);
    if (o.command == "plan" && !user_data.empty()) {
      size_t largest = 0;
      for (const auto& [node, script] : user_data) largest = std::max(largest, script.size());
      out << "  user data: " << user_data.size() << " node(s), at most " << largest << " of " << aws::kUserDataLimit
          << " bytes\n";
    }
  }

  aws::Inventory inv = aws::discover(client, cluster);
  aws::InfraChanges pending = aws::compute_changes(spec, inv);

  if (o.command == "status") {
    if (o.json) {
      nlohmann::json j = aws::to_json(inv);
      j["cluster"] = cluster;
      j["region"] = config.region;
      nlohmann::json described = nlohmann::json::array();
      for (const auto& c : pending.changes) described.push_back(aws::describe(c));
      j["pendingChanges"] = described;
      j["planNotes"] = pending.notes;
      out << j.dump(2) << "\n";
    } else {
      print_inventory(inv, spec, out);
      out << (pending.empty() ? "up to date with the topology\n"
                           : std::to_string(pending.changes.size()) + " change(s) pending: see `kbundle aws plan`\n");
      for (const auto& n : pending.notes) out << "  ! " << n << "\n";
    }
    return kExitOk;
  }

  if (o.command == "plan") {
    for (const auto& c : pending.changes) out << "  " << change_mark(c.action) << aws::describe(c) << "\n";
    for (const auto& n : pending.notes) out << "  ! " << n << "\n";
    print_values(values_from(inv, t), out, "  topology: ");
    out << (pending.empty() ? "nothing to do: the infrastructure matches the topology\n"
                         : std::to_string(pending.changes.size()) + " change(s); `kbundle aws up` makes them\n");
    return kExitOk;
  }

  // up: make the changes, wait for the instances, write back what gen needs.
  std::string image;
  if (std::any_of(pending.changes.begin(), pending.changes.end(),
                  [](const aws::InfraChange& c) { return c.action == aws::Action::RunInstance; })) {
    image = aws::resolve_image(client, spec);
    if (spec.image_id.empty()) out << "  image " << image << " (newest match of " << spec.image_name << ")\n";
  }
  for (const auto& n : pending.notes) out << "  ! " << n << "\n";
  aws::apply(client, spec, pending, image, inv, progress, wait, std::chrono::seconds(o.timeout_seconds));
  out << (pending.empty() ? "nothing to create: the infrastructure matches the topology\n"
                       : "made " + std::to_string(pending.changes.size()) + " change(s)\n");
  TopologyValues values = values_from(inv, t);
  if (values.empty()) {
    out << "topology " << o.topology_path << " is up to date\n";
  } else if (o.keep_topology) {
    out << "set these in " << o.topology_path << " before `kbundle gen`:\n";
    print_values(values, out, "  ");
  } else {
    update_topology(o.topology_path, values);
    out << "updated " << o.topology_path << ":\n";
    print_values(values, out, "  ");
  }
  out << "next: kbundle gen --topology " << o.topology_path << "\n";
  return kExitOk;
}

}  // namespace kb
