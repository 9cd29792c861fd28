#include "generator/pki.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <ctime>
#include <set>
#include <thread>

#include "base/error.h"

using namespace kb;

namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};

// The tests' clock is the real one, so that validity can be compared with the wall clock below.
const std::time_t kNow = std::time(nullptr);

const CertificateAuthority& ec_ca() {
  static const CertificateAuthority ca = make_ca("kubernetes-ca", "kubernetes-ca", KeyType::EcdsaP256, 3650, kNow);
  return ca;
}

const CertificateAuthority& other_ca() {
  static const CertificateAuthority ca = make_ca("etcd-ca", "etcd-ca", KeyType::EcdsaP256, 3650, kNow);
  return ca;
}

CertRequest server_request() {
  CertRequest r;
  r.common_name = "kube-apiserver";
  r.organizations = {"kubernetes", "ops"};
  r.server_auth = true;
  r.client_auth = true;
  r.dns_names = {"kubernetes", "kubernetes.default", "control-0"};
  r.ip_addresses = {"10.0.1.10", "127.0.0.1", "10.32.0.1"};
  return r;
}

bool critical(X509* cert, int nid) {
  int idx = X509_get_ext_by_NID(cert, nid, -1);
  REQUIRE(idx >= 0);
  return X509_EXTENSION_get_critical(X509_get_ext(cert, idx)) == 1;
}

bool has_ext(X509* cert, int nid) { return X509_get_ext_by_NID(cert, nid, -1) >= 0; }

std::vector<std::string> name_values(X509_NAME* name, int nid) {
  std::vector<std::string> out;
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
    if (OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)) != nid) continue;
    const ASN1_STRING* s = X509_NAME_ENTRY_get_data(e);
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<size_t>(ASN1_STRING_length(s)));
  }
  return out;
}

std::set<std::string> sans(X509* cert) {
  std::set<std::string> out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    int type = 0;
    const auto* s = static_cast<const ASN1_STRING*>(GENERAL_NAME_get0_value(gn, &type));
    const unsigned char* d = ASN1_STRING_get0_data(s);
    if (type == GEN_DNS) out.insert("DNS:" + std::string(reinterpret_cast<const char*>(d), static_cast<size_t>(ASN1_STRING_length(s))));
    if (type == GEN_IPADD && ASN1_STRING_length(s) == 4)
      out.insert("IP:" + std::to_string(d[0]) + "." + std::to_string(d[1]) + "." + std::to_string(d[2]) + "." + std::to_string(d[3]));
    if (type == GEN_IPADD && ASN1_STRING_length(s) == 16) out.insert("IP:v6");
  }
  GENERAL_NAMES_free(names);
  return out;
}

// Seconds from now to `t` (negative when past).
long seconds_until(const ASN1_TIME* t) {
  int days = 0, secs = 0;
  REQUIRE(ASN1_TIME_diff(&days, &secs, nullptr, t) == 1);
  return static_cast<long>(days) * 86400 + secs;
}

void check_serial(X509* cert) {
  std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  REQUIRE(bn);
  CHECK_FALSE(BN_is_negative(bn.get()));
  CHECK_FALSE(BN_is_zero(bn.get()));
  CHECK(BN_num_bits(bn.get()) <= 128);
  CHECK(BN_num_bits(bn.get()) > 64);  // 2^-64 chance of a false failure
}

bool verify_chain(X509* ca, X509* leaf, int purpose = X509_PURPOSE_ANY) {
  std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>> store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca);
  std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>> ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr);
  if (purpose != X509_PURPOSE_ANY) X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  return X509_verify_cert(ctx.get()) == 1;
}

}  // namespace

TEST_CASE("generate_key makes every key type and PEM round-trips it", "[pki]") {
  for (KeyType type : {KeyType::EcdsaP256, KeyType::Rsa2048, KeyType::Rsa3072, KeyType::Rsa4096}) {
    DYNAMIC_SECTION(to_string(type)) {
      PkeyPtr key = generate_key(type);
      REQUIRE(key);
      CHECK(key_type_of(key.get()) == type);
      std::string pem = private_key_pem(key.get());
      CHECK(pem.rfind("-----BEGIN PRIVATE KEY-----", 0) == 0);  // PKCS#8
      PkeyPtr back = parse_private_key(pem, "test key");
      CHECK(EVP_PKEY_eq(key.get(), back.get()) == 1);
      std::string pub = public_key_pem(key.get());
      CHECK(pub.rfind("-----BEGIN PUBLIC KEY-----", 0) == 0);
      CHECK(EVP_PKEY_eq(key.get(), parse_public_key(pub, "test pub").get()) == 1);
      CHECK(pub.find("PRIVATE") == std::string::npos);
    }
  }
}

