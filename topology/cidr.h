#pragma once
// IPv4 addresses and prefixes as the topology uses them: strict dotted quads (no leading
// zeros), prefixes whose host bits are zero.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace kb {

// An IPv4 prefix such as 10.200.0.0/16 (the address is the network address).
struct Cidr {
  uint32_t network = 0;
  int prefix = 0;

  static std::optional<Cidr> parse(const std::string& text);  // nullopt unless a.b.c.d/n with host bits zero
  std::string str() const;
  uint32_t size() const;  // number of addresses (2^(32-prefix)), saturating at 2^32-1
  bool contains(uint32_t ip) const;
  bool contains(const Cidr& other) const;
  bool overlaps(const Cidr& other) const;
  std::string address_at(uint32_t offset) const;  // network + offset, dotted
};

std::optional<uint32_t> parse_ipv4(const std::string& text);
std::string format_ipv4(uint32_t ip);

// Netmask for a prefix length (0..32).
uint32_t prefix_mask(int prefix);

// Decimal digits only, no sign, no leading zeros (except "0" itself), at most `max_digits`.
std::optional<uint32_t> parse_plain_decimal(std::string_view s, size_t max_digits);

// Why `text` is not a CIDR, with a hint; an empty message when it is one.
std::pair<std::string, std::string> cidr_problem(const std::string& text);

}  // namespace kb
