#pragma once
// Release versions as Kubernetes and etcd spell them: "v1.32.4", "v3.5.21" (no pre-release
// suffix). Used to find a version's catalog minor and to check version skew.

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kb {

struct ReleaseVersion {
  uint32_t major = 0, minor = 0, patch = 0;
  auto operator<=>(const ReleaseVersion&) const = default;
  std::string str() const;           // "v1.32.4"
  std::string minor_string() const;  // "v1.32"
  // Minors from `older` to this one ("v1.32" -> "v1.34" is 2); a major change counts as 1000.
  int64_t minors_after(const ReleaseVersion& older) const;
};

// "vX.Y.Z" with plain decimal parts (at most 4 digits, no leading zero, no sign, no suffix);
// nullopt for anything else ("1.32.4", "v1.32", "v1.32.4-rc.1", "v1.032.4").
std::optional<ReleaseVersion> parse_release_version(std::string_view text);

}  // namespace kb
