#include "generator/pki.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <optional>
#include <set>

#include "base/error.h"
#include "base/hash.h"

namespace kb {

void PkeyFree::operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
void X509Free::operator()(X509* p) const { X509_free(p); }

namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using Asn1IntPtr = std::unique_ptr<ASN1_INTEGER, Deleter<ASN1_INTEGER, ASN1_INTEGER_free>>;
using OctetPtr = std::unique_ptr<ASN1_OCTET_STRING, Deleter<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>>;
using BitStringPtr = std::unique_ptr<ASN1_BIT_STRING, Deleter<ASN1_BIT_STRING, ASN1_BIT_STRING_free>>;
using BasicConstraintsPtr = std::unique_ptr<BASIC_CONSTRAINTS, Deleter<BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free>>;
using EkuPtr = std::unique_ptr<EXTENDED_KEY_USAGE, Deleter<EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES, GENERAL_NAMES_free>>;
using AkidPtr = std::unique_ptr<AUTHORITY_KEYID, Deleter<AUTHORITY_KEYID, AUTHORITY_KEYID_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, Deleter<X509_NAME, X509_NAME_free>>;

// The first queued OpenSSL reason, for messages. Reasons never contain key material.
std::string openssl_reason() {
  unsigned long code = ERR_peek_last_error();
  const char* reason = code ? ERR_reason_error_string(code) : nullptr;
  ERR_clear_error();
  return reason ? reason : "unknown OpenSSL error";
}

[[noreturn]] void fail(const std::string& what) { throw Error(what + ": " + openssl_reason()); }

std::string bio_string(BIO* bio) {
  char* data = nullptr;
  // BIO_get_mem_data is a macro with a C cast; call the function it expands to.
  long n = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &data);
  if (n <= 0 || !data) return {};
  return std::string(data, static_cast<size_t>(n));
}

BioPtr mem_bio() {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) fail("cannot allocate a memory BIO");
  return bio;
}

// Refuses a passphrase prompt: OpenSSL's default callback would read the terminal.
int no_passphrase(char*, int, int, void*) { return -1; }

// Fast path for our own PKCS#8 PEM: decoding with the key type known skips OpenSSL 3's trial
// of every decoder (3x faster). Rewinds `bio` and returns null for anything else.
PkeyPtr read_pkcs8(BIO* bio) {
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* der = nullptr;
  long len = 0;
  PkeyPtr key;
  if (PEM_read_bio(bio, &name, &header, &der, &len) == 1 && std::string(name) == PEM_STRING_PKCS8INF) {
    const unsigned char* p = der;
    if (PKCS8_PRIV_KEY_INFO* info = d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, len)) {
      const ASN1_OBJECT* alg = nullptr;
      if (PKCS8_pkey_get0(&alg, nullptr, nullptr, nullptr, info) == 1) {
        int type = OBJ_obj2nid(alg);
        if (type == EVP_PKEY_EC || type == EVP_PKEY_RSA || type == EVP_PKEY_ED25519) {
          p = der;
          key.reset(d2i_PrivateKey(type, nullptr, &p, len));
        }
      }
      PKCS8_PRIV_KEY_INFO_free(info);
    }
  }
  if (der) OPENSSL_cleanse(der, static_cast<size_t>(len));
  OPENSSL_free(name);
  OPENSSL_free(header);
  OPENSSL_free(der);
  ERR_clear_error();
  if (!key) BIO_ctrl(bio, BIO_CTRL_RESET, 0, nullptr);  // BIO_reset is a macro with a C cast
  return key;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Canonical text of an IPv4/IPv6 address, or empty when it is not one.
std::string canonical_ip(const std::string& text) {
  unsigned char buf[16];
  char out[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) return inet_ntop(AF_INET, buf, out, sizeof out);
  if (inet_pton(AF_INET6, text.c_str(), buf) == 1) return inet_ntop(AF_INET6, buf, out, sizeof out);
  return {};
}

std::string ip_from_octets(const unsigned char* data, int len) {
  char out[INET6_ADDRSTRLEN];
  if (len == 4) return inet_ntop(AF_INET, data, out, sizeof out);
  if (len == 16) return inet_ntop(AF_INET6, data, out, sizeof out);
  return "<" + std::to_string(len) + "-byte address>";
}

