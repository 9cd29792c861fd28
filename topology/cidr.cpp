#include "topology/cidr.h"

#include <string_view>

namespace kb {
// Netmask for a prefix length; written out because shifting a uint32_t by 32 is undefined.
uint32_t prefix_mask(int prefix) {
  if (prefix <= 0) return 0;
  if (prefix >= 32) return 0xffffffffu;
  return ~((uint32_t{1} << (32 - prefix)) - 1);
}

// Decimal digits only, no sign, no leading zeros (except "0" itself).
std::optional<uint32_t> parse_plain_decimal(std::string_view s, size_t max_digits) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  if (s.size() > 1 && s[0] == '0') return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  return v;
}


std::optional<uint32_t> parse_ipv4(const std::string& text) {
  uint32_t ip = 0;
  size_t pos = 0;
  for (int i = 0; i < 4; ++i) {
    size_t end = text.find('.', pos);
    if (i < 3 && end == std::string::npos) return std::nullopt;
    if (i == 3) {
      if (end != std::string::npos) return std::nullopt;
      end = text.size();
    }
    auto octet = parse_plain_decimal(std::string_view(text).substr(pos, end - pos), 3);
    if (!octet || *octet > 255) return std::nullopt;
    ip = (ip << 8) | *octet;
    pos = end + 1;
  }
  return ip;
}

std::string format_ipv4(uint32_t ip) {
  return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 0xff) + "." + std::to_string((ip >> 8) & 0xff) +
         "." + std::to_string(ip & 0xff);
}

std::optional<Cidr> Cidr::parse(const std::string& text) {
  size_t slash = text.find('/');
  if (slash == std::string::npos) return std::nullopt;
  auto ip = parse_ipv4(text.substr(0, slash));
  auto prefix = parse_plain_decimal(std::string_view(text).substr(slash + 1), 2);
  if (!ip || !prefix || *prefix > 32) return std::nullopt;
  Cidr c;
  c.prefix = static_cast<int>(*prefix);
  if ((*ip & ~prefix_mask(c.prefix)) != 0) return std::nullopt;
  c.network = *ip;
  return c;
}

std::string Cidr::str() const { return format_ipv4(network) + "/" + std::to_string(prefix); }

uint32_t Cidr::size() const {
  if (prefix <= 0) return 0xffffffffu;
  return uint32_t{1} << (32 - std::min(prefix, 32));
}

bool Cidr::contains(uint32_t ip) const { return (ip & prefix_mask(prefix)) == network; }

bool Cidr::contains(const Cidr& other) const { return other.prefix >= prefix && contains(other.network); }

bool Cidr::overlaps(const Cidr& other) const { return contains(other) || other.contains(*this); }

std::string Cidr::address_at(uint32_t offset) const { return format_ipv4(network + offset); }

// Why a CIDR does not parse, with a hint; empty message when it is fine.
std::pair<std::string, std::string> cidr_problem(const std::string& text) {
  const std::string example = "write address/prefix with the network address, e.g. 10.200.0.0/16";
  size_t slash = text.find('/');
  if (slash == std::string::npos) return {"'" + text + "' is not a CIDR: the '/prefix' is missing", example};
  auto ip = parse_ipv4(text.substr(0, slash));
  if (!ip)
    return {"'" + text + "' is not a CIDR: '" + text.substr(0, slash) + "' is not a valid IPv4 address", example};
  auto prefix = parse_plain_decimal(std::string_view(text).substr(slash + 1), 2);
  if (!prefix || *prefix > 32)
    return {"'" + text + "' is not a CIDR: the prefix '" + text.substr(slash + 1) + "' is not a number from 0 to 32",
            example};
  int p = static_cast<int>(*prefix);
  if ((*ip & ~prefix_mask(p)) != 0) {
    Cidr fixed{*ip & prefix_mask(p), p};
    return {"'" + text + "' has host bits set", "the block containing it is " + fixed.str() + "; write that"};
  }
  return {};
}

}  // namespace kb
