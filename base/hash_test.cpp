#include "base/hash.h"

#include <catch2/catch.hpp>

TEST_CASE("is_lower_hex takes exactly n lowercase hex digits", "[hash]") {
  CHECK(kb::is_lower_hex("0123456789abcdef", 16));
  CHECK_FALSE(kb::is_lower_hex("0123456789abcdef", 15));  // wrong length
  CHECK_FALSE(kb::is_lower_hex("0123456789ABCDEF", 16));  // uppercase
  CHECK_FALSE(kb::is_lower_hex("0123456789abcdeg", 16));
  CHECK_FALSE(kb::is_lower_hex(std::string_view("00\0" "0", 4), 4));
}

TEST_CASE("hex_to_bytes inverts to_hex", "[hash]") {
  const uint8_t raw[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
  std::string hex = kb::to_hex(raw, sizeof raw);
  CHECK(hex == "00017f80abff");
  CHECK(kb::hex_to_bytes(hex) == std::string(reinterpret_cast<const char*>(raw), sizeof raw));
}