TEST_CASE("Ed25519 keys are made but are not a certificate key type", "[pki]") {
  PkeyPtr key = generate_ed25519_key();
  CHECK(EVP_PKEY_get_base_id(key.get()) == EVP_PKEY_ED25519);
  CHECK_THROWS_AS(key_type_of(key.get()), Error);
  PkeyPtr p384(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  CHECK_THROWS_WITH(key_type_of(p384.get()), Catch::Contains("secp384r1"));
}

TEST_CASE("parsers reject bad input with the name of what was parsed", "[pki]") {
  CHECK_THROWS_WITH(parse_private_key("garbage", "ca/x.key"), Catch::StartsWith("ca/x.key: "));
  CHECK_THROWS_WITH(parse_cert("", "ca/x.crt"), Catch::StartsWith("ca/x.crt: "));
  CHECK_THROWS_WITH(parse_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "k.pub"),
                    Catch::StartsWith("k.pub: "));

  // An encrypted key must fail at once, not prompt on the terminal; the message holds no key text.
  PkeyPtr key = generate_key(KeyType::EcdsaP256);
  std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>> bio(BIO_new(BIO_s_mem()));
  static char pass[] = "secret";
  REQUIRE(PEM_write_bio_PKCS8PrivateKey(bio.get(), key.get(), EVP_aes_256_cbc(), pass, 6, nullptr, nullptr) == 1);
  char* data = nullptr;
  long n = BIO_ctrl(bio.get(), BIO_CTRL_INFO, 0, &data);
  std::string encrypted(data, static_cast<size_t>(n));
  try {
    parse_private_key(encrypted, "enc.key");
    FAIL("an encrypted key was accepted");
  } catch (const Error& e) {
    std::string msg = e.what();
    CHECK(msg.find("enc.key") == 0);
    CHECK(msg.find("ENCRYPTED") == std::string::npos);
    CHECK(msg.find(encrypted.substr(40, 20)) == std::string::npos);
  }
}

TEST_CASE("make_ca sets the CA extensions, subject, serial and validity", "[pki]") {
  for (KeyType type : {KeyType::EcdsaP256, KeyType::Rsa2048}) {
    DYNAMIC_SECTION(to_string(type)) {
      CertificateAuthority ca = make_ca("front-proxy-ca", "front-proxy-ca", type, 3650, kNow);
      X509* c = ca.cert.get();
      CHECK(ca.name == "front-proxy-ca");
      CHECK(key_matches_cert(ca.key.get(), c));
      CHECK(key_type_of(ca.key.get()) == type);
      CHECK(X509_get_version(c) == X509_VERSION_3);

      CHECK(X509_NAME_entry_count(X509_get_subject_name(c)) == 1);
      CHECK(name_values(X509_get_subject_name(c), NID_commonName) == std::vector<std::string>{"front-proxy-ca"});
      CHECK(X509_NAME_cmp(X509_get_subject_name(c), X509_get_issuer_name(c)) == 0);

      CHECK(critical(c, NID_basic_constraints));
      CHECK(X509_check_ca(c) >= 1);
      CHECK(critical(c, NID_key_usage));
      CHECK(X509_get_key_usage(c) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN | KU_DIGITAL_SIGNATURE));
      CHECK(X509_get0_subject_key_id(c) != nullptr);
      CHECK_FALSE(has_ext(c, NID_ext_key_usage));
      CHECK_FALSE(has_ext(c, NID_subject_alt_name));
      check_serial(c);

      CHECK(std::labs(seconds_until(X509_get0_notBefore(c)) + 300) < 60);
      CHECK(std::labs(seconds_until(X509_get0_notAfter(c)) - 3650L * 86400) < 60);
      CHECK(X509_verify(c, X509_get0_pubkey(c)) == 1);
      CHECK(X509_get_signature_nid(c) == (type == KeyType::EcdsaP256 ? NID_ecdsa_with_SHA256 : NID_sha256WithRSAEncryption));

      // The stored PEMs are the same objects.
      X509Ptr back = parse_cert(ca.cert_pem, "ca");
      CHECK(cert_fingerprint(back.get()) == cert_fingerprint(c));
      CHECK(key_matches_cert(parse_private_key(ca.key_pem, "ca key").get(), back.get()));
    }
  }
}

