#include "bundles/tar.h"

#include <cstring>


namespace kb {

const char* to_string(Compression c) { return c == Compression::Zstd ? "zstd" : "gzip"; }

std::string member_name(const ManifestEntry& e) {
  return "files" + e.path + (e.type == EntryType::Directory ? "/" : "");
}

unsigned ustar_checksum(const char* block) {
  unsigned sum = 0;
  for (size_t i = 0; i < kTarBlock; ++i) sum += (i >= 148 && i < 156) ? unsigned(' ') : static_cast<unsigned char>(block[i]);
  return sum;
}

bool ustar_string_field(const char* f, size_t len, std::string& out) {
  size_t n = strnlen(f, len);
  out.assign(f, n);
  for (size_t i = n; i < len; ++i)
    if (f[i] != '\0') return false;
  return true;
}

bool ustar_octal_field(const char* f, size_t len, uint64_t& out) {
  size_t i = 0;
  while (i < len && f[i] == ' ') ++i;
  uint64_t v = 0;
  size_t digits = 0;
  for (; i < len && f[i] >= '0' && f[i] <= '7'; ++i, ++digits) {
    if (v >> 60) return false;
    v = v * 8 + uint64_t(f[i] - '0');
  }
  for (; i < len; ++i)
    if (f[i] != '\0' && f[i] != ' ') return false;
  out = v;
  return digits > 0;
}

}  // namespace kb
