#pragma once
// Ed25519 signing of manifests (OpenSSL EVP_DigestSign with no digest, i.e.
// pure Ed25519 over the exact bytes). Keys come in as PEM strings: PKCS#8 for
// the private key, SubjectPublicKeyInfo for the public key. Any other key type
// is refused with BundleError(BadKey).

#include <string>
#include <string_view>

typedef struct evp_pkey_st EVP_PKEY;

namespace kb {

inline constexpr size_t kSignatureSize = 64;

struct KeyPairPem {
  std::string private_pem;  // PKCS#8, "-----BEGIN PRIVATE KEY-----"
  std::string public_pem;   // SPKI, "-----BEGIN PUBLIC KEY-----"
};

// A fresh Ed25519 key pair from the OpenSSL CSPRNG.
KeyPairPem generate_signing_key();

class SigningKey {
 public:
  explicit SigningKey(std::string_view private_pem);
  ~SigningKey();
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;

  std::string sign(std::string_view message) const;  // 64 bytes
  std::string public_pem() const;
  std::string fingerprint() const;  // see key_fingerprint()

 private:
  EVP_PKEY* key_;
};

class VerifyKey {
 public:
  explicit VerifyKey(std::string_view public_pem);
  ~VerifyKey();
  VerifyKey(const VerifyKey&) = delete;
  VerifyKey& operator=(const VerifyKey&) = delete;

  // True only for a 64-byte signature made by this key over exactly `message`.
  bool verify(std::string_view message, std::string_view signature) const;
  std::string fingerprint() const;

 private:
  EVP_PKEY* key_;
};

// sha256 of the raw 32-byte Ed25519 public key, 64 lowercase hex digits.
std::string key_fingerprint(EVP_PKEY* key);

}  // namespace kb