TEST_CASE("issue_cert sets the leaf extensions, subject and SANs", "[pki]") {
  const auto& ca = ec_ca();
  PkeyPtr key = generate_key(KeyType::EcdsaP256);
  X509Ptr cert = issue_cert(ca, key.get(), server_request(), 365, kNow);
  X509* c = cert.get();

  CHECK(name_values(X509_get_subject_name(c), NID_commonName) == std::vector<std::string>{"kube-apiserver"});
  CHECK(name_values(X509_get_subject_name(c), NID_organizationName) == std::vector<std::string>{"kubernetes", "ops"});
  CHECK(X509_NAME_cmp(X509_get_issuer_name(c), X509_get_subject_name(ca.cert.get())) == 0);
  CHECK(critical(c, NID_basic_constraints));
  CHECK(X509_check_ca(c) == 0);
  CHECK(critical(c, NID_key_usage));
  CHECK(X509_get_key_usage(c) == KU_DIGITAL_SIGNATURE);
  CHECK(X509_get_extended_key_usage(c) == (XKU_SSL_SERVER | XKU_SSL_CLIENT));
  REQUIRE(X509_get0_subject_key_id(c) != nullptr);
  REQUIRE(X509_get0_authority_key_id(c) != nullptr);
  CHECK(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(c), X509_get0_subject_key_id(ca.cert.get())) == 0);
  CHECK(ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(c), X509_get0_subject_key_id(ca.cert.get())) != 0);
  CHECK(sans(c) == std::set<std::string>{"DNS:kubernetes", "DNS:kubernetes.default", "DNS:control-0", "IP:10.0.1.10",
                                         "IP:127.0.0.1", "IP:10.32.0.1"});
  check_serial(c);
  CHECK(std::labs(seconds_until(X509_get0_notBefore(c)) + 300) < 60);
  CHECK(std::labs(seconds_until(X509_get0_notAfter(c)) - 365L * 86400) < 60);
  CHECK(key_matches_cert(key.get(), c));
  CHECK_FALSE(key_matches_cert(ca.key.get(), c));
  // The encoded SubjectPublicKeyInfo is the key's own.
  X509Ptr parsed = parse_cert(cert_pem(c), "leaf");
  REQUIRE(X509_get0_pubkey(parsed.get()) != nullptr);
  CHECK(EVP_PKEY_eq(X509_get0_pubkey(parsed.get()), key.get()) == 1);
  CHECK(key_matches_cert(key.get(), parsed.get()));
  CHECK_FALSE(key_matches_cert(ca.key.get(), parsed.get()));
  CHECK(X509_verify(parsed.get(), X509_get0_pubkey(ca.cert.get())) == 1);

  SECTION("client-only without SANs") {
    CertRequest r;
    r.common_name = "system:node:worker-0";
    r.organizations = {"system:nodes"};
    r.client_auth = true;
    X509Ptr client = issue_cert(ca, key.get(), r, 30, kNow);
    CHECK(X509_get_extended_key_usage(client.get()) == XKU_SSL_CLIENT);
    CHECK_FALSE(has_ext(client.get(), NID_subject_alt_name));
  }
  SECTION("RSA leaves add keyEncipherment") {
    PkeyPtr rsa = generate_key(KeyType::Rsa2048);
    X509Ptr rc = issue_cert(ca, rsa.get(), server_request(), 30, kNow);
    CHECK(X509_get_key_usage(rc.get()) == (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
    CHECK(verify_chain(ca.cert.get(), rc.get(), X509_PURPOSE_SSL_SERVER));
  }
  SECTION("IPv6 and duplicate SANs") {
    CertRequest r = server_request();
    r.ip_addresses = {"::1", "10.0.1.10", "10.0.1.10"};
    r.dns_names = {"a", "A", "a"};
    X509Ptr v6 = issue_cert(ca, key.get(), r, 30, kNow);
    CHECK(sans(v6.get()) == std::set<std::string>{"DNS:a", "IP:v6", "IP:10.0.1.10"});
  }
  SECTION("a bad IP address is an error naming the cert") {
    CertRequest r = server_request();
    r.ip_addresses = {"10.0.1.300"};
    CHECK_THROWS_WITH(issue_cert(ca, key.get(), r, 30, kNow), Catch::Contains("kube-apiserver") && Catch::Contains("10.0.1.300"));
  }
}

TEST_CASE("issued certs verify against their CA only", "[pki]") {
  const auto& ca = ec_ca();
  PkeyPtr key = generate_key(KeyType::EcdsaP256);
  X509Ptr cert = parse_cert(cert_pem(issue_cert(ca, key.get(), server_request(), 365, kNow).get()), "leaf");
  CHECK(verify_chain(ca.cert.get(), cert.get()));
  CHECK(verify_chain(ca.cert.get(), cert.get(), X509_PURPOSE_SSL_SERVER));
  CHECK(verify_chain(ca.cert.get(), cert.get(), X509_PURPOSE_SSL_CLIENT));
  CHECK_FALSE(verify_chain(other_ca().cert.get(), cert.get()));

  CertificateAuthority rsa_ca = make_ca("kubernetes-ca", "kubernetes-ca", KeyType::Rsa2048, 30, kNow);
  X509Ptr from_rsa = parse_cert(cert_pem(issue_cert(rsa_ca, key.get(), server_request(), 30, kNow).get()), "leaf");
  CHECK(verify_chain(rsa_ca.cert.get(), from_rsa.get(), X509_PURPOSE_SSL_SERVER));
}

TEST_CASE("serials and fingerprints differ between certs", "[pki]") {
  PkeyPtr key = generate_key(KeyType::EcdsaP256);
  std::set<std::string> serials, fingerprints;
  for (int i = 0; i < 200; ++i) {
    X509Ptr c = issue_cert(ec_ca(), key.get(), server_request(), 1, kNow);
    std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(c.get()), nullptr));
    char* hex = BN_bn2hex(bn.get());
    serials.insert(hex);
    OPENSSL_free(hex);
    std::string fp = cert_fingerprint(c.get());
    CHECK(fp.size() == 64);
    CHECK(fp.find_first_not_of("0123456789abcdef") == std::string::npos);
    fingerprints.insert(fp);
  }
  CHECK(serials.size() == 200);
  CHECK(fingerprints.size() == 200);
}

