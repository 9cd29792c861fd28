#pragma once
// The certificates installed on the node, for `kbundle-installer status` (docs/certs.md): every
// certificate in the installed bundle's certificate files and kubeconfigs (bundles/cert_inventory.h),
// with days left against a renewal window, and the same list as a Prometheus text file for
// node_exporter's textfile collector. Reads only; keys are never opened.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bundles/cert_inventory.h"
#include "bundles/manifest.h"
#include "installer/layout.h"

namespace kb::installer {

// gen's default renewBeforeDays (topology: cluster.renewBeforeDays); status --renew-before-days N
// takes the topology's own value.
inline constexpr int kDefaultRenewBeforeDays = 30;
// A certificate file or kubeconfig larger than this is not read (gen writes a few KiB).
inline constexpr uint64_t kMaxCertFileBytes = 4u << 20;

struct NodeCert {
  CertInfo info;
  long days_left = 0;
  std::string status;  // "ok", "renew" (inside the window), "expired"
};

struct NodeCerts {
  std::vector<NodeCert> certs;        // in manifest order, then file order
  std::vector<std::string> problems;  // "PATH: ..." for a file that is missing, unreadable or holds a bad certificate
  size_t count(const std::string& status) const;
};

// True for the entries status reads: regular files that are not binaries, named *.crt, *.pem or
// *kubeconfig (a key, *.key, is never opened).
bool may_hold_certificates(const ManifestEntry& e);

NodeCerts node_certificates(const Layout& layout, const Manifest& m, int64_t now, int renew_before_days);

// Prometheus text exposition format (version 0.0.4): HELP and TYPE once per metric, one sample per
// certificate labelled {node, path, source, subject}, then the window and the problem count.
std::string prometheus_text(const NodeCerts& certs, const std::string& node, int renew_before_days);
// A label value: \ " and line feed escaped as \\ \" \n (everything else was made printable first).
std::string prometheus_label_value(std::string_view s);

}  // namespace kb::installer
