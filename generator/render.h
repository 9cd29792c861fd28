#pragma once
// systemd units and component configs, rendered from templates/ (embedded
// into the binary at build time) with kainjow-mustache.

#include <string>
#include <vector>

#include "generator/etcd_membership.h"
#include "generator/plan.h"
#include "topology/topology.h"

namespace kb {

// The text of an embedded template, e.g. "etcd.service.mustache"; throws kb::Error if unknown.
const std::string& embedded_template(const std::string& name);

// Every unit and component config `node` needs (no certificates, keys or kubeconfigs):
// control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler units,
// kube-scheduler.yaml, audit policy, admission control config; workers: containerd, kubelet, kube-proxy units and
// configs, CNI configs, sysctl and modules-load files. Paths from generator/node_paths.h.
// `etcd` is the node's recorded etcd member (generator/etcd_membership.h): its --initial-cluster and
// --initial-cluster-state; none: every control-plane node of the topology, "new".
// `ca_signing_cert`: kube-controller-manager's --cluster-signing-cert-file; null: the CA file itself
// (a CA rotation ships the signing cert apart from the two-CA trust bundle: docs/rotation.md).
std::vector<PlannedFile> render_units_and_configs(const Topology& topology, const Node& node,
                                                  const EtcdRecordMember* etcd = nullptr,
                                                  const char* ca_signing_cert = nullptr);

}  // namespace kb
