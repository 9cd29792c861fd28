#include "bundles/cert_inventory.h"

#include <arpa/inet.h>
#include <memory>
#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <optional>
#include <string_view>

#include "base/hash.h"
#include "base/text_escape.h"

namespace kb {

namespace {

constexpr size_t kMaxProblems = 20;

// Collects problems, keeping the first kMaxProblems and counting the rest (a file of a million
// broken blocks must not make a million lines).
struct Problems {
  std::vector<std::string>* out;
  std::string path;
  size_t dropped = 0;
  size_t kept = 0;
  void add(const std::string& place, const std::string& what) {
    if (!out) return;
    if (kept >= kMaxProblems) {
      ++dropped;
      return;
    }
    ++kept;
    out->push_back(escape_text(path) + (place.empty() ? "" : ": " + place) + ": " + what);
  }
  void finish() {
    if (out && dropped) out->push_back(escape_text(path) + ": and " + std::to_string(dropped) + " more problems");
  }
};

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Del {
  void operator()(X509* x) const { X509_free(x); }
};

std::string name_text(const X509_NAME* name) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::optional<std::time_t> asn1_time(const ASN1_TIME* t) {
  std::tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return std::nullopt;
  return timegm(&tm);
}

// The facts of one parsed certificate; nullopt (and a problem) when its dates do not decode.
std::optional<CertInfo> describe(X509* cert, std::string source, const std::string& path, const std::string& place,
                                 Problems& problems) {
  CertInfo c;
  c.source = std::move(source);
  c.path = path;
  c.subject = name_text(X509_get_subject_name(cert));
  c.issuer = name_text(X509_get_issuer_name(cert));
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr), &BN_free);
  if (bn) {
    char* hex = BN_bn2hex(bn.get());
    if (hex) {
      c.serial_hex = lower(hex);
      OPENSSL_free(hex);
    }
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &md_len) == 1) c.sha256_fingerprint = to_hex(md, md_len);
  auto nb = asn1_time(X509_get0_notBefore(cert));
  auto na = asn1_time(X509_get0_notAfter(cert));
  if (!nb || !na) {
    problems.add(place, "certificate validity dates do not decode");
    return std::nullopt;
  }
  c.not_before = *nb;
  c.not_after = *na;
  c.is_ca = (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
  if (auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr))) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type == GEN_DNS) {
        const ASN1_STRING* s = g->d.dNSName;
        c.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                 static_cast<size_t>(ASN1_STRING_length(s)));
      } else if (g->type == GEN_IPADD) {
        const ASN1_OCTET_STRING* s = g->d.iPAddress;
        int len = ASN1_STRING_length(s);
        char buf[INET6_ADDRSTRLEN] = {};
        if ((len == 4 || len == 16) && inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(s), buf, sizeof buf))
          c.ip_addresses.emplace_back(buf);
        else
          c.ip_addresses.push_back("0x" + to_hex(ASN1_STRING_get0_data(s), static_cast<size_t>(len < 0 ? 0 : len)));
      }
    }
    GENERAL_NAMES_free(sans);
  }
  return c;
}

