#pragma once
// One way to quote text that came from outside (a topology value, a file name) in a message:
// whatever it holds, the printed form is one line of visible characters, so a control character
// or a terminal escape sequence (ESC [ ...) in a file can never reach the terminal raw.
#include <string>
#include <string_view>

namespace kb {

// Keeps printable ASCII and well-formed UTF-8; writes \n \r \t, other C0 controls and DEL as
// \xNN, bytes that are not UTF-8 as \xNN, and C1 controls, bidirectional overrides and
// U+FEFF as \uNNNN.
std::string escape_text(std::string_view s);

// Decodes one UTF-8 character at `s[i]`: its code point and length, or length 0 when the bytes
// there are not well-formed UTF-8 (overlong, a surrogate, above U+10FFFF, cut short, a stray
// continuation byte).
// Single-quoted for a POSIX shell: 'it'\''s'. Any byte string becomes one word that the shell
// takes literally (no expansion, no word splitting, no command substitution).
std::string shell_quote(std::string_view s);

struct Utf8Char {
  char32_t code = 0;
  size_t length = 0;
};
Utf8Char decode_utf8(std::string_view s, size_t i);

}  // namespace kb