std::string asn1_text(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<size_t>(ASN1_STRING_length(s)));
}

// 128 random bits: positive by construction (BN_rand is non-negative), zero re-drawn.
Asn1IntPtr random_serial() {
  BnPtr bn(BN_new());
  if (!bn) fail("cannot allocate a serial number");
  do {
    if (BN_rand(bn.get(), 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1) fail("cannot draw a random serial number");
  } while (BN_is_zero(bn.get()));
  Asn1IntPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!serial) fail("cannot encode a serial number");
  return serial;
}

void add_ext(X509* cert, int nid, void* value, bool critical, const char* what) {
  if (X509_add1_ext_i2d(cert, nid, value, critical ? 1 : 0, X509V3_ADD_REPLACE) != 1)
    fail(std::string("cannot add the ") + what + " extension");
}

void add_basic_constraints(X509* cert, bool ca) {
  BasicConstraintsPtr bc(BASIC_CONSTRAINTS_new());
  if (!bc) fail("cannot allocate basicConstraints");
  bc->ca = ca ? 0xFF : 0;
  add_ext(cert, NID_basic_constraints, bc.get(), true, "basicConstraints");
}

// Bits of the keyUsage BIT STRING (RFC 5280 4.2.1.3).
constexpr int kDigitalSignature = 0, kKeyEncipherment = 2, kKeyCertSign = 5, kCrlSign = 6;

void add_key_usage(X509* cert, std::initializer_list<int> bits) {
  BitStringPtr ku(ASN1_BIT_STRING_new());
  if (!ku) fail("cannot allocate keyUsage");
  for (int bit : bits)
    if (ASN1_BIT_STRING_set_bit(ku.get(), bit, 1) != 1) fail("cannot set keyUsage");
  add_ext(cert, NID_key_usage, ku.get(), true, "keyUsage");
}

// RFC 5280 method 1: SHA-1 of the subjectPublicKey BIT STRING.
OctetPtr key_id_of(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_pubkey_digest(cert, EVP_sha1(), md, &len) != 1) fail("cannot compute the subject key identifier");
  OctetPtr id(ASN1_OCTET_STRING_new());
  if (!id || ASN1_OCTET_STRING_set(id.get(), md, static_cast<int>(len)) != 1) fail("cannot allocate a key identifier");
  return id;
}

bool is_p256(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char group[64] = {};
  size_t len = 0;
  bool ok = EVP_PKEY_get_group_name(key, group, sizeof group, &len) == 1 && std::string(group, len) == "prime256v1";
  ERR_clear_error();
  return ok;
}

// X509_set_pubkey goes through OpenSSL 3's encoder machinery (~0.5 ms a call, the largest cost of
// an ECDSA leaf); for P-256 keys the SubjectPublicKeyInfo is built from the encoded point instead.
// The cert's cached EVP_PKEY stays empty on that path (filling it means decoding, as costly), so
// X509_get0_pubkey() returns null on such a cert until it is parsed back from PEM.
void set_public_key(X509* cert, EVP_PKEY* key) {
  if (is_p256(key)) {
    unsigned char* point = nullptr;
    size_t len = EVP_PKEY_get1_encoded_public_key(key, &point);
    if (len > 0 && X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(cert), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                                          V_ASN1_OBJECT, OBJ_nid2obj(NID_X9_62_prime256v1), point,
                                          static_cast<int>(len)) == 1)
      return;  // the cert owns `point` now
    OPENSSL_free(point);
    ERR_clear_error();
  }
  if (X509_set_pubkey(cert, key) != 1) fail("cannot set the public key");
}

X509Ptr new_cert(EVP_PKEY* subject_key, int validity_days, std::time_t now) {
  X509Ptr cert(X509_new());
  if (!cert) fail("cannot allocate a certificate");
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1) fail("cannot set the certificate version");
  if (X509_set_serialNumber(cert.get(), random_serial().get()) != 1) fail("cannot set the serial number");
  // Five minutes back so that a node whose clock is slightly behind accepts the cert at once.
  if (!X509_time_adj(X509_getm_notBefore(cert.get()), -5 * 60, &now)) fail("cannot set notBefore");
  if (!X509_time_adj_ex(X509_getm_notAfter(cert.get()), validity_days, 0, &now)) fail("cannot set notAfter");
  set_public_key(cert.get(), subject_key);
  return cert;
}

