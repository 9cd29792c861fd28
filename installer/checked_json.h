#pragma once
// Reading a small JSON file a bundle carries for the installer itself (membership.json,
// restore.json, backup.json) as hostile input: every refusal names the file, the field and what is
// wrong, exits 3 and comes before anything is written. Shared by installer/etcd_members.cpp and
// installer/etcd_backup.cpp.

#include <arpa/inet.h>

#include <algorithm>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>

#include "base/text_escape.h"
#include "installer/installer.h"

namespace kb::installer::checked {

[[noreturn]] inline void refuse(const std::string& where, const std::string& place, const std::string& what) {
  throw InstallerError(ExitCode::BadBundle, where + ": " + place + ": " + what + "; refused, nothing was changed");
}

// "https://A.B.C.D:PORT" with a dotted IPv4 address and exactly that port.
inline bool is_url(const std::string& s, int port) {
  const std::string pre = "https://", post = ":" + std::to_string(port);
  if (s.size() <= pre.size() + post.size() || s.rfind(pre, 0) != 0 || s.compare(s.size() - post.size(), post.size(), post) != 0)
    return false;
  std::string ip = s.substr(pre.size(), s.size() - pre.size() - post.size());
  in_addr a{};
  return inet_pton(AF_INET, ip.c_str(), &a) == 1;
}

// A node name as the topology allows it (a DNS-1123 label's characters, at most 63).
inline bool good_name(const std::string& s) {
  return !s.empty() && s.size() <= 63 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

inline std::string str(const nlohmann::json& j, const char* key, const std::string& where, const std::string& place) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) refuse(where, place + key, "missing or not a string");
  return it->get<std::string>();
}

inline void only_keys(const nlohmann::json& j, std::initializer_list<const char*> keys, const std::string& where,
                      const std::string& place) {
  for (const auto& [k, v] : j.items())
    if (std::none_of(keys.begin(), keys.end(), [&](const char* a) { return k == a; }))
      refuse(where, place + escape_text(k), "unknown field; regenerate the bundle with `kbundle gen`");
}

}  // namespace kb::installer::checked
