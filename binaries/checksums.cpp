#include "binaries/checksums.h"

#include <cctype>
#include <vector>

#include "base/error.h"

namespace kb {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "./dir/name" and "name" both name "name".
bool names_asset(std::string_view listed, std::string_view asset) {
  if (listed == asset) return true;
  return listed.size() > asset.size() && listed.ends_with(asset) && listed[listed.size() - asset.size() - 1] == '/';
}

}  // namespace

bool is_sha256_hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

std::string published_sha256(std::string_view text, std::string_view asset_name, const std::string& where) {
  struct Line {
    std::string hash, name;  // name empty: a bare hash
  };
  std::vector<Line> lines;
  size_t line_no = 0;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    std::string_view l = trim(raw);
    if (l.empty() || l.front() == '#') continue;
    Line parsed;
    if (l.starts_with("SHA256 (")) {
      auto close = l.rfind(") = ");
      if (close == std::string_view::npos) throw Error(where + ":" + std::to_string(line_no) + ": malformed BSD-style line");
      parsed.name = std::string(l.substr(8, close - 8));
      parsed.hash = std::string(trim(l.substr(close + 4)));
    } else {
      auto sp = l.find_first_of(" \t");
      parsed.hash = std::string(l.substr(0, sp));
      if (sp != std::string_view::npos) {
        std::string_view name = trim(l.substr(sp));
        if (name.starts_with('*')) name.remove_prefix(1);
        parsed.name = std::string(name);
      }
    }
    if (!is_sha256_hex(parsed.hash))
      throw Error(where + ":" + std::to_string(line_no) + ": '" + std::string(parsed.hash.substr(0, 80)) +
                  "' is not a sha256 (64 hex digits)");
    parsed.hash = lower(parsed.hash);
    lines.push_back(std::move(parsed));
  }
  if (lines.size() == 1 && lines[0].name.empty()) return lines[0].hash;
  std::string found;
  for (const auto& l : lines) {
    if (l.name.empty() || !names_asset(l.name, asset_name)) continue;
    if (!found.empty() && found != l.hash) throw Error(where + ": two different checksums for " + std::string(asset_name));
    found = l.hash;
  }
  if (found.empty()) throw Error(where + ": no sha256 published for " + std::string(asset_name));
  return found;
}

}  // namespace kb