void add_name_entry(X509_NAME* name, int nid, const std::string& value) {
  if (X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value.data()),
                                 static_cast<int>(value.size()), -1, 0) != 1)
    fail("cannot set subject attribute '" + value + "'");
}

// The message digest every signature uses: SHA-256 (Ed25519 would need none, but CAs never are).
void sign(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, EVP_sha256()) <= 0) fail("cannot sign the certificate");
}

std::set<std::string> ordered(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

// "+a -b" for the difference between two sets, each side prefixed.
std::string set_diff(const std::set<std::string>& want, const std::set<std::string>& have, const std::string& prefix) {
  std::string out;
  for (const auto& w : want)
    if (!have.count(w)) out += (out.empty() ? "+" : " +") + prefix + w;
  for (const auto& h : have)
    if (!want.count(h)) out += (out.empty() ? "-" : " -") + prefix + h;
  return out;
}

std::optional<KeyType> key_type_or_none(EVP_PKEY* key) {
  try {
    return key_type_of(key);
  } catch (const Error&) {
    return std::nullopt;
  }
}

// Whole days (rounded down) from `now` until `t`; negative when past.
int days_until(const ASN1_TIME* t, std::time_t now) {
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> from(ASN1_TIME_set(nullptr, now), ASN1_TIME_free);
  if (!from) fail("cannot represent the current time");
  int days = 0, seconds = 0;
  if (ASN1_TIME_diff(&days, &seconds, from.get(), t) != 1) return -1;  // unreadable: treat as expired
  if (seconds < 0 && days <= 0) days -= 1;
  return days;
}

std::string name_text(const X509_NAME* name) {
  BioPtr bio = mem_bio();
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
  return bio_string(bio.get());
}

}  // namespace

PkeyPtr generate_key(KeyType type) {
  EVP_PKEY* key = nullptr;
  switch (type) {
    case KeyType::EcdsaP256: key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"); break;
    case KeyType::Rsa2048: key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}); break;
    case KeyType::Rsa3072: key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{3072}); break;
    case KeyType::Rsa4096: key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{4096}); break;
  }
  if (!key) fail(std::string("cannot generate a ") + to_string(type) + " key");
  return PkeyPtr(key);
}

PkeyPtr generate_ed25519_key() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (!key) fail("cannot generate an Ed25519 key");
  return PkeyPtr(key);
}

std::string private_key_pem(EVP_PKEY* key) {
  BioPtr bio = mem_bio();
  // PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY") in OpenSSL 3.
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    fail("cannot encode a private key");
  return bio_string(bio.get());
}

std::string public_key_pem(EVP_PKEY* key) {
  BioPtr bio = mem_bio();
  if (PEM_write_bio_PUBKEY(bio.get(), key) != 1) fail("cannot encode a public key");
  return bio_string(bio.get());
}

std::string cert_pem(X509* cert) {
  BioPtr bio = mem_bio();
  if (PEM_write_bio_X509(bio.get(), cert) != 1) fail("cannot encode a certificate");
  return bio_string(bio.get());
}

PkeyPtr parse_private_key(const std::string& pem, const std::string& what) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) fail(what + ": cannot allocate a memory BIO");
  PkeyPtr key = read_pkcs8(bio.get());
  if (!key) key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) {
    ERR_clear_error();  // the reason may be a decoder detail; the message below is enough
    throw Error(what + ": not a valid unencrypted PEM private key");
  }
  return key;
}

X509Ptr parse_cert(const std::string& pem, const std::string& what) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) fail(what + ": cannot allocate a memory BIO");
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr));
  if (!cert) {
    ERR_clear_error();
    throw Error(what + ": not a valid PEM certificate");
  }
  return cert;
}

PkeyPtr parse_public_key(const std::string& pem, const std::string& what) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) fail(what + ": cannot allocate a memory BIO");
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) {
    ERR_clear_error();
    throw Error(what + ": not a valid PEM public key");
  }
  return key;
}

