#include "base/text_escape.h"

#include <cstdio>

namespace kb {

Utf8Char decode_utf8(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b = byte(i);
  if (b < 0x80) return {b, 1};
  size_t n;
  char32_t c, min;
  if ((b & 0xe0) == 0xc0) n = 2, c = b & 0x1f, min = 0x80;
  else if ((b & 0xf0) == 0xe0) n = 3, c = b & 0x0f, min = 0x800;
  else if ((b & 0xf8) == 0xf0) n = 4, c = b & 0x07, min = 0x10000;
  else return {};  // a continuation byte, or 0xf8..0xff
  if (s.size() - i < n) return {};
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return {};
    c = (c << 6) | (byte(i + k) & 0x3f);
  }
  // Overlong forms, UTF-16 surrogates and code points past Unicode are not UTF-8 (RFC 3629).
  if (c < min || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff) return {};
  return {c, n};
}

std::string escape_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  char buf[16];
  for (size_t i = 0; i < s.size();) {
    unsigned char b = static_cast<unsigned char>(s[i]);
    if (b >= 0x20 && b < 0x7f) {
      out += s[i++];
      continue;
    }
    if (b == '\n' || b == '\r' || b == '\t') {
      out += b == '\n' ? "\\n" : b == '\r' ? "\\r" : "\\t";
      ++i;
      continue;
    }
    Utf8Char u = b < 0x80 ? Utf8Char{} : decode_utf8(s, i);
    if (u.length == 0) {  // C0 control, DEL, or a byte that is not UTF-8
      std::snprintf(buf, sizeof buf, "\\x%02x", b);
      out += buf;
      ++i;
      continue;
    }
    // C1 controls (0x9b is CSI on some terminals), invisible marks that reorder or hide text.
    bool hidden = (u.code >= 0x80 && u.code <= 0x9f) || u.code == 0x200e || u.code == 0x200f ||
                  (u.code >= 0x202a && u.code <= 0x202e) || (u.code >= 0x2066 && u.code <= 0x2069) ||
                  u.code == 0xfeff;
    if (hidden) {
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(u.code));
      out += buf;
    } else {
      out.append(s.substr(i, u.length));
    }
    i += u.length;
  }
  return out;
}

std::string shell_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace kb
