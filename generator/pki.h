#pragma once
// Keys and X.509 certificates with the OpenSSL 3 API, in-process.
// Serials are 128 random bits; CAs carry basicConstraints CA:TRUE (critical),
// keyUsage keyCertSign+cRLSign+digitalSignature (critical), SKI; leaves carry
// CA:FALSE, keyUsage digitalSignature(+keyEncipherment for RSA), EKU, SKI/AKI, SANs.

#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "topology/topology.h"

typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_st X509;

namespace kb {

struct PkeyFree { void operator()(EVP_PKEY* p) const; };
struct X509Free { void operator()(X509* p) const; };
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

PkeyPtr generate_key(KeyType type);
PkeyPtr generate_ed25519_key();  // the bundle-signing key (not a KeyType: it never signs certs)
std::string private_key_pem(EVP_PKEY* key);  // PKCS#8, unencrypted
std::string public_key_pem(EVP_PKEY* key);   // SubjectPublicKeyInfo
std::string cert_pem(X509* cert);
// Parse; throw kb::Error("<what>: ...") when the text is not a valid key / certificate.
PkeyPtr parse_private_key(const std::string& pem, const std::string& what);
X509Ptr parse_cert(const std::string& pem, const std::string& what);
PkeyPtr parse_public_key(const std::string& pem, const std::string& what);  // SubjectPublicKeyInfo
KeyType key_type_of(EVP_PKEY* key);  // throws for a type kbundle does not make
bool key_matches_cert(EVP_PKEY* key, X509* cert);

// What a certificate must say. Equality of two requests means "same cert content".
struct CertRequest {
  std::string common_name;
  std::vector<std::string> organizations;
  bool server_auth = false;
  bool client_auth = false;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  bool operator==(const CertRequest&) const = default;
};

struct CertificateAuthority {
  std::string name;  // "kubernetes-ca", "etcd-ca", "front-proxy-ca"
  X509Ptr cert;
  PkeyPtr key;
  std::string cert_pem;  // as stored
  std::string key_pem;   // as stored
};

// The clock is an input: `now` is the run's time (std::time(nullptr) in cli/, a fixed time in tests).

// A self-signed CA with CN = `common_name`, valid from `now` (minus 5 minutes) for `validity_days`.
CertificateAuthority make_ca(const std::string& name, const std::string& common_name, KeyType type, int validity_days,
                             std::time_t now);

// Issues a leaf for `subject_key` signed by `ca`, valid from `now` (minus 5 minutes of clock skew)
// for `validity_days`. For speed, an ECDSA leaf's public key is not decoded in the returned
// object: X509_get0_pubkey() gives null until the cert is parsed back from PEM;
// key_matches_cert() and cert_pem() work on it as usual.
X509Ptr issue_cert(const CertificateAuthority& ca, EVP_PKEY* subject_key, const CertRequest& request, int validity_days,
                   std::time_t now);

// Why an existing cert + key no longer fit `request` (empty when they still do): a different
// subject, usage or SAN set, another issuer, another key type, a key that does not match,
// or expiry within `renew_before_days` of `now`.
std::string why_reissue(X509* cert, EVP_PKEY* key, const CertificateAuthority& ca, const CertRequest& request,
                        KeyType key_type, int renew_before_days, std::time_t now);

// The fixed client identities other code must agree with, each defined once here: the plan
// issues them, generator/bootstrap_objects.cpp names them in RBAC subjects.
// kube-apiserver's client cert for the kubelet API (logs, exec, metrics): CN only, no group.
CertRequest apiserver_kubelet_client_request();
// The bootstrap objects' applier (docs/bootstrap.md): CN kbundle:bootstrap, O system:masters,
// because only a holder of a right may grant it, so the cluster's first RBAC needs system:masters.
CertRequest bootstrap_client_request();

// Lowercase hex SHA-256 of the certificate's DER encoding.
std::string cert_fingerprint(X509* cert);

}  // namespace kb
