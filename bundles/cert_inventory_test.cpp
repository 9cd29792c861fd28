#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/hash.h"
#include "bundles/cert_inventory.h"
#include "bundles/cert_test_util.h"

using namespace kb;
using kb::test::Made;
using kb::test::kubeconfig;

namespace {

constexpr std::time_t kNow = 1767225600;  // 2026-01-01T00:00:00Z

const Made& old_ca() {
  static Made m = kb::test::make_cert("kubernetes-ca", true, kNow, 3650);
  return m;
}
const Made& new_ca() {
  static Made m = kb::test::make_cert("kubernetes-ca", true, kNow, 7300);
  return m;
}
const Made& leaf() {
  static Made m = kb::test::make_cert("system:node:worker-0", false, kNow, 365, "DNS:worker-0,DNS:worker-0.local,IP:10.0.1.20,IP:fd00::1",
                            "system:nodes");
  return m;
}

// Nothing listed or said may carry any part of a key's text.
void check_no_key_text(const std::vector<CertInfo>& certs, const std::vector<std::string>& problems, const std::string& key_pem) {
  std::string body = key_pem.substr(key_pem.find('\n') + 1, 40);
  for (const auto& p : problems) {
    CHECK(p.find(body) == std::string::npos);
    CHECK(p.find(base64_encode(key_pem).substr(0, 40)) == std::string::npos);
  }
  for (const auto& c : certs) {
    CHECK(c.subject.find(body) == std::string::npos);
    CHECK(c.source.find(body) == std::string::npos);
  }
}

}  // namespace

TEST_CASE("a PEM file with one certificate: its facts, source = path", "[cert_inventory]") {
  std::vector<std::string> problems;
  auto certs = certificates_in("/var/lib/kubelet/kubelet.crt", leaf().cert_pem, &problems);
  CHECK(problems.empty());
  REQUIRE(certs.size() == 1);
  const CertInfo& c = certs[0];
  CHECK(c.source == "/var/lib/kubelet/kubelet.crt");
  CHECK(c.path == "/var/lib/kubelet/kubelet.crt");
  CHECK(c.subject == "CN=system:node:worker-0,O=system:nodes");
  CHECK(c.issuer == c.subject);
  CHECK(c.serial_hex == "1234abcd");
  CHECK(c.sha256_fingerprint == leaf().fingerprint);
  CHECK(c.dns_names == std::vector<std::string>{"worker-0", "worker-0.local"});
  CHECK(c.ip_addresses == std::vector<std::string>{"10.0.1.20", "fd00::1"});
  CHECK(c.not_before == kNow);
  CHECK(c.not_after == kNow + 365 * 86400);
  CHECK_FALSE(c.is_ca);
}

TEST_CASE("a trust bundle with two CAs lists both, in file order, with an index", "[cert_inventory]") {
  std::vector<std::string> problems;
  std::string bundle = old_ca().cert_pem + "\n" + new_ca().cert_pem;
  auto certs = certificates_in("/var/lib/kubernetes/ca.crt", bundle, &problems);
  CHECK(problems.empty());
  REQUIRE(certs.size() == 2);
  CHECK(certs[0].source == "/var/lib/kubernetes/ca.crt[0]");
  CHECK(certs[1].source == "/var/lib/kubernetes/ca.crt[1]");
  CHECK(certs[0].sha256_fingerprint == old_ca().fingerprint);
  CHECK(certs[1].sha256_fingerprint == new_ca().fingerprint);
  CHECK(certs[0].is_ca);
  CHECK(certs[1].not_after == kNow + 7300L * 86400);
}

TEST_CASE("CRLF line ends and text around the blocks are fine", "[cert_inventory]") {
  std::string crlf;
  for (char ch : leaf().cert_pem) {
    if (ch == '\n') crlf += '\r';
    crlf += ch;
  }
  std::vector<std::string> problems;
  auto certs = certificates_in("x.pem", "subject=whatever\r\n" + crlf + "trailing words\n", &problems);
  CHECK(problems.empty());
  REQUIRE(certs.size() == 1);
  CHECK(certs[0].sha256_fingerprint == leaf().fingerprint);
}

