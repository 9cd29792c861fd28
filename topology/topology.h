#pragma once
// The topology file: cluster settings and nodes, parsed and validated.
// A Topology value that exists is valid: every invariant checked by the
// validator holds (unique names and IPs, pod CIDRs assigned to every worker, ...).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "topology/cidr.h"

namespace kb {

enum class Role { ControlPlane, Worker, Both };
enum class KeyType { EcdsaP256, Rsa2048, Rsa3072, Rsa4096 };
enum class EncryptionProvider { Aescbc, Secretbox, Aesgcm };

const char* to_string(Role r);                // "control-plane", "worker", "both"
const char* to_string(KeyType k);             // "ecdsa-p256", "rsa-2048", ...
const char* to_string(EncryptionProvider p);  // "aescbc", "secretbox", "aesgcm"

struct Node {
  std::string name;        // DNS-1123 label, unique
  Role role = Role::Worker;
  std::string private_ip;  // dotted IPv4
  std::string public_ip;   // empty when not given
  std::string hostname;    // defaults to name
  std::string pod_cidr;    // workers (and "both"): given or assigned in node order; empty otherwise
  std::string instance_id;  // EC2 instance id (written by `kbundle aws up`); binds the bundle to it

  bool is_control_plane() const { return role == Role::ControlPlane || role == Role::Both; }
  bool is_worker() const { return role == Role::Worker || role == Role::Both; }
};

// `cluster.hardening`: CIS Kubernetes Benchmark settings a cluster may turn off
// (docs/cis.md). Everything is on by default; `kbundle lint` lists what is off.
struct Hardening {
  bool always_pull_images = true;          // AlwaysPullImages admission (CIS 1.2.11)
  bool deny_service_external_ips = true;   // DenyServiceExternalIPs admission (CIS 1.2.3)
};

struct Cluster {
  std::string name;                         // DNS-1123 label
  std::string kubernetes_version = "v1.32.3";
  std::string api_host;                     // load balancer DNS name or IP
  int api_port = 6443;
  std::string pod_cidr = "10.200.0.0/16";
  int node_pod_cidr_prefix = 24;            // size of each worker's pod CIDR
  std::string service_cidr = "10.32.0.0/24";
  std::string cluster_domain = "cluster.local";
  KeyType key_type = KeyType::EcdsaP256;
  int ca_validity_days = 3650;
  int leaf_validity_days = 365;
  int renew_before_days = 30;               // reissue leaf certs expiring within this window
  EncryptionProvider encryption_provider = EncryptionProvider::Aescbc;
  Hardening hardening;
};

// The optional `aws` section: where `kbundle aws up` creates the cluster's machines.
struct AwsSettings {
  std::string region;               // empty: from the environment (AWS_REGION, the profile)
  std::string vpc_cidr = "10.0.0.0/16";
  std::string subnet_cidr = "10.0.1.0/24";  // every node's privateIP lies inside it
  std::string availability_zone;    // empty: AWS picks
  std::string control_plane_instance_type = "t3.medium";  // also for role "both"
  std::string worker_instance_type = "t3.medium";
  std::string image_id;             // exactly one of image_id and image_name
  std::string image_name;           // a DescribeImages name filter ('*' wildcards); newest match
  std::string image_owner;          // account owning image_name's images; empty: any
  std::string ssh_public_key_file;  // as written; relative paths are from the topology's folder
  std::string admin_cidr;           // SSH, the API and NodePorts are reachable from here
  // user data (docs/aws.md, "User data"): at most one of bundles and bundle_url
  std::string bundles;              // "s3://BUCKET/PREFIX/": per-node presigned URLs (recommended)
  std::string bundle_url;           // https URL of the node's bundle ("{node}", "{cluster}"); empty: none
  std::string installer_url;        // https URL of kbundle-installer, with bundle_url only; optional
};

// `etcd.backup`: the snapshot timer on every control-plane node (docs/backup.md).
struct EtcdBackup {
  std::string schedule = "hourly";        // systemd OnCalendar= expression
  int keep = 24;                          // snapshots kept on the node, the newest first
  int max_age_days = 7;                   // older ones are removed (never the newest)
  std::string dir = "/var/backups/etcd";  // where the node keeps them (base/etcd_backup.h: backup_dir_problem)
};

struct Topology {
  std::string source_path;  // the file it came from, for messages
  Cluster cluster;
  std::vector<Node> nodes;  // in file order
  std::optional<AwsSettings> aws;  // the `aws` section, when given
  EtcdBackup etcd_backup;          // `etcd.backup`, defaults when not given

  std::vector<const Node*> control_planes() const;
  std::vector<const Node*> workers() const;
  std::string api_service_ip() const;  // first address of the service CIDR (network + 1)
  std::string cluster_dns_ip() const;  // tenth address of the service CIDR (network + 10)
  std::string api_server_url() const;  // https://<api_host>:<api_port>
};

struct Diagnostic {
  enum class Severity { Error, Warning };
  Severity severity = Severity::Error;
  std::string file;
  int line = 0;    // 1-based; 0 when the problem has no place in the file
  int column = 0;  // 1-based
  std::string message;
  std::string hint;  // how to fix it; may be empty

  // "file:line:column: error: message (hint)" as compilers print it; the file name, message and
  // hint quote topology text, so control characters are escaped (base/text_escape.h).
  std::string format() const;
};

struct TopologyResult {
  std::optional<Topology> topology;  // set only when there is no error (warnings allowed)
  std::vector<Diagnostic> diagnostics;
  bool ok() const { return topology.has_value(); }
};

// Topology files larger than this are refused before parsing (docs/topology.md, "Input limits");
// a 5,000-node topology is under 1 MiB.
inline constexpr size_t kMaxTopologyBytes = size_t{4} << 20;
// Kubernetes supports clusters of at most 5,000 nodes ("Considerations for large clusters"). The
// bound also keeps YAML aliases ("nodes: [*a, *a, ...]") from multiplying the work per byte.
inline constexpr size_t kMaxNodes = 5000;
// At most this many diagnostics are kept; the last one says how many more there were.
inline constexpr size_t kMaxDiagnostics = 1000;

// Parses and validates. Every problem is reported at once; nothing is thrown for bad input.
TopologyResult parse_topology(const std::string& yaml_text, const std::string& file_name);
TopologyResult load_topology(const std::string& path);

// Versions this release can generate for: any vX.Y.Z of v1.32 and v1.33 (binaries/catalog has
// one template per minor; generator/catalog_minors_test.cpp keeps the two lists equal).
bool is_supported_kubernetes_version(const std::string& version);
std::string supported_kubernetes_versions();  // for messages: "v1.32.x, v1.33.x"

}  // namespace kb