KeyType key_type_of(EVP_PKEY* key) {
  int id = EVP_PKEY_get_base_id(key);
  if (id == EVP_PKEY_EC) {
    char group[64] = {};
    size_t len = 0;
    if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) == 1) {
      std::string g(group, len);
      if (g == "prime256v1" || g == "P-256") return KeyType::EcdsaP256;
      throw Error("unsupported EC curve " + g + " (kbundle makes P-256 keys)");
    }
    ERR_clear_error();
    throw Error("unsupported EC key without a named curve");
  }
  if (id == EVP_PKEY_RSA) {
    switch (EVP_PKEY_get_bits(key)) {
      case 2048: return KeyType::Rsa2048;
      case 3072: return KeyType::Rsa3072;
      case 4096: return KeyType::Rsa4096;
      default: throw Error("unsupported RSA key size " + std::to_string(EVP_PKEY_get_bits(key)));
    }
  }
  const char* name = OBJ_nid2sn(id);
  throw Error(std::string("unsupported key type ") + (name ? name : "unknown"));
}

bool key_matches_cert(EVP_PKEY* key, X509* cert) {
  if (EVP_PKEY* pub = X509_get0_pubkey(cert)) {
    bool ok = EVP_PKEY_eq(key, pub) == 1;
    ERR_clear_error();
    return ok;
  }
  ERR_clear_error();
  // A P-256 leaf fresh from issue_cert has no decoded key (see set_public_key): compare the
  // algorithm, the curve and the encoded point instead.
  if (!is_p256(key)) return false;
  const ASN1_OBJECT* alg = nullptr;
  const unsigned char* bits = nullptr;
  int bits_len = 0;
  X509_ALGOR* algor = nullptr;
  if (X509_PUBKEY_get0_param(nullptr, &bits, &bits_len, &algor, X509_get_X509_PUBKEY(cert)) != 1 || !algor) return false;
  int param_type = 0;
  const void* param = nullptr;
  X509_ALGOR_get0(&alg, &param_type, &param, algor);
  if (OBJ_obj2nid(alg) != NID_X9_62_id_ecPublicKey || param_type != V_ASN1_OBJECT ||
      OBJ_obj2nid(static_cast<const ASN1_OBJECT*>(param)) != NID_X9_62_prime256v1)
    return false;
  unsigned char* point = nullptr;
  size_t len = EVP_PKEY_get1_encoded_public_key(key, &point);
  bool ok = len > 0 && len == static_cast<size_t>(bits_len) && std::equal(point, point + len, bits);
  OPENSSL_free(point);
  ERR_clear_error();
  return ok;
}

CertificateAuthority make_ca(const std::string& name, const std::string& common_name, KeyType type, int validity_days,
                             std::time_t now) {
  CertificateAuthority ca;
  ca.name = name;
  ca.key = generate_key(type);
  X509Ptr cert = new_cert(ca.key.get(), validity_days, now);

  X509NamePtr subject(X509_NAME_new());
  if (!subject) fail("cannot allocate a name");
  add_name_entry(subject.get(), NID_commonName, common_name);
  if (X509_set_subject_name(cert.get(), subject.get()) != 1 || X509_set_issuer_name(cert.get(), subject.get()) != 1)
    fail("cannot set the CA name");

  add_basic_constraints(cert.get(), true);
  add_key_usage(cert.get(), {kDigitalSignature, kKeyCertSign, kCrlSign});
  add_ext(cert.get(), NID_subject_key_identifier, key_id_of(cert.get()).get(), false, "subjectKeyIdentifier");
  sign(cert.get(), ca.key.get());

  // Parsed back so that the in-memory CA has its public key decoded (see set_public_key).
  ca.cert_pem = cert_pem(cert.get());
  ca.cert = parse_cert(ca.cert_pem, "new CA " + name);
  ca.key_pem = private_key_pem(ca.key.get());
  return ca;
}

