#include "base/text_escape.h"

#include <catch2/catch.hpp>

using kb::escape_text;

TEST_CASE("escape_text leaves plain text and UTF-8 alone", "[text_escape]") {
  CHECK(escape_text("worker-0 10.0.1.20 'quoted' \\path") == "worker-0 10.0.1.20 'quoted' \\path");
  CHECK(escape_text("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

TEST_CASE("escape_text makes every control character and terminal escape visible", "[text_escape]") {
  CHECK(escape_text("a\nb\rc\td") == "a\\nb\\rc\\td");
  CHECK(escape_text("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m");
  CHECK(escape_text("\x1b]0;title\x07") == "\\x1b]0;title\\x07");
  CHECK(escape_text(std::string_view("a\0b", 3)) == "a\\x00b");
  CHECK(escape_text("del\x7f") == "del\\x7f");
  CHECK(escape_text("csi\xc2\x9b" "31m") == "csi\\u009b31m");                // C1 CSI as UTF-8
  CHECK(escape_text("rtl\xe2\x80\xaeoverride") == "rtl\\u202eoverride");    // bidi override
  CHECK(escape_text("\xef\xbb\xbf" "bom") == "\\ufeffbom");
  for (unsigned c = 0; c < 0x20; ++c) {
    std::string out = escape_text(std::string(1, static_cast<char>(c)));
    CHECK(out.find_first_of(std::string_view("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
                                             "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f",
                                             32)) == std::string::npos);
  }
}

TEST_CASE("escape_text writes bytes that are not UTF-8 as hex", "[text_escape]") {
  CHECK(escape_text("\xff") == "\\xff");
  CHECK(escape_text("\xc0\xaf") == "\\xc0\\xaf");          // overlong '/'
  CHECK(escape_text("\xed\xa0\x80") == "\\xed\\xa0\\x80");  // surrogate U+D800
  CHECK(escape_text("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
  CHECK(escape_text("\xe2\x82") == "\\xe2\\x82");          // cut short
  CHECK(escape_text("\x80") == "\\x80");                   // stray continuation byte
}

TEST_CASE("decode_utf8 refuses what RFC 3629 refuses", "[text_escape]") {
  CHECK(kb::decode_utf8("\xc3\xa9", 0).code == 0xe9);
  CHECK(kb::decode_utf8("\xf0\x9f\x98\x80", 0).length == 4);
  CHECK(kb::decode_utf8("\xe0\x80\x80", 0).length == 0);      // overlong NUL
  CHECK(kb::decode_utf8("\xf0\x80\x80\x80", 0).length == 0);  // overlong
  CHECK(kb::decode_utf8("\xed\xbf\xbf", 0).length == 0);      // surrogate U+DFFF
  CHECK(kb::decode_utf8("\xf8\x88\x80\x80\x80", 0).length == 0);
}