TEST_CASE("why_reissue names each kind of change", "[pki]") {
  const auto& ca = ec_ca();
  const CertRequest base = server_request();
  PkeyPtr key = generate_key(KeyType::EcdsaP256);
  X509Ptr cert = issue_cert(ca, key.get(), base, 365, kNow);
  auto why = [&](const CertRequest& r) { return why_reissue(cert.get(), key.get(), ca, r, KeyType::EcdsaP256, 30, kNow); };

  CHECK(why(base) == "");
  CertRequest shuffled = base;
  std::reverse(shuffled.dns_names.begin(), shuffled.dns_names.end());
  std::reverse(shuffled.ip_addresses.begin(), shuffled.ip_addresses.end());
  std::reverse(shuffled.organizations.begin(), shuffled.organizations.end());
  CHECK(why(shuffled) == "");

  CertRequest r = base;
  r.ip_addresses.push_back("10.0.1.13");
  CHECK(why(r) == "SAN set changed: +IP:10.0.1.13");
  r = base;
  r.dns_names.pop_back();
  CHECK(why(r) == "SAN set changed: -DNS:control-0");
  r = base;
  r.dns_names.push_back("new.example");
  r.ip_addresses.erase(r.ip_addresses.begin());
  CHECK(why(r) == "SAN set changed: +DNS:new.example -IP:10.0.1.10");
  r = base;
  r.common_name = "other";
  CHECK(why(r) == "subject CN changed: kube-apiserver -> other");
  r = base;
  r.organizations = {"kubernetes", "system:masters"};
  CHECK(why(r) == "organizations changed: +O:system:masters -O:ops");
  r = base;
  r.client_auth = false;
  CHECK(why(r) == "extended key usage changed: -clientAuth");

  CHECK(why_reissue(cert.get(), key.get(), other_ca(), base, KeyType::EcdsaP256, 30, kNow).rfind("issuer changed:", 0) == 0);
  // Same CA name, new CA key: the signature no longer verifies.
  CertificateAuthority lookalike = make_ca("kubernetes-ca", "kubernetes-ca", KeyType::EcdsaP256, 10, kNow);
  CHECK(why_reissue(cert.get(), key.get(), lookalike, base, KeyType::EcdsaP256, 30, kNow) ==
        "not signed by the current kubernetes-ca");

  CHECK(why_reissue(cert.get(), key.get(), ca, base, KeyType::Rsa2048, 30, kNow) == "key type changed: ecdsa-p256 -> rsa-2048");
  PkeyPtr other_key = generate_key(KeyType::EcdsaP256);
  CHECK(why_reissue(cert.get(), other_key.get(), ca, base, KeyType::EcdsaP256, 30, kNow) == "key does not match certificate");

  X509Ptr short_lived = issue_cert(ca, key.get(), base, 12, kNow);
  std::string exp = why_reissue(short_lived.get(), key.get(), ca, base, KeyType::EcdsaP256, 30, kNow);
  CHECK((exp == "expires in 11 days (renewBeforeDays 30)" || exp == "expires in 12 days (renewBeforeDays 30)"));
  CHECK(why_reissue(short_lived.get(), key.get(), ca, base, KeyType::EcdsaP256, 5, kNow) == "");
  X509Ptr expired = issue_cert(ca, key.get(), base, -3, kNow);
  CHECK(why_reissue(expired.get(), key.get(), ca, base, KeyType::EcdsaP256, 30, kNow).rfind("expired ", 0) == 0);

  // Several changes at once are all named; reasons never carry key material.
  r = base;
  r.common_name = "x";
  r.server_auth = false;
  std::string many = why_reissue(cert.get(), other_key.get(), other_ca(), r, KeyType::Rsa4096, 30, kNow);
  CHECK_THAT(many, Catch::Contains("key type changed") && Catch::Contains("key does not match") &&
                       Catch::Contains("issuer changed") && Catch::Contains("subject CN changed") &&
                       Catch::Contains("-serverAuth"));
  CHECK(many.find("PRIVATE KEY") == std::string::npos);
}