X509Ptr issue_cert(const CertificateAuthority& ca, EVP_PKEY* subject_key, const CertRequest& request, int validity_days,
                   std::time_t now) {
  const std::string what = "certificate " + request.common_name;
  X509Ptr cert = new_cert(subject_key, validity_days, now);

  X509NamePtr subject(X509_NAME_new());
  if (!subject) fail(what + ": cannot allocate a name");
  for (const auto& o : request.organizations) add_name_entry(subject.get(), NID_organizationName, o);
  add_name_entry(subject.get(), NID_commonName, request.common_name);
  if (X509_set_subject_name(cert.get(), subject.get()) != 1) fail(what + ": cannot set the subject");
  // Read-only use of the CA cert: safe to share between issuing threads.
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(ca.cert.get())) != 1) fail(what + ": cannot set the issuer");

  add_basic_constraints(cert.get(), false);
  if (EVP_PKEY_get_base_id(subject_key) == EVP_PKEY_RSA)
    add_key_usage(cert.get(), {kDigitalSignature, kKeyEncipherment});
  else
    add_key_usage(cert.get(), {kDigitalSignature});

  if (request.server_auth || request.client_auth) {
    EkuPtr eku(sk_ASN1_OBJECT_new_null());
    if (!eku) fail(what + ": cannot allocate extendedKeyUsage");
    if (request.server_auth) sk_ASN1_OBJECT_push(eku.get(), OBJ_nid2obj(NID_server_auth));
    if (request.client_auth) sk_ASN1_OBJECT_push(eku.get(), OBJ_nid2obj(NID_client_auth));
    add_ext(cert.get(), NID_ext_key_usage, eku.get(), false, "extendedKeyUsage");
  }

  add_ext(cert.get(), NID_subject_key_identifier, key_id_of(cert.get()).get(), false, "subjectKeyIdentifier");
  // The CA's own SKI when it has one (ours always do), else the hash of its key.
  AkidPtr akid(AUTHORITY_KEYID_new());
  if (!akid) fail(what + ": cannot allocate authorityKeyIdentifier");
  const ASN1_OCTET_STRING* ca_ski = X509_get0_subject_key_id(ca.cert.get());
  akid->keyid = ca_ski ? ASN1_OCTET_STRING_dup(ca_ski) : key_id_of(ca.cert.get()).release();
  if (!akid->keyid) fail(what + ": cannot copy the CA key identifier");
  add_ext(cert.get(), NID_authority_key_identifier, akid.get(), false, "authorityKeyIdentifier");

  if (!request.dns_names.empty() || !request.ip_addresses.empty()) {
    GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
    if (!names) fail(what + ": cannot allocate subjectAltName");
    std::set<std::string> seen;
    for (const auto& dns : request.dns_names) {
      if (dns.empty()) throw Error(what + ": empty DNS name in subjectAltName");
      if (!seen.insert("DNS:" + lower(dns)).second) continue;
      GENERAL_NAME* gn = GENERAL_NAME_new();
      ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
      if (!gn || !ia5 || ASN1_STRING_set(ia5, dns.data(), static_cast<int>(dns.size())) != 1) {
        GENERAL_NAME_free(gn);
        ASN1_IA5STRING_free(ia5);
        fail(what + ": cannot encode DNS name " + dns);
      }
      GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
      if (!sk_GENERAL_NAME_push(names.get(), gn)) {
        GENERAL_NAME_free(gn);
        fail(what + ": cannot add DNS name " + dns);
      }
    }
    for (const auto& ip : request.ip_addresses) {
      std::string canon = canonical_ip(ip);
      if (canon.empty()) throw Error(what + ": '" + ip + "' is not an IP address");
      if (!seen.insert("IP:" + canon).second) continue;
      ASN1_OCTET_STRING* octets = a2i_IPADDRESS(canon.c_str());
      GENERAL_NAME* gn = GENERAL_NAME_new();
      if (!gn || !octets) {
        GENERAL_NAME_free(gn);
        ASN1_OCTET_STRING_free(octets);
        fail(what + ": cannot encode IP address " + ip);
      }
      GENERAL_NAME_set0_value(gn, GEN_IPADD, octets);
      if (!sk_GENERAL_NAME_push(names.get(), gn)) {
        GENERAL_NAME_free(gn);
        fail(what + ": cannot add IP address " + ip);
      }
    }
    add_ext(cert.get(), NID_subject_alt_name, names.get(), false, "subjectAltName");
  }

  sign(cert.get(), ca.key.get());
  return cert;
}

