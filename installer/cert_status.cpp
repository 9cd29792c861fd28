#include "installer/cert_status.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/stat.h>

#include "base/error.h"
#include "base/file_io.h"
#include "base/text_escape.h"

namespace kb::installer {

size_t NodeCerts::count(const std::string& status) const {
  return static_cast<size_t>(std::count_if(certs.begin(), certs.end(), [&](const NodeCert& c) { return c.status == status; }));
}

bool may_hold_certificates(const ManifestEntry& e) {
  if (e.type != EntryType::File || e.cls == EntryClass::Binary) return false;
  const std::string& p = e.path;
  return p.ends_with(".crt") || p.ends_with(".pem") || p.ends_with("kubeconfig");
}

NodeCerts node_certificates(const Layout& layout, const Manifest& m, int64_t now, int renew_before_days) {
  NodeCerts out;
  for (const ManifestEntry& e : m.entries) {
    if (!may_hold_certificates(e)) continue;
    const std::string live = layout.live(e.path);
    struct stat st;
    if (::lstat(live.c_str(), &st) != 0) {
      out.problems.push_back(escape_text(e.path) + ": cannot read: " + std::strerror(errno) +
                             " (kbundle-installer verify shows drift; apply the bundle again to repair it)");
      continue;
    }
    if (!S_ISREG(st.st_mode)) {
      out.problems.push_back(escape_text(e.path) + ": not a regular file; not read (apply the bundle again to repair it)");
      continue;
    }
    if (static_cast<uint64_t>(st.st_size) > kMaxCertFileBytes) {
      out.problems.push_back(escape_text(e.path) + ": " + std::to_string(st.st_size) + " bytes, more than a certificate file "
                             "holds; not read (apply the bundle again to repair it)");
      continue;
    }
    std::string content;
    try {
      content = read_file(live);
    } catch (const Error& err) {
      out.problems.push_back(escape_text(e.path) + ": cannot read: " + escape_text(err.what()));
      continue;
    }
    std::vector<std::string> problems;
    std::vector<CertInfo> found = certificates_in(e.path, content, &problems);
    for (auto& p : problems) out.problems.push_back(std::move(p));
    if (found.empty() && problems.empty())
      out.problems.push_back(escape_text(e.path) + ": holds no certificate (apply the bundle again to repair it)");
    for (CertInfo& c : found) {
      NodeCert nc;
      nc.days_left = days_left(c.not_after, static_cast<std::time_t>(now));
      nc.status = nc.days_left < 0 ? "expired" : nc.days_left <= renew_before_days ? "renew" : "ok";
      nc.info = std::move(c);
      out.certs.push_back(std::move(nc));
    }
  }
  return out;
}

std::string prometheus_label_value(std::string_view s) {
  std::string out;
  for (char c : escape_text(s)) {  // printable UTF-8 first: a control byte never reaches the file
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string prometheus_text(const NodeCerts& certs, const std::string& node, int renew_before_days) {
  struct Metric {
    const char* name;
    const char* help;
    long long (*value)(const NodeCert&);
  };
  static const Metric kMetrics[] = {
      {"kbundle_certificate_expiry_timestamp_seconds", "When the certificate expires (notAfter), seconds since the epoch.",
       [](const NodeCert& c) { return static_cast<long long>(c.info.not_after); }},
      {"kbundle_certificate_days_left", "Whole days until the certificate expires, rounded down; negative once expired.",
       [](const NodeCert& c) { return static_cast<long long>(c.days_left); }},
      {"kbundle_certificate_expired", "1 when the certificate has expired, else 0.",
       [](const NodeCert& c) { return static_cast<long long>(c.status == "expired"); }},
      {"kbundle_certificate_renewal_due", "1 when the certificate expires within the renewal window or has expired, else 0.",
       [](const NodeCert& c) { return static_cast<long long>(c.status != "ok"); }},
  };
  std::string out;
  const std::string node_label = "node=\"" + prometheus_label_value(node) + "\"";
  for (const Metric& m : kMetrics) {
    out += std::string("# HELP ") + m.name + " " + m.help + "\n# TYPE " + m.name + " gauge\n";
    for (const NodeCert& c : certs.certs)
      out += std::string(m.name) + "{" + node_label + ",path=\"" + prometheus_label_value(c.info.path) + "\",source=\"" +
             prometheus_label_value(c.info.source) + "\",subject=\"" + prometheus_label_value(c.info.subject) + "\"} " +
             std::to_string(m.value(c)) + "\n";
  }
  out += "# HELP kbundle_certificate_renew_before_days The renewal window status warns in, in days.\n"
         "# TYPE kbundle_certificate_renew_before_days gauge\n"
         "kbundle_certificate_renew_before_days{" + node_label + "} " + std::to_string(renew_before_days) + "\n";
  out += "# HELP kbundle_certificate_problems Problems found reading the certificate files (missing, unreadable, a bad certificate); 0 when none.\n"
         "# TYPE kbundle_certificate_problems gauge\n"
         "kbundle_certificate_problems{" + node_label + "} " + std::to_string(certs.problems.size()) + "\n";
  return out;
}

}  // namespace kb::installer
