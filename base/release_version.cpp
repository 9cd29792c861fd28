#include "base/release_version.h"

namespace kb {

namespace {

std::optional<uint32_t> part(std::string_view s) {
  if (s.empty() || s.size() > 4 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  return v;
}

}  // namespace

std::string ReleaseVersion::str() const { return minor_string() + "." + std::to_string(patch); }

std::string ReleaseVersion::minor_string() const { return "v" + std::to_string(major) + "." + std::to_string(minor); }

int64_t ReleaseVersion::minors_after(const ReleaseVersion& older) const {
  return (int64_t{major} - older.major) * 1000 + (int64_t{minor} - older.minor);
}

std::optional<ReleaseVersion> parse_release_version(std::string_view text) {
  if (!text.starts_with('v')) return std::nullopt;
  text.remove_prefix(1);
  auto dot1 = text.find('.');
  if (dot1 == std::string_view::npos) return std::nullopt;
  auto dot2 = text.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos) return std::nullopt;
  auto a = part(text.substr(0, dot1)), b = part(text.substr(dot1 + 1, dot2 - dot1 - 1)), c = part(text.substr(dot2 + 1));
  if (!a || !b || !c) return std::nullopt;
  return ReleaseVersion{*a, *b, *c};
}

}  // namespace kb
