#pragma once
// SHA-256 through OpenSSL's EVP interface, streaming or one-shot.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace kb {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t len);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::array<uint8_t, 32> digest();  // may be called once
  std::string hex_digest();           // lowercase hex; may be called once

 private:
  EVP_MD_CTX* ctx_;
};

std::string sha256_hex(std::string_view data);

// A file's size and SHA-256 (lowercase hex), read in blocks from the current offset to the end.
struct FileDigest {
  uint64_t size = 0;
  std::string sha256;
};
FileDigest sha256_fd(int fd, const std::string& path);  // `path` only names the file in errors
FileDigest sha256_file(const std::string& path);         // throws kb::Error naming the path

// Standard base64 with padding, no line breaks (OpenSSL's EVP_EncodeBlock).
std::string base64_encode(std::string_view bytes);
// Its inverse; nothing when `text` is not standard padded base64.
std::optional<std::string> base64_decode(std::string_view text);
std::string to_hex(const uint8_t* data, size_t len);
// True when `s` is exactly `n` lowercase hex digits (fingerprints, digests, signatures).
bool is_lower_hex(std::string_view s, size_t n);
// The bytes of lowercase hex; the caller checked is_lower_hex().
std::string hex_to_bytes(std::string_view hex);

}  // namespace kb
