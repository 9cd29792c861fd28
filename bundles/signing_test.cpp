#include <catch2/catch.hpp>

#include <memory>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "bundles/bundle_error.h"
#include "bundles/bundle_test_util.h"
#include "base/hash.h"
#include "bundles/signing.h"

using namespace kb;
using namespace kb::test;

namespace {

std::string unhex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i < h.size(); i += 2) out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

std::string pem_of(EVP_PKEY* k, bool priv) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (priv) PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr);
  else PEM_write_bio_PUBKEY(bio, k);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string s(data, static_cast<size_t>(n));
  BIO_free(bio);
  return s;
}

}  // namespace

TEST_CASE("Ed25519 known answer (RFC 8032 test 2) and fingerprint", "[signing]") {
  std::string seed = unhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
  std::string pub = unhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
  EVP_PKEY* k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr,
                                             reinterpret_cast<const unsigned char*>(seed.data()), seed.size());
  REQUIRE(k);
  std::string priv_pem = pem_of(k, true), pub_pem = pem_of(k, false);
  EVP_PKEY_free(k);
  SigningKey sk(priv_pem);
  CHECK(sk.sign(unhex("72")) ==
        unhex("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
              "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"));
  CHECK(sk.fingerprint() == sha256_hex(pub));
  VerifyKey vk(pub_pem);
  CHECK(vk.fingerprint() == sha256_hex(pub));
  CHECK(sk.public_pem() == pub_pem);
}

TEST_CASE("sign and verify over the exact bytes", "[signing]") {
  SigningKey sk(test_key().private_pem);
  VerifyKey vk(test_key().public_pem);
  VerifyKey other(other_key().public_pem);
  std::string msg = "{\"a\":1}";
  std::string sig = sk.sign(msg);
  CHECK(sig.size() == kSignatureSize);
  CHECK(vk.verify(msg, sig));
  CHECK_FALSE(other.verify(msg, sig));
  CHECK_FALSE(vk.verify(msg + " ", sig));
  CHECK_FALSE(vk.verify(msg, sig.substr(0, 63)));
  CHECK_FALSE(vk.verify(msg, sig + "x"));
  for (size_t bit = 0; bit < 512; bit += 37) {
    std::string bad = sig;
    bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1 << (bit % 8)));
    CHECK_FALSE(vk.verify(msg, bad));
  }
  CHECK(sk.sign(msg) == sig);  // Ed25519 is deterministic
}

TEST_CASE("keys that are not Ed25519 PEMs are refused", "[signing]") {
  CHECK(code_of([] { SigningKey k("not a pem"); }) == BundleErrc::BadKey);
  CHECK(code_of([] { VerifyKey k(""); }) == BundleErrc::BadKey);
  CHECK(code_of([] { VerifyKey k(test_key().private_pem); }) == BundleErrc::BadKey);
  CHECK(code_of([] { SigningKey k(test_key().public_pem); }) == BundleErrc::BadKey);
  EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  REQUIRE(ec);
  std::string ec_priv = pem_of(ec, true), ec_pub = pem_of(ec, false);
  EVP_PKEY_free(ec);
  CHECK(code_of([&] { SigningKey k(ec_priv); }) == BundleErrc::BadKey);
  CHECK(code_of([&] { VerifyKey k(ec_pub); }) == BundleErrc::BadKey);
}