std::string why_reissue(X509* cert, EVP_PKEY* key, const CertificateAuthority& ca, const CertRequest& request,
                        KeyType key_type, int renew_before_days, std::time_t now) {
  std::vector<std::string> reasons;

  auto have_type = key_type_or_none(key);
  if (!have_type)
    reasons.push_back(std::string("key type changed: unsupported -> ") + to_string(key_type));
  else if (*have_type != key_type)
    reasons.push_back(std::string("key type changed: ") + to_string(*have_type) + " -> " + to_string(key_type));
  if (!key_matches_cert(key, cert)) reasons.push_back("key does not match certificate");

  if (X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(ca.cert.get())) != 0) {
    reasons.push_back("issuer changed: " + name_text(X509_get_issuer_name(cert)) + " -> " +
                      name_text(X509_get_subject_name(ca.cert.get())));
  } else {
    EVP_PKEY* ca_pub = X509_get0_pubkey(ca.cert.get());
    if (!ca_pub || X509_verify(cert, ca_pub) != 1) reasons.push_back("not signed by the current " + ca.name);
  }
  ERR_clear_error();

  // Subject: CN and the set of O.
  const X509_NAME* subject = X509_get_subject_name(cert);
  std::string cn;
  std::set<std::string> orgs;
  for (int i = 0; i < X509_NAME_entry_count(subject); ++i) {
    const X509_NAME_ENTRY* e = X509_NAME_get_entry(subject, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
    if (nid == NID_commonName) cn = asn1_text(X509_NAME_ENTRY_get_data(e));
    if (nid == NID_organizationName) orgs.insert(asn1_text(X509_NAME_ENTRY_get_data(e)));
  }
  if (cn != request.common_name) reasons.push_back("subject CN changed: " + cn + " -> " + request.common_name);
  if (auto d = set_diff(ordered(request.organizations), orgs, "O:"); !d.empty())
    reasons.push_back("organizations changed: " + d);

  // Extended key usage.
  std::set<std::string> want_eku, have_eku;
  if (request.server_auth) want_eku.insert("serverAuth");
  if (request.client_auth) want_eku.insert("clientAuth");
  if (EkuPtr eku{static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(cert, NID_ext_key_usage, nullptr, nullptr))}) {
    for (int i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i) {
      const ASN1_OBJECT* obj = sk_ASN1_OBJECT_value(eku.get(), i);
      const char* sn = OBJ_nid2sn(OBJ_obj2nid(obj));
      have_eku.insert(sn && OBJ_obj2nid(obj) != NID_undef ? sn : "unknown");
    }
  }
  if (auto d = set_diff(want_eku, have_eku, ""); !d.empty()) reasons.push_back("extended key usage changed: " + d);

  // SANs, as sets (order and duplicates do not matter; DNS names are case-insensitive).
  std::set<std::string> want_dns, want_ip, have_dns, have_ip;
  for (const auto& d : request.dns_names) want_dns.insert(lower(d));
  for (const auto& ip : request.ip_addresses) {
    std::string canon = canonical_ip(ip);
    want_ip.insert(canon.empty() ? ip : canon);
  }
  if (GeneralNamesPtr names{static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr))}) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
      int type = 0;
      const void* value = GENERAL_NAME_get0_value(gn, &type);
      const auto* s = static_cast<const ASN1_STRING*>(value);
      if (type == GEN_DNS) have_dns.insert(lower(asn1_text(s)));
      if (type == GEN_IPADD) have_ip.insert(ip_from_octets(ASN1_STRING_get0_data(s), ASN1_STRING_length(s)));
    }
  }
  ERR_clear_error();
  std::string san = set_diff(want_dns, have_dns, "DNS:");
  if (auto d = set_diff(want_ip, have_ip, "IP:"); !d.empty()) san += (san.empty() ? "" : " ") + d;
  if (!san.empty()) reasons.push_back("SAN set changed: " + san);

  int days = days_until(X509_get0_notAfter(cert), now);
  if (days < 0)
    reasons.push_back("expired " + std::to_string(-days) + " days ago");
  else if (days <= renew_before_days)
    reasons.push_back("expires in " + std::to_string(days) + " days (renewBeforeDays " + std::to_string(renew_before_days) +
                      ")");

  std::string out;
  for (const auto& r : reasons) out += (out.empty() ? "" : "; ") + r;
  return out;
}

std::string cert_fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1) fail("cannot hash a certificate");
  return to_hex(md, len);
}

CertRequest apiserver_kubelet_client_request() {
  CertRequest r;
  r.common_name = "kube-apiserver-kubelet-client";
  r.client_auth = true;
  return r;
}

CertRequest bootstrap_client_request() {
  CertRequest r;
  r.common_name = "kbundle:bootstrap";
  r.organizations = {"system:masters"};
  r.client_auth = true;
  return r;
}

}  // namespace kb