// One line of `text` starting at `pos` (without its "\n" or "\r\n"); `pos` moves past it.
std::string_view next_line(std::string_view text, size_t& pos) {
  size_t end = text.find('\n', pos);
  if (end == std::string_view::npos) end = text.size();
  std::string_view line = text.substr(pos, end - pos);
  pos = end < text.size() ? end + 1 : end;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// "-----BEGIN LABEL-----" -> LABEL; nullopt for any other line.
std::optional<std::string_view> pem_label(std::string_view line, std::string_view kind) {
  std::string_view head = kind == "BEGIN" ? "-----BEGIN " : "-----END ";
  if (!line.starts_with(head) || !line.ends_with("-----") || line.size() < head.size() + 5) return std::nullopt;
  return line.substr(head.size(), line.size() - head.size() - 5);
}

// The certificates in the PEM CERTIFICATE blocks of `text`. `prefix` is what places start with
// ("" for a file, "users[0].client-certificate-data: " inside a kubeconfig field). Every other
// block (keys above all) is skipped unread.
std::vector<X509*> pem_certificates(std::string_view text, const std::string& prefix, Problems& problems,
                                    std::vector<std::string>* places) {
  std::vector<X509*> out;
  size_t pos = 0, line_no = 0;
  std::optional<std::pair<std::string, size_t>> open;  // label and line of a BEGIN not yet ended
  size_t block_start = 0;
  while (pos < text.size()) {
    size_t line_pos = pos;
    std::string_view line = next_line(text, pos);
    ++line_no;
    if (auto label = pem_label(line, "BEGIN")) {
      if (open && open->first == "CERTIFICATE")
        problems.add(prefix + "line " + std::to_string(open->second), "certificate block has no END line (truncated?)");
      open = std::make_pair(std::string(*label), line_no);
      block_start = line_pos;
      continue;
    }
    auto end_label = pem_label(line, "END");
    if (!end_label || !open) continue;
    if (*end_label != open->first) {
      if (open->first == "CERTIFICATE")
        problems.add(prefix + "line " + std::to_string(open->second), "certificate block ends with another label's END line");
      open.reset();
      continue;
    }
    std::string label = open->first;
    size_t begin_line = open->second;
    open.reset();
    if (label != "CERTIFICATE") continue;  // a key or anything else: never decoded
    std::string_view block = text.substr(block_start, pos - block_start);
    std::string place = prefix + "line " + std::to_string(begin_line);
    std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(block.data(), static_cast<int>(block.size())));
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    X509* cert = nullptr;
    if (bio && block.size() < (1u << 30) && PEM_read_bio(bio.get(), &name, &header, &data, &len) == 1) {
      const unsigned char* p = data;
      cert = d2i_X509(nullptr, &p, len);
      if (cert && p != data + len) {  // trailing bytes after the certificate: not what it claims
        X509_free(cert);
        cert = nullptr;
      }
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    ERR_clear_error();
    if (!cert) {
      problems.add(place, "certificate block does not decode to one X.509 certificate");
      continue;
    }
    out.push_back(cert);
    places->push_back(place);
  }
  if (open && open->first == "CERTIFICATE")
    problems.add(prefix + "line " + std::to_string(open->second), "certificate block has no END line (truncated?)");
  return out;
}

// Appends the certificates of PEM `text` found at `source` (a file path, or "PATH#field").
void add_pem(std::string_view text, const std::string& source, const std::string& path, const std::string& prefix,
             Problems& problems, std::vector<CertInfo>& out, bool must_hold_one) {
  std::vector<std::string> places;
  size_t problems_before = problems.kept + problems.dropped;
  std::vector<X509*> certs = pem_certificates(text, prefix, problems, &places);
  for (size_t i = 0; i < certs.size(); ++i) {
    std::unique_ptr<X509, X509Del> own(certs[i]);
    std::string src = certs.size() == 1 ? source : source + "[" + std::to_string(i) + "]";
    if (auto c = describe(certs[i], src, path, places[i], problems)) out.push_back(std::move(*c));
  }
  if (must_hold_one && certs.empty() && problems.kept + problems.dropped == problems_before) {
    std::string where = prefix.substr(0, prefix.size() >= 2 ? prefix.size() - 2 : 0);
    problems.add(where, "holds no PEM certificate");
  }
}

// A kubeconfig field's value: base64 of PEM.
void add_field(std::string_view value, const std::string& field_place, const std::string& path, Problems& problems,
               std::vector<CertInfo>& out) {
  std::optional<std::string> pem = base64_decode(value);
  if (!pem) {
    problems.add(field_place, "not base64 (want the base64 of PEM certificates on one line)");
    return;
  }
  add_pem(*pem, path + "#" + field_place, path, field_place + ": ", problems, out, true);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The two certificate fields of a kubeconfig written as YAML block style (as kbundle and kubectl
// write it): "clusters:"/"users:" at column 0, list items "- " at one indent, the field as
// "KEY: VALUE" on one line. Anything else is not looked at.
void scan_yaml_kubeconfig(std::string_view text, const std::string& path, Problems& problems, std::vector<CertInfo>& out) {
  std::string section;
  long index = -1, list_indent = -1;
  size_t pos = 0;
  while (pos < text.size()) {
    std::string_view line = next_line(text, pos);
    size_t indent = 0;
    while (indent < line.size() && line[indent] == ' ') ++indent;
    std::string_view rest = line.substr(indent);
    if (rest.empty() || rest.front() == '#') continue;
    bool item = rest.starts_with("- ") || rest == "-";
    if (indent == 0 && !item) {
      size_t colon = rest.find(':');
      section = std::string(rest.substr(0, colon == std::string_view::npos ? 0 : colon));
      index = -1;
      list_indent = -1;
      continue;
    }
    if (section != "clusters" && section != "users") continue;
    if (item) {
      if (list_indent < 0) list_indent = static_cast<long>(indent);
      if (static_cast<long>(indent) == list_indent) ++index;
      rest = trim(rest.substr(1));
    }
    std::string_view key = section == "clusters" ? "certificate-authority-data:" : "client-certificate-data:";
    if (!rest.starts_with(key)) continue;
    std::string_view value = trim(rest.substr(key.size()));
    if (size_t hash = value.find(" #"); hash != std::string_view::npos) value = trim(value.substr(0, hash));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    std::string place = section + "[" + std::to_string(index < 0 ? 0 : index) + "]." +
                        std::string(key.substr(0, key.size() - 1));
    add_field(value, place, path, problems, out);
  }
}

void scan_json_kubeconfig(const nlohmann::json& j, const std::string& path, Problems& problems, std::vector<CertInfo>& out) {
  auto walk = [&](const char* list, const char* inner, const char* field) {
    if (!j.contains(list) || !j[list].is_array()) return;
    for (size_t i = 0; i < j[list].size(); ++i) {
      const auto& e = j[list][i];
      if (!e.is_object() || !e.contains(inner) || !e[inner].is_object() || !e[inner].contains(field)) continue;
      std::string place = std::string(list) + "[" + std::to_string(i) + "]." + field;
      const auto& v = e[inner][field];
      if (!v.is_string()) {
        problems.add(place, "not a string");
        continue;
      }
      add_field(v.get<std::string>(), place, path, problems, out);
    }
  };
  walk("clusters", "cluster", "certificate-authority-data");
  walk("users", "user", "client-certificate-data");
}

}  // namespace

std::vector<CertInfo> certificates_in(const std::string& path, const std::string& content,
                                      std::vector<std::string>* problems_out) {
  Problems problems{problems_out, path};
  std::vector<CertInfo> out;
  add_pem(content, path, path, "", problems, out, false);
  std::string_view body = trim(content);
  if (body.starts_with("{")) {
    nlohmann::json j = nlohmann::json::parse(content, nullptr, false);
    if (!j.is_discarded() && j.is_object()) scan_json_kubeconfig(j, path, problems, out);
  } else if (content.find("-data:") != std::string::npos) {  // cheap test before the line scan
    scan_yaml_kubeconfig(content, path, problems, out);
  }
  problems.finish();
  return out;
}

long days_left(std::time_t not_after, std::time_t now) {
  long long d = static_cast<long long>(not_after) - static_cast<long long>(now);
  long long days = d / 86400;
  if (d < 0 && d % 86400 != 0) --days;  // rounded down: half a day past expiry is day -1
  return static_cast<long>(days);
}

}  // namespace kb
