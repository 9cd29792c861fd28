#pragma once
// One way to print a time: every timestamp kbundle writes (bundle creation, certificate expiry,
// upload records) is RFC 3339 in UTC, to the second, so the bundle format's parser reads it back.
#include <cstdint>
#include <string>

namespace kb {

// "YYYY-MM-DDTHH:MM:SSZ" for seconds since the epoch.
std::string rfc3339_utc(int64_t seconds);

}  // namespace kb
