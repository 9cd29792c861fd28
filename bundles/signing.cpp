#include "bundles/signing.h"

#include <memory>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "bundles/bundle_error.h"
#include "base/hash.h"

namespace kb {

namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

[[noreturn]] void bad_key(const std::string& why) {
  ERR_clear_error();
  throw BundleError(BundleErrc::BadKey, "signing key: " + why);
}

EVP_PKEY* load_pem(std::string_view pem, bool is_private) {
  if (pem.size() > (1 << 16)) bad_key("PEM too large");
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) bad_key("out of memory");
  // No passphrase callback: an encrypted key must fail, not prompt.
  static char empty[] = "";
  EVP_PKEY* key = is_private ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, empty)
                             : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, empty);
  if (!key) bad_key(is_private ? "not a PKCS#8 PEM private key" : "not a PEM public key (SubjectPublicKeyInfo)");
  if (EVP_PKEY_id(key) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(key);
    bad_key("not an Ed25519 key");
  }
  return key;
}

std::string pem_of_public(EVP_PKEY* key) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) bad_key("cannot write public key PEM");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

std::string key_fingerprint(EVP_PKEY* key) {
  unsigned char raw[32];
  size_t len = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 || len != sizeof raw) bad_key("cannot read raw public key");
  return sha256_hex(std::string_view(reinterpret_cast<const char*>(raw), len));
}

KeyPairPem generate_signing_key() {
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1) bad_key("key generation failed");
  std::unique_ptr<EVP_PKEY, PkeyFree> key(raw);
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    bad_key("cannot write private key PEM");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  KeyPairPem out;
  out.private_pem.assign(data, static_cast<size_t>(n));
  out.public_pem = pem_of_public(key.get());
  return out;
}

SigningKey::SigningKey(std::string_view private_pem) : key_(load_pem(private_pem, true)) {}
SigningKey::~SigningKey() { EVP_PKEY_free(key_); }

std::string SigningKey::sign(std::string_view message) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  std::string sig(kSignatureSize, '\0');
  size_t len = sig.size();
  // Ed25519 is one-shot: EVP_DigestSign with a NULL digest, never Init/Update/Final.
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      len != kSignatureSize)
    bad_key("signing failed");
  return sig;
}

std::string SigningKey::public_pem() const { return pem_of_public(key_); }
std::string SigningKey::fingerprint() const { return key_fingerprint(key_); }

VerifyKey::VerifyKey(std::string_view public_pem) : key_(load_pem(public_pem, false)) {}
VerifyKey::~VerifyKey() { EVP_PKEY_free(key_); }

bool VerifyKey::verify(std::string_view message, std::string_view signature) const {
  if (signature.size() != kSignatureSize) return false;
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_) != 1) bad_key("cannot initialise verification");
  int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                            reinterpret_cast<const unsigned char*>(message.data()), message.size());
  ERR_clear_error();
  return rc == 1;
}

std::string VerifyKey::fingerprint() const { return key_fingerprint(key_); }

}  // namespace kb
