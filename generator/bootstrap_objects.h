#pragma once
// The bootstrap objects (docs/bootstrap.md): the API objects a fresh cluster needs before it serves
// `kubectl logs`/`exec` and cluster DNS: the kubelet-API RBAC for kube-apiserver's kubelet client
// identity, and CoreDNS. gen writes them as objects.json into the designated control-plane node's
// bundle (contract A of issue 14); the installer there applies them with server-side apply.
// Each fact comes from one place: the RBAC subject from generator/pki.h, the DNS IP from
// Topology::cluster_dns_ip() (the kubelets' clusterDNS), the image from the release catalog.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "topology/topology.h"

namespace kb {

struct BootstrapObject {
  std::string api_path;   // the object's own REST path, e.g. /api/v1/namespaces/kube-system/services/kube-dns
  nlohmann::json object;  // the full object: apiVersion, kind, metadata, ...
};

// The field manager of every apply, and the label every object carries.
inline constexpr const char* kBootstrapFieldManager = "kbundle";
inline constexpr const char* kManagedByLabel = "app.kubernetes.io/managed-by";

// The node whose bundle carries the objects: the first control-plane node in topology order
// (null only for a topology without one, which the validator refuses).
const Node* bootstrap_node(const Topology& topology);

// The CoreDNS image reference of the release catalog for `kubernetes_version`: the image the
// worker bundles carry as coredns.tar. Throws kb::Error when the catalog entry has none.
std::string coredns_image(const std::string& kubernetes_version);

// The objects in apply order: every ServiceAccount, role and binding before what uses them.
std::vector<BootstrapObject> bootstrap_objects(const Topology& topology);

// objects.json (contract A): version, api_server (the node's own apiserver on loopback), the CA,
// cert and key files, the field manager and the objects. Same topology, same bytes.
std::string render_bootstrap_objects(const Topology& topology);

// The REST path of `object` from its apiVersion, kind, namespace and name. Throws kb::Error
// ("internal error") for a kind this file does not generate.
std::string api_path_of(const nlohmann::json& object);

}  // namespace kb