TEST_CASE("a kubeconfig: the CA data (two CAs) and the client certificate, never the key", "[cert_inventory]") {
  std::string kc = kubeconfig(base64_encode(old_ca().cert_pem + new_ca().cert_pem), base64_encode(leaf().cert_pem),
                              base64_encode(leaf().key_pem));
  std::vector<std::string> problems;
  auto certs = certificates_in("/var/lib/kubelet/kubeconfig", kc, &problems);
  CHECK(problems.empty());
  REQUIRE(certs.size() == 3);
  CHECK(certs[0].source == "/var/lib/kubelet/kubeconfig#clusters[0].certificate-authority-data[0]");
  CHECK(certs[1].source == "/var/lib/kubelet/kubeconfig#clusters[0].certificate-authority-data[1]");
  CHECK(certs[2].source == "/var/lib/kubelet/kubeconfig#users[0].client-certificate-data");
  CHECK(certs[0].sha256_fingerprint == old_ca().fingerprint);
  CHECK(certs[1].sha256_fingerprint == new_ca().fingerprint);
  CHECK(certs[2].sha256_fingerprint == leaf().fingerprint);
  CHECK(certs[2].path == "/var/lib/kubelet/kubeconfig");
  check_no_key_text(certs, problems, leaf().key_pem);
}

TEST_CASE("kubectl's layout, quoted values, several users, and JSON kubeconfigs", "[cert_inventory]") {
  std::string ca = base64_encode(old_ca().cert_pem), cert = base64_encode(leaf().cert_pem);
  std::string kubectl = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: " + ca +
                        "\n    server: https://a:6443\n  name: a\ncontexts: []\nkind: Config\nusers:\n"
                        "  - name: first\n    user:\n      token: abc\n"
                        "  - name: second\n    user:\n      client-certificate-data: \"" + cert + "\"  # comment\n";
  std::vector<std::string> problems;
  auto certs = certificates_in("k", kubectl, &problems);
  CHECK(problems.empty());
  REQUIRE(certs.size() == 2);
  CHECK(certs[0].source == "k#clusters[0].certificate-authority-data");
  CHECK(certs[1].source == "k#users[1].client-certificate-data");

  std::string json = R"({"kind":"Config","clusters":[{"name":"a","cluster":{"certificate-authority-data":")" + ca +
                     R"("}}],"users":[{"name":"u","user":{"client-certificate-data":")" + cert +
                     R"(","client-key-data":")" + base64_encode(leaf().key_pem) + R"("}}]})";
  certs = certificates_in("j", json, &problems);
  CHECK(problems.empty());
  REQUIRE(certs.size() == 2);
  CHECK(certs[0].source == "j#clusters[0].certificate-authority-data");
  CHECK(certs[1].source == "j#users[0].client-certificate-data");
}

