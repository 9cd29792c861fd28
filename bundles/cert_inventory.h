#pragma once
// The certificates in a file a bundle carries: every PEM CERTIFICATE block (a trust bundle holds
// several, e.g. old + new CA while a CA rotates) and, in a kubeconfig, the certificates inside
// certificate-authority-data and client-certificate-data. Shared by `kbundle certs` (generator/)
// and `kbundle-installer status` (which cannot link generator/ nor yaml-cpp: the kubeconfig is
// read with a small line scanner that knows only the two fields, or as JSON when it is JSON).
// Hostile content never crashes it and never reaches a message: a block or field that does not
// parse is reported as a problem naming its place; keys (any other PEM block, client-key-data)
// are skipped and never decoded or printed.

#include <ctime>
#include <string>
#include <vector>

namespace kb {

struct CertInfo {
  // Where it was found: the path alone for a file's only certificate, "PATH[N]" (N from 0) when the
  // file holds several; in a kubeconfig "PATH#users[0].client-certificate-data" or
  // "PATH#clusters[0].certificate-authority-data", with "[N]" appended when the field holds several.
  std::string source;
  std::string subject, issuer;     // RFC 2253 ("CN=system:node:worker-0,O=system:nodes"), as
                                   // `openssl x509 -nameopt RFC2253` prints them
  std::string serial_hex;          // lowercase hex, no leading zeros ("0" for zero)
  std::string sha256_fingerprint;  // lowercase hex SHA-256 of the DER encoding
  std::vector<std::string> dns_names, ip_addresses;  // subjectAltName, in certificate order
  std::time_t not_before = 0, not_after = 0;
  bool is_ca = false;  // basicConstraints CA:TRUE
  std::string path;    // the file it came from (the `path` argument)
};

// Every certificate in `content`, the text of the file at `path` (`path` only names places). A PEM
// CERTIFICATE block that does not decode to exactly one X.509 certificate, a BEGIN line without its
// END, a kubeconfig certificate field that is not base64 or holds no certificate: each adds one line
// to `problems` ("PATH: <place>: <what is wrong>"; at most 20 per call, then a count), and the
// rest is still listed. `problems` may be null.
std::vector<CertInfo> certificates_in(const std::string& path, const std::string& content,
                                      std::vector<std::string>* problems);

// Days from `now` to `not_after`, rounded down (negative once expired).
long days_left(std::time_t not_after, std::time_t now);

}  // namespace kb