TEST_CASE("issuing from several threads with one CA", "[pki]") {
  const auto& ca = ec_ca();
  std::vector<std::vector<X509Ptr>> out(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < out.size(); ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        PkeyPtr key = generate_key(KeyType::EcdsaP256);
        out[t].push_back(parse_cert(cert_pem(issue_cert(ca, key.get(), server_request(), 365, kNow).get()), "leaf"));
      }
    });
  for (auto& th : threads) th.join();
  for (auto& certs : out)
    for (auto& c : certs) CHECK(verify_chain(ca.cert.get(), c.get()));
}

TEST_CASE("validity and renewal follow the clock passed in, not the wall clock", "[pki]") {
  constexpr std::time_t kDay = 86400;
  const std::time_t issued_at = 1700000000;  // 2023-11-14T22:13:20Z
  const CertificateAuthority ca = make_ca("kubernetes-ca", "kubernetes-ca", KeyType::EcdsaP256, 3650, issued_at);
  PkeyPtr key = generate_key(KeyType::EcdsaP256);
  X509Ptr cert = issue_cert(ca, key.get(), server_request(), 365, issued_at);
  CHECK(ASN1_TIME_cmp_time_t(X509_get0_notBefore(cert.get()), issued_at - 300) == 0);
  CHECK(ASN1_TIME_cmp_time_t(X509_get0_notAfter(cert.get()), issued_at + 365 * kDay) == 0);

  auto why_at = [&](std::time_t now) {
    return why_reissue(cert.get(), key.get(), ca, server_request(), KeyType::EcdsaP256, 30, now);
  };
  CHECK(why_at(issued_at) == "");
  CHECK(why_at(issued_at + 300 * kDay) == "");
  CHECK(why_at(issued_at + 355 * kDay) == "expires in 10 days (renewBeforeDays 30)");
  CHECK(why_at(issued_at + 368 * kDay) == "expired 3 days ago");
}