TEST_CASE("hostile PEM: garbage, truncated, bad base64, trailing bytes; the good ones still listed", "[cert_inventory]") {
  const std::string& good = leaf().cert_pem;
  std::string body = good.substr(good.find('\n') + 1);
  body = body.substr(0, body.find("-----END"));
  struct Case {
    const char* name;
    std::string text;
    size_t problems;
  };
  std::string der_plus_junk;
  {
    // The certificate's DER followed by one more byte, as a PEM block.
    BIO* b = BIO_new_mem_buf(good.data(), static_cast<int>(good.size()));
    X509* x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
    BIO_free(b);
    unsigned char* der = nullptr;
    int n = i2d_X509(x, &der);
    std::string bytes(reinterpret_cast<char*>(der), static_cast<size_t>(n));
    OPENSSL_free(der);
    X509_free(x);
    der_plus_junk = "-----BEGIN CERTIFICATE-----\n" + base64_encode(bytes + "Z") + "\n-----END CERTIFICATE-----\n";
  }
  std::vector<Case> cases = {
      {"nothing", "", 0},
      {"plain words", "hello world\n", 0},
      {"binary", std::string("\x00\xff\x1b[2J\x7f\n", 8), 0},
      {"base64 junk body", "-----BEGIN CERTIFICATE-----\n!!!!not*base64@@@\n-----END CERTIFICATE-----\n", 1},
      {"empty block", "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", 1},
      {"valid base64, not DER", "-----BEGIN CERTIFICATE-----\n" + base64_encode("just some bytes here") +
                                    "\n-----END CERTIFICATE-----\n", 1},
      {"truncated (no END)", "-----BEGIN CERTIFICATE-----\n" + body.substr(0, body.size() / 2) + "\n", 1},
      {"cut in the middle, END present", "-----BEGIN CERTIFICATE-----\n" + body.substr(0, body.size() / 2) +
                                             "\n-----END CERTIFICATE-----\n", 1},
      {"END of another label", "-----BEGIN CERTIFICATE-----\n" + body + "-----END PRIVATE KEY-----\n", 1},
      {"two BEGINs", "-----BEGIN CERTIFICATE-----\n" + body + good, 1},
      {"trailing bytes after the DER", der_plus_junk, 1},
      {"END without BEGIN", "-----END CERTIFICATE-----\n", 0},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    std::vector<std::string> problems;
    auto certs = certificates_in("/etc/x/bad.crt", c.text + good, &problems);
    CHECK(problems.size() == c.problems);
    for (const auto& p : problems) CHECK(p.rfind("/etc/x/bad.crt: line ", 0) == 0);
    REQUIRE(certs.size() >= 1);  // the good certificate after the bad block is still there
    CHECK(certs.back().sha256_fingerprint == leaf().fingerprint);
  }
  {
    // A file cut short: the first certificate listed, the cut one named.
    std::vector<std::string> problems;
    auto certs = certificates_in("/etc/x/cut.crt", good + good.substr(0, good.size() / 2), &problems);
    CHECK(certs.size() == 1);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].find("certificate block has no END line (truncated?)") != std::string::npos);
  }
  // The problem names the line of the bad block.
  std::vector<std::string> problems;
  certificates_in("/etc/x/bad.crt", good + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", &problems);
  REQUIRE(problems.size() == 1);
  size_t good_lines = static_cast<size_t>(std::count(good.begin(), good.end(), '\n'));
  CHECK(problems[0] == "/etc/x/bad.crt: line " + std::to_string(good_lines + 1) +
                           ": certificate block does not decode to one X.509 certificate");
}

TEST_CASE("a key is never listed nor printed, in a file or where a certificate belongs", "[cert_inventory]") {
  const std::string& key = leaf().key_pem;
  std::vector<std::string> problems;
  auto certs = certificates_in("/etc/etcd/server.key", key, &problems);
  CHECK(certs.empty());
  CHECK(problems.empty());
  // A key and a certificate in one file: only the certificate.
  certs = certificates_in("/x/both.pem", key + leaf().cert_pem + key, &problems);
  CHECK(problems.empty());
  REQUIRE(certs.size() == 1);
  CHECK(certs[0].source == "/x/both.pem");
  // A kubeconfig whose certificate fields hold keys.
  std::string kc = kubeconfig(base64_encode(key), base64_encode(key), base64_encode(key));
  certs = certificates_in("/k", kc, &problems);
  CHECK(certs.empty());
  REQUIRE(problems.size() == 2);
  CHECK(problems[0] == "/k: clusters[0].certificate-authority-data: holds no PEM certificate");
  CHECK(problems[1] == "/k: users[0].client-certificate-data: holds no PEM certificate");
  check_no_key_text(certs, problems, key);
  // A key block labelled as a certificate is a bad certificate block, its text not repeated.
  std::string relabelled = key;
  relabelled.replace(relabelled.find("PRIVATE KEY"), 11, "CERTIFICATE");
  relabelled.replace(relabelled.rfind("PRIVATE KEY"), 11, "CERTIFICATE");
  problems.clear();
  certs = certificates_in("/k2", relabelled, &problems);
  CHECK(certs.empty());
  REQUIRE(problems.size() == 1);
  check_no_key_text(certs, problems, key);
}

