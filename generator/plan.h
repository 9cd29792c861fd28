#pragma once
// The cluster plan: for every node, the exact set of files (path, mode, owner,
// class, content), the units to start in order, and the health checks that
// gate an install. Everything downstream (directory output, bundles) is a
// rendering of this value.

#include <cstdint>
#include <string>
#include <vector>

#include "topology/topology.h"

namespace kb {

class State;

enum class FileClass { Secret, Config, Unit, Binary };
const char* to_string(FileClass c);  // "secret", "config", "unit", "binary"

struct PlannedFile {
  std::string path;  // absolute path on the node, e.g. /var/lib/kubernetes/ca.crt
  unsigned mode = 0600;
  std::string owner = "root";
  std::string group = "root";
  FileClass cls = FileClass::Config;
  std::string content;      // empty for a file that comes from source_path
  // Binaries and images come from the verified cache, never from memory:
  std::string source_path;  // the cached file, streamed into the bundle
  std::string source_url;   // where it was downloaded from (recorded in the manifest)
  std::string source_sha256;
  uint64_t source_size = 0;
};

struct HealthCheck {
  std::string name;     // e.g. "etcd", "kube-apiserver"
  std::string kind;     // "unit" (systemd active), "etcd" (etcd /health over TLS), "https" (GET url == 200)
  std::string target;   // unit name or URL
  std::string ca_file, cert_file, key_file;  // TLS material on the node, may be empty
  int timeout_seconds = 60;
};

struct NodePlan {
  Node node;
  std::vector<PlannedFile> files;         // sorted by path, unique
  std::vector<std::string> directories;   // directories to create 0700 (e.g. /var/lib/etcd), sorted
  std::vector<std::string> units;         // unit file names, in start order
  std::vector<HealthCheck> health_checks; // in order
};

struct ClusterPlan {
  std::string cluster_name;
  std::string cluster_id;
  std::vector<NodePlan> nodes;  // topology order
  std::string admin_kubeconfig; // workstation kubeconfig (to the API endpoint)
};

// Builds the plan for every node of `topology` (or only those named in `only`
// when it is non-empty), issuing or reusing certificates through `state`.
ClusterPlan make_cluster_plan(const Topology& topology, State& state, const std::vector<std::string>& only = {});

}  // namespace kb
