#pragma once
// Tests only: real X.509 certificates made in-process (bundles/cert_inventory_test.cpp and the
// installer's status tests), so that no test depends on a fixture file that expires.

#include <catch2/catch.hpp>
#include <ctime>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string>

#include "base/hash.h"

namespace kb::test {

struct Made {
  std::string cert_pem, key_pem, fingerprint;
};

inline std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string s(data, static_cast<size_t>(n));
  BIO_free(bio);
  return s;
}

// A self-signed certificate (CA when `ca`), P-256, valid from `not_before` for `days`, with the given SANs.
inline Made make_cert(const std::string& cn, bool ca, std::time_t not_before, int days, const std::string& san = "",
                      const std::string& org = "") {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  REQUIRE(key);
  X509* c = X509_new();
  X509_set_version(c, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c), 0x1234abcd);
  X509_NAME* name = X509_get_subject_name(c);
  if (!org.empty())
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(org.c_str()), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(c, name);
  X509_time_adj_ex(X509_getm_notBefore(c), 0, 0, &not_before);
  X509_time_adj_ex(X509_getm_notAfter(c), days, 0, &not_before);
  X509_set_pubkey(c, key);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, c, c, nullptr, nullptr, 0);
  auto add = [&](int nid, const std::string& value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    REQUIRE(ext);
    X509_add_ext(c, ext, -1);
    X509_EXTENSION_free(ext);
  };
  add(NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  if (!san.empty()) add(NID_subject_alt_name, san);
  REQUIRE(X509_sign(c, key, EVP_sha256()) > 0);
  Made m;
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, c);
  m.cert_pem = bio_text(b);
  b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  m.key_pem = bio_text(b);
  unsigned char md[32];
  unsigned int len = 0;
  X509_digest(c, EVP_sha256(), md, &len);
  m.fingerprint = to_hex(md, len);
  X509_free(c);
  EVP_PKEY_free(key);
  return m;
}

// A kubeconfig as kbundle writes it, with the three data fields as given (base64 or junk).
inline std::string kubeconfig(const std::string& ca_data, const std::string& cert_data, const std::string& key_data) {
  return "apiVersion: v1\nkind: Config\nclusters:\n- name: \"demo\"\n  cluster:\n    certificate-authority-data: " +
         ca_data + "\n    server: \"https://10.0.1.10:6443\"\nusers:\n- name: \"system:node:worker-0\"\n  user:\n" +
         "    client-certificate-data: " + cert_data + "\n    client-key-data: " + key_data +
         "\ncontexts:\n- name: default\n  context:\n    cluster: \"demo\"\n    user: \"system:node:worker-0\"\n" +
         "current-context: default\npreferences: {}\n";
}

}  // namespace kb::test