TEST_CASE("hostile kubeconfigs: junk base64, empty, not a string; the rest still listed", "[cert_inventory]") {
  std::string ca = base64_encode(old_ca().cert_pem), cert = base64_encode(leaf().cert_pem);
  std::vector<std::string> problems;
  auto certs = certificates_in("/k", kubeconfig("%%%junk%%%", cert, "x"), &problems);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0] == "/k: clusters[0].certificate-authority-data: not base64 (want the base64 of PEM certificates on one line)");
  REQUIRE(certs.size() == 1);
  CHECK(certs[0].source == "/k#users[0].client-certificate-data");

  problems.clear();
  certs = certificates_in("/k", kubeconfig(ca, base64_encode("-----BEGIN CERTIFICATE-----\nAAAA\n"), "x"), &problems);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0] == "/k: users[0].client-certificate-data: line 1: certificate block has no END line (truncated?)");
  CHECK(certs.size() == 1);

  problems.clear();
  certs = certificates_in("/k", kubeconfig(ca, "", "x"), &problems);
  CHECK(problems.size() == 1);
  CHECK(certs.size() == 1);

  problems.clear();
  certs = certificates_in("/k", kubeconfig(ca, base64_encode("\x1b]0;evil\x07 words"), "x"), &problems);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0] == "/k: users[0].client-certificate-data: holds no PEM certificate");

  problems.clear();
  certs = certificates_in("/j", R"({"clusters":[{"cluster":{"certificate-authority-data":42}}],"users":"x"})", &problems);
  CHECK(certs.empty());
  REQUIRE(problems.size() == 1);
  CHECK(problems[0] == "/j: clusters[0].certificate-authority-data: not a string");
  problems.clear();
  certs = certificates_in("/j", "{\"clusters\": [ [[[[", &problems);  // not JSON: nothing, no crash
  CHECK(certs.empty());
  CHECK(problems.empty());
}

TEST_CASE("a control character in the path is escaped in the problem", "[cert_inventory]") {
  std::vector<std::string> problems;
  certificates_in("/x/\x1b[2Jevil.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", &problems);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find('\x1b') == std::string::npos);
  CHECK(problems[0].rfind("/x/\\x1b[2Jevil.crt: ", 0) == 0);
}

TEST_CASE("huge and repetitive input: linear, bounded problems, no crash", "[cert_inventory]") {
  auto start = std::chrono::steady_clock::now();
  // 32 MiB of junk with no newline, then 32 MiB of short lines.
  std::string huge(32u << 20, 'A');
  for (size_t i = 0; i < (32u << 20); i += 16) huge += "-----BEGIN X---\n";
  std::vector<std::string> problems;
  CHECK(certificates_in("/big", huge, &problems).empty());
  CHECK(problems.empty());
  // 100,000 broken certificate blocks: 20 problems and a count.
  std::string many;
  for (int i = 0; i < 100000; ++i) many += "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  many += leaf().cert_pem;
  auto certs = certificates_in("/many", many, &problems);
  REQUIRE(problems.size() == 21);
  CHECK(problems.back() == "/many: and 99980 more problems");
  CHECK(certs.size() == 1);
  // A kubeconfig whose certificate field is 8 MiB of base64 of junk.
  problems.clear();
  certs = certificates_in("/k", kubeconfig(base64_encode(std::string(6u << 20, 'x')), "", ""), &problems);
  CHECK(certs.empty());
  CHECK(problems.size() == 2);
  // A JSON nesting bomb.
  problems.clear();
  certs = certificates_in("/j", "{\"clusters\":" + std::string(200000, '[') + std::string(200000, ']') + "}", &problems);
  CHECK(certs.empty());
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(seconds < 30);  // a guard against quadratic time, not a benchmark
}

TEST_CASE("days_left rounds down, negative once expired", "[cert_inventory]") {
  CHECK(days_left(kNow + 86400 * 12, kNow) == 12);
  CHECK(days_left(kNow + 86400 * 12 - 1, kNow) == 11);
  CHECK(days_left(kNow, kNow) == 0);
  CHECK(days_left(kNow - 1, kNow) == -1);
  CHECK(days_left(kNow - 86400, kNow) == -1);
  CHECK(days_left(kNow - 86401, kNow) == -2);
}

TEST_CASE("a hostile subject or SAN never carries a control character out", "[cert_inventory]") {
  Made evil = kb::test::make_cert("evil\x1b[2J\"\\,\n\x7f\xc3\xa9", false, kNow, 10, "DNS:a\\\"b");
  std::vector<std::string> problems;
  auto certs = certificates_in("/x.crt", evil.cert_pem, &problems);
  REQUIRE(certs.size() == 1);
  const std::string& s = certs[0].subject;
  for (char c : s) CHECK((static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f));
  CHECK_THAT(s, Catch::StartsWith("CN=evil\\1B[2J\\\"\\\\\\,"));  // RFC 2253 escapes, as openssl -nameopt RFC2253 prints
}
