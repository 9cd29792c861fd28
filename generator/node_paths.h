#pragma once
// Where each file lives on a node. The single source for the plan (which
// writes the files) and the templates (whose flags point at them).
// Layout follows Kubernetes The Hard Way (docs/artifacts.md lists what each node gets).

#include "bundles/path_policy.h"

namespace kb::paths {

// Control plane: /var/lib/kubernetes
inline constexpr const char* kKubernetesDir = "/var/lib/kubernetes";
inline constexpr const char* kCaCert = "/var/lib/kubernetes/ca.crt";  // kubernetes-ca (also on workers)
inline constexpr const char* kCaKey = "/var/lib/kubernetes/ca.key";   // controller-manager signs CSRs
// During a kubernetes-ca rotation only: the one cert matching kCaKey (kCaCert then holds two CAs).
inline constexpr const char* kCaSigningCert = "/var/lib/kubernetes/ca-signing.crt";
inline constexpr const char* kApiserverCert = "/var/lib/kubernetes/kube-apiserver.crt";
inline constexpr const char* kApiserverKey = "/var/lib/kubernetes/kube-apiserver.key";
inline constexpr const char* kApiserverKubeletClientCert = "/var/lib/kubernetes/apiserver-kubelet-client.crt";
inline constexpr const char* kApiserverKubeletClientKey = "/var/lib/kubernetes/apiserver-kubelet-client.key";
inline constexpr const char* kApiserverEtcdClientCert = "/var/lib/kubernetes/apiserver-etcd-client.crt";
inline constexpr const char* kApiserverEtcdClientKey = "/var/lib/kubernetes/apiserver-etcd-client.key";
inline constexpr const char* kEtcdCaCertForApiserver = "/var/lib/kubernetes/etcd-ca.crt";
inline constexpr const char* kFrontProxyCaCert = "/var/lib/kubernetes/front-proxy-ca.crt";
inline constexpr const char* kFrontProxyClientCert = "/var/lib/kubernetes/front-proxy-client.crt";
inline constexpr const char* kFrontProxyClientKey = "/var/lib/kubernetes/front-proxy-client.key";
inline constexpr const char* kServiceAccountKey = "/var/lib/kubernetes/service-accounts.key";
inline constexpr const char* kServiceAccountPub = "/var/lib/kubernetes/service-accounts.pub";
inline constexpr const char* kEncryptionConfig = "/var/lib/kubernetes/encryption-config.yaml";
// Phase 3 of an encryption-key rotation, designated node only: the installer rewrites every Secret.
inline constexpr const char* kReencryptRequest = kb::kReencryptRequestFile;
inline constexpr const char* kAuditPolicy = "/var/lib/kubernetes/audit-policy.yaml";
inline constexpr const char* kAdmissionControlConfig = "/var/lib/kubernetes/admission-control.yaml";
inline constexpr const char* kAuthenticationConfig = "/var/lib/kubernetes/authentication-config.yaml";
inline constexpr const char* kControllerManagerKubeconfig = "/var/lib/kubernetes/kube-controller-manager.kubeconfig";
inline constexpr const char* kSchedulerKubeconfig = "/var/lib/kubernetes/kube-scheduler.kubeconfig";
inline constexpr const char* kAdminKubeconfig = "/var/lib/kubernetes/admin.kubeconfig";
inline constexpr const char* kSchedulerConfigDir = "/etc/kubernetes/config";
inline constexpr const char* kSchedulerConfig = "/etc/kubernetes/config/kube-scheduler.yaml";
// The bootstrap objects and their applier's identity: on the designated control-plane node only
// (docs/bootstrap.md); kube-apiserver's loopback URL and kCaCert complete what the installer needs.
// (The paths themselves live in bundles/path_policy.h: the policy and the installer use them too.)
using kb::kBootstrapCert;
using kb::kBootstrapDir;
using kb::kBootstrapKey;
using kb::kBootstrapObjects;
inline constexpr const char* kAuditLogDir = "/var/log/kubernetes";
inline constexpr const char* kAuditLog = "/var/log/kubernetes/audit.log";

// etcd: /etc/etcd (certs), /var/lib/etcd (data; never written by apply)
inline constexpr const char* kEtcdDir = "/etc/etcd";
// (The CA, peer cert and key, data dir and membership file are in bundles/path_policy.h: the
// installer's etcd membership step uses them too.)
inline constexpr const char* kEtcdCaCert = kb::kEtcdCaCertFile;
inline constexpr const char* kEtcdServerCert = "/etc/etcd/server.crt";
inline constexpr const char* kEtcdServerKey = "/etc/etcd/server.key";
inline constexpr const char* kEtcdPeerCert = kb::kEtcdPeerCertFile;
inline constexpr const char* kEtcdPeerKey = kb::kEtcdPeerKeyFile;
inline constexpr const char* kEtcdDataDir = kb::kEtcdDataDirPath;
inline constexpr const char* kEtcdMembership = kb::kEtcdMembershipFile;
// Snapshots (docs/backup.md): the timer runs the installer, which reads the backup policy.
inline constexpr const char* kEtcdBackupConfig = kb::kEtcdBackupFile;
inline constexpr const char* kEtcdSnapshotService = kb::kEtcdSnapshotServiceFile;
inline constexpr const char* kEtcdSnapshotTimer = "/etc/systemd/system/etcd-snapshot.timer";
inline constexpr const char* kInstallerBin = "/usr/local/bin/kbundle-installer";  // as kbundle-recover.service

// Workers
inline constexpr const char* kKubeletDir = "/var/lib/kubelet";
inline constexpr const char* kKubeletCert = "/var/lib/kubelet/kubelet.crt";
inline constexpr const char* kKubeletKey = "/var/lib/kubelet/kubelet.key";
inline constexpr const char* kKubeletKubeconfig = "/var/lib/kubelet/kubeconfig";
inline constexpr const char* kKubeletConfig = "/var/lib/kubelet/kubelet-config.yaml";
inline constexpr const char* kKubeProxyDir = "/var/lib/kube-proxy";
inline constexpr const char* kKubeProxyKubeconfig = "/var/lib/kube-proxy/kubeconfig";
inline constexpr const char* kKubeProxyConfig = "/var/lib/kube-proxy/kube-proxy-config.yaml";
inline constexpr const char* kContainerdDir = "/etc/containerd";
inline constexpr const char* kContainerdConfig = "/etc/containerd/config.toml";
inline constexpr const char* kCniConfDir = "/etc/cni/net.d";
inline constexpr const char* kCniBinDir = "/opt/cni/bin";
inline constexpr const char* kCniBridgeConf = "/etc/cni/net.d/10-bridge.conf";
inline constexpr const char* kCniLoopbackConf = "/etc/cni/net.d/99-loopback.conf";
inline constexpr const char* kSysctlConf = "/etc/sysctl.d/99-kubernetes.conf";
inline constexpr const char* kModulesLoadConf = "/etc/modules-load.d/kubernetes.conf";
inline constexpr const char* kSystemdDir = "/etc/systemd/system";
inline constexpr const char* kBinDir = "/usr/local/bin";
// node_exporter's textfile collector directory: the certificate metrics go there, when it exists (docs/certs.md).
inline constexpr const char* kTextfileCollectorDir = "/var/lib/node_exporter/textfile_collector";
inline constexpr const char* kCertMetricsFile = "/var/lib/node_exporter/textfile_collector/kbundle.prom";
inline constexpr const char* kContainerdSocket = "/run/containerd/containerd.sock";
inline constexpr const char* kResolvConf = "/run/systemd/resolve/resolv.conf";

// Modes: everything kbundle writes is readable by root only (CIS 1.1 and 4.1),
// except executables.
inline constexpr unsigned kFileMode = 0600;
inline constexpr unsigned kDirMode = 0700;
inline constexpr unsigned kBinaryMode = 0755;

}  // namespace kb::paths
