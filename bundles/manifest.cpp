#include "bundles/manifest.h"

#include <cstdio>
#include <ctime>
#include <set>

#include "base/hash.h"
#include "bundles/bundle_error.h"

namespace kb {

using nlohmann::json;

const char* to_string(BundleErrc c) {
  switch (c) {
    case BundleErrc::Io: return "io";
    case BundleErrc::NotABundle: return "not-a-bundle";
    case BundleErrc::Corrupt: return "corrupt";
    case BundleErrc::Truncated: return "truncated";
    case BundleErrc::TrailingData: return "trailing-data";
    case BundleErrc::MissingManifest: return "missing-manifest";
    case BundleErrc::ManifestTooLarge: return "manifest-too-large";
    case BundleErrc::MissingSignature: return "missing-signature";
    case BundleErrc::BadKey: return "bad-key";
    case BundleErrc::BadSignature: return "bad-signature";
    case BundleErrc::KeyMismatch: return "key-mismatch";
    case BundleErrc::BadManifest: return "bad-manifest";
    case BundleErrc::UnsupportedVersion: return "unsupported-version";
    case BundleErrc::UnsafePath: return "unsafe-path";
    case BundleErrc::ForbiddenType: return "forbidden-type";
    case BundleErrc::UnlistedMember: return "unlisted-member";
    case BundleErrc::DuplicateMember: return "duplicate-member";
    case BundleErrc::OutOfOrder: return "out-of-order";
    case BundleErrc::MissingMember: return "missing-member";
    case BundleErrc::TypeMismatch: return "type-mismatch";
    case BundleErrc::SizeMismatch: return "size-mismatch";
    case BundleErrc::HeaderMismatch: return "header-mismatch";
    case BundleErrc::HashMismatch: return "hash-mismatch";
    case BundleErrc::PolicyViolation: return "policy-violation";
    case BundleErrc::BadRollover: return "bad-rollover";
    case BundleErrc::UntrustedRollover: return "untrusted-rollover";
  }
  return "unknown";
}

const char* to_string(EntryType t) { return t == EntryType::File ? "file" : "directory"; }

const char* to_string(EntryClass c) {
  switch (c) {
    case EntryClass::Secret: return "secret";
    case EntryClass::Config: return "config";
    case EntryClass::Unit: return "unit";
    case EntryClass::Binary: return "binary";
  }
  return "unknown";
}

namespace {

[[noreturn]] void bad(const std::string& why) { throw BundleError(BundleErrc::BadManifest, "manifest: " + why); }

bool all_of_chars(std::string_view s, const char* allowed_extra, bool lower_only = false) {
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (!lower_only && c >= 'A' && c <= 'Z');
    for (const char* p = allowed_extra; !ok && *p; ++p) ok = c == *p;
    if (!ok) return false;
  }
  return true;
}

bool is_hex64(std::string_view s) { return is_lower_hex(s, 64); }

bool is_dns_label(std::string_view s) {
  return !s.empty() && s.size() <= 63 && all_of_chars(s, "-", true) && s.front() != '-' && s.back() != '-';
}

bool is_ipv4(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = i;
    unsigned v = 0;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9' && j - i < 3) v = v * 10 + unsigned(s[j++] - '0');
    if (j == i || v > 255 || (j - i > 1 && s[i] == '0')) return false;
    ++parts;
    if (j == s.size()) break;
    if (s[j] != '.') return false;
    i = j + 1;
  }
  return parts == 4;
}

bool is_user_name(std::string_view s) {
  return !s.empty() && s.size() <= 32 && all_of_chars(s, "_-", true) && !(s[0] >= '0' && s[0] <= '9') && s[0] != '-';
}

bool is_unit_name(std::string_view s) {
  return !s.empty() && s.size() <= 255 && all_of_chars(s, ":_.@\\-") && s.find('.') != std::string_view::npos &&
         s.front() != '.';
}

bool has_float(const json& j) {
  if (j.is_number_float()) return true;
  if (j.is_structured())
    for (const auto& v : j)
      if (has_float(v)) return true;
  return false;
}

// Exactly the keys in `required` plus any of `optional`; names the first stray key.
void check_keys(const json& obj, std::initializer_list<const char*> required,
                std::initializer_list<const char*> optional, const std::string& where) {
  if (!obj.is_object()) bad(where + ": not an object");
  for (const char* k : required)
    if (!obj.contains(k)) bad(where + ": missing \"" + k + "\"");
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool known = false;
    for (const char* k : required) known = known || it.key() == k;
    for (const char* k : optional) known = known || it.key() == k;
    if (!known) bad(where + ": unknown key \"" + it.key() + "\"");
  }
}

const std::string& get_string(const json& obj, const char* key, const std::string& where) {
  const json& v = obj.at(key);
  if (!v.is_string()) bad(where + ": \"" + key + "\" is not a string");
  return v.get_ref<const std::string&>();
}

uint64_t get_uint(const json& obj, const char* key, const std::string& where) {
  const json& v = obj.at(key);
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
    bad(where + ": \"" + key + "\" is not a non-negative integer");
  return v.get<uint64_t>();
}

json entry_to_json(const ManifestEntry& e) {
  json j = {{"path", e.path}, {"type", to_string(e.type)}, {"mode", mode_string(e.mode)},
            {"owner", e.owner}, {"group", e.group}};
  if (e.type == EntryType::File) {
    j["size"] = e.size;
    j["sha256"] = e.sha256;
    j["class"] = to_string(e.cls);
    if (e.source) j["source"] = {{"url", e.source->url}, {"sha256", e.source->sha256}};
  }
  return j;
}

json manifest_to_json(const Manifest& m) {
  json entries = json::array();
  for (const auto& e : m.entries) entries.push_back(entry_to_json(e));
  json node = {{"name", m.node_name}, {"role", m.role}, {"hostname", m.hostname}, {"private_ip", m.private_ip}};
  if (!m.instance_id.empty()) node["instance_id"] = m.instance_id;  // absent, not empty, when unset
  return {{"format_version", m.format_version},
          {"cluster_name", m.cluster_name},
          {"cluster_id", m.cluster_id},
          {"node", std::move(node)},
          {"serial", m.serial},
          {"created_at", m.created_at},
          {"kubernetes_version", m.kubernetes_version},
          {"signing_key_sha256", m.signing_key_sha256},
          {"units", m.units},
          {"health_checks", m.health_checks},
          {"entries", std::move(entries)}};
}

std::string dump_canonical(const json& j) {
  try {
    return j.dump(-1, ' ', false, json::error_handler_t::strict);
  } catch (const json::exception& e) {
    bad(std::string("cannot serialize: ") + e.what());
  }
}

}  // namespace

std::string mode_string(unsigned mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode);
  return buf;
}

std::optional<int64_t> parse_rfc3339_utc(std::string_view t) {
  // Exactly YYYY-MM-DDTHH:MM:SSZ: one spelling per instant keeps bundles reproducible.
  static const char pattern[] = "dddd-dd-ddTdd:dd:ddZ";
  if (t.size() != sizeof pattern - 1) return std::nullopt;
  for (size_t i = 0; i < t.size(); ++i) {
    if (pattern[i] == 'd' ? !(t[i] >= '0' && t[i] <= '9') : t[i] != pattern[i]) return std::nullopt;
  }
  auto num = [&](size_t pos, size_t len) {
    int v = 0;
    for (size_t i = 0; i < len; ++i) v = v * 10 + (t[pos + i] - '0');
    return v;
  };
  int y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2), s = num(17, 2);
  static const int days_in_month[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return std::nullopt;
  if (d > days_in_month[mo - 1] + (mo == 2 && leap ? 1 : 0)) return std::nullopt;
  // Days from civil (Howard Hinnant's algorithm), no time zone database involved.
  int yy = mo <= 2 ? y - 1 : y;
  int era = yy / 400;
  int yoe = yy - era * 400;
  int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = int64_t(era) * 146097 + doe - 719468;
  return days * 86400 + h * 3600 + mi * 60 + s;
}

void validate_entry_path(const std::string& path) {
  auto unsafe = [&](const std::string& why) {
    std::string shown;
    for (char c : path) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
    throw BundleError(BundleErrc::UnsafePath, "path \"" + shown + "\": " + why);
  };
  if (path.empty() || path[0] != '/') unsafe("not absolute");
  if (path.size() < 2) unsafe("is the root directory");
  if (path.size() > 250) unsafe("longer than 250 bytes");
  for (char c : path) {
    if (c == '\0') unsafe("contains NUL");
    if (c < 0x20 || c >= 0x7f) unsafe("contains a control or non-ASCII character");
  }
  if (path.back() == '/') unsafe("ends with /");
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view comp(path.data() + start, end - start);
    if (comp.empty()) unsafe("not normalized (empty component)");
    if (comp == ".") unsafe("not normalized (\".\" component)");
    if (comp == "..") unsafe("contains \"..\"");
    start = end + 1;
  }
}

void validate_manifest(const Manifest& m) {
  if (m.format_version != kFormatVersion)
    throw BundleError(BundleErrc::UnsupportedVersion,
                      "manifest: format_version " + std::to_string(m.format_version) + " is not supported (this reader knows " +
                          std::to_string(kFormatVersion) + ")");
  if (!is_dns_label(m.cluster_name)) bad("cluster_name \"" + m.cluster_name + "\" is not a DNS-1123 label");
  if (m.cluster_id.empty() || m.cluster_id.size() > 128 || !all_of_chars(m.cluster_id, "._-"))
    bad("cluster_id must be 1-128 characters of [A-Za-z0-9._-]");
  if (!is_dns_label(m.node_name)) bad("node.name \"" + m.node_name + "\" is not a DNS-1123 label");
  if (m.role != "control-plane" && m.role != "worker" && m.role != "both")
    bad("node.role \"" + m.role + "\" is not control-plane, worker or both");
  if (m.hostname.empty() || m.hostname.size() > 253 || !all_of_chars(m.hostname, ".-"))
    bad("node.hostname \"" + m.hostname + "\" is not a host name");
  if (!is_ipv4(m.private_ip)) bad("node.private_ip \"" + m.private_ip + "\" is not a dotted IPv4 address");
  if (!m.instance_id.empty() && (m.instance_id.size() > 34 || m.instance_id.rfind("i-", 0) != 0 || m.instance_id.size() < 3 ||
                                 !all_of_chars(m.instance_id.substr(2), "", true)))
    bad("node.instance_id \"" + m.instance_id + "\" is not an EC2 instance id");
  if (!parse_rfc3339_utc(m.created_at)) bad("created_at \"" + m.created_at + "\" is not YYYY-MM-DDTHH:MM:SSZ");
  if (m.kubernetes_version.size() < 2 || m.kubernetes_version.size() > 64 || m.kubernetes_version[0] != 'v' ||
      !all_of_chars(m.kubernetes_version, ".+-"))
    bad("kubernetes_version \"" + m.kubernetes_version + "\" is not like v1.32.3");
  if (!is_hex64(m.signing_key_sha256)) bad("signing_key_sha256 is not 64 lowercase hex digits");
  std::set<std::string> seen_units;
  for (const auto& u : m.units) {
    if (!is_unit_name(u)) bad("unit name \"" + u + "\" is not a systemd unit name");
    if (!seen_units.insert(u).second) bad("unit \"" + u + "\" listed twice");
  }
  for (size_t i = 0; i < m.health_checks.size(); ++i) {
    const auto& h = m.health_checks[i];
    if (!h.is_object()) bad("health_checks[" + std::to_string(i) + "] is not an object");
    if (has_float(h)) bad("health_checks[" + std::to_string(i) + "] contains a floating-point number");
  }
  std::set<std::string> files;
  const std::string* prev = nullptr;
  for (const auto& e : m.entries) {
    validate_entry_path(e.path);
    if (prev && !(*prev < e.path))
      bad("entries not sorted by path or not unique: \"" + e.path + "\" after \"" + *prev + "\"");
    prev = &e.path;
    for (size_t slash = e.path.find('/', 1); slash != std::string::npos; slash = e.path.find('/', slash + 1))
      if (files.count(e.path.substr(0, slash))) bad("\"" + e.path + "\" lies under the file entry " + e.path.substr(0, slash));
    if (e.mode > 07777) bad("\"" + e.path + "\": mode " + mode_string(e.mode) + " is out of range");
    if (e.mode & 07000) bad("\"" + e.path + "\": mode " + mode_string(e.mode) + " has setuid, setgid or sticky bits");
    if (!is_user_name(e.owner)) bad("\"" + e.path + "\": owner \"" + e.owner + "\" is not a user name");
    if (!is_user_name(e.group)) bad("\"" + e.path + "\": group \"" + e.group + "\" is not a group name");
    if (e.type == EntryType::File) {
      files.insert(e.path);
      if (!is_hex64(e.sha256)) bad("\"" + e.path + "\": sha256 is not 64 lowercase hex digits");
      if (e.size > (uint64_t(1) << 33) - 1) bad("\"" + e.path + "\": size over 8 GiB - 1 (ustar limit)");
      if (e.source && (e.source->url.empty() || !is_hex64(e.source->sha256)))
        bad("\"" + e.path + "\": source needs a url and a 64-digit hex sha256");
    } else if (e.size != 0 || !e.sha256.empty() || e.source) {
      bad("\"" + e.path + "\": a directory has no size, sha256 or source");
    }
  }
}

std::string serialize_manifest(const Manifest& m) {
  validate_manifest(m);
  std::string out = dump_canonical(manifest_to_json(m));
  if (out.size() > kMaxManifestSize)
    throw BundleError(BundleErrc::ManifestTooLarge, "manifest: " + std::to_string(out.size()) + " bytes, limit " +
                                                        std::to_string(kMaxManifestSize));
  return out;
}

Manifest parse_manifest(std::string_view bytes) {
  if (bytes.size() > kMaxManifestSize) throw BundleError(BundleErrc::ManifestTooLarge, "manifest: too large");
  json j;
  try {
    j = json::parse(bytes.begin(), bytes.end());
  } catch (const json::exception& e) {
    bad(std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object()) bad("not a JSON object");
  // The version first, so that a future format is reported as such and not as unknown keys.
  if (!j.contains("format_version") || !j["format_version"].is_number_integer()) bad("missing \"format_version\"");
  if (j["format_version"].get<int64_t>() != kFormatVersion)
    throw BundleError(BundleErrc::UnsupportedVersion,
                      "manifest: format_version " + j["format_version"].dump() + " is not supported (this reader knows " +
                          std::to_string(kFormatVersion) + ")");
  const std::string top = "manifest";
  check_keys(j,
             {"format_version", "cluster_name", "cluster_id", "node", "serial", "created_at", "kubernetes_version",
              "signing_key_sha256", "units", "health_checks", "entries"},
             {}, top);
  Manifest m;
  m.format_version = kFormatVersion;
  m.cluster_name = get_string(j, "cluster_name", top);
  m.cluster_id = get_string(j, "cluster_id", top);
  const json& node = j["node"];
  check_keys(node, {"name", "role", "hostname", "private_ip"}, {"instance_id"}, "node");
  m.node_name = get_string(node, "name", "node");
  m.role = get_string(node, "role", "node");
  m.hostname = get_string(node, "hostname", "node");
  m.private_ip = get_string(node, "private_ip", "node");
  if (node.contains("instance_id")) m.instance_id = get_string(node, "instance_id", "node");
  m.serial = get_uint(j, "serial", top);
  m.created_at = get_string(j, "created_at", top);
  m.kubernetes_version = get_string(j, "kubernetes_version", top);
  m.signing_key_sha256 = get_string(j, "signing_key_sha256", top);
  if (!j["units"].is_array()) bad("\"units\" is not an array");
  for (const auto& u : j["units"]) {
    if (!u.is_string()) bad("a unit name is not a string");
    m.units.push_back(u.get<std::string>());
  }
  if (!j["health_checks"].is_array()) bad("\"health_checks\" is not an array");
  for (const auto& h : j["health_checks"]) m.health_checks.push_back(h);
  if (!j["entries"].is_array()) bad("\"entries\" is not an array");
  size_t index = 0;
  for (const auto& ej : j["entries"]) {
    std::string where = "entries[" + std::to_string(index++) + "]";
    if (!ej.is_object() || !ej.contains("type") || !ej["type"].is_string()) bad(where + ": missing \"type\"");
    ManifestEntry e;
    const std::string& type = ej["type"].get_ref<const std::string&>();
    if (type == "file") {
      e.type = EntryType::File;
      check_keys(ej, {"path", "type", "mode", "owner", "group", "size", "sha256", "class"}, {"source"}, where);
    } else if (type == "directory") {
      e.type = EntryType::Directory;
      check_keys(ej, {"path", "type", "mode", "owner", "group"}, {}, where);
    } else {
      bad(where + ": type \"" + type + "\" is not file or directory");
    }
    e.path = get_string(ej, "path", where);
    validate_entry_path(e.path);
    where += " (" + e.path + ")";
    const std::string& mode = get_string(ej, "mode", where);
    if (mode.size() != 4 || mode.find_first_not_of("01234567") != std::string::npos)
      bad(where + ": mode \"" + mode + "\" is not four octal digits");
    e.mode = unsigned(std::stoul(mode, nullptr, 8));
    e.owner = get_string(ej, "owner", where);
    e.group = get_string(ej, "group", where);
    if (e.type == EntryType::File) {
      e.size = get_uint(ej, "size", where);
      e.sha256 = get_string(ej, "sha256", where);
      const std::string& cls = get_string(ej, "class", where);
      if (cls == "secret") e.cls = EntryClass::Secret;
      else if (cls == "config") e.cls = EntryClass::Config;
      else if (cls == "unit") e.cls = EntryClass::Unit;
      else if (cls == "binary") e.cls = EntryClass::Binary;
      else bad(where + ": class \"" + cls + "\" is not secret, config, unit or binary");
      if (ej.contains("source")) {
        const json& s = ej["source"];
        check_keys(s, {"url", "sha256"}, {}, where + ".source");
        e.source = EntrySource{get_string(s, "url", where), get_string(s, "sha256", where)};
      }
    }
    m.entries.push_back(std::move(e));
  }
  validate_manifest(m);
  // Refuse every spelling but the canonical one: the signed bytes then have one
  // meaning only (no duplicate keys, no whitespace games, no number variants).
  if (dump_canonical(manifest_to_json(m)) != bytes) bad("not in canonical form (sorted keys, no whitespace)");
  return m;
}

std::string manifest_listing_text(const Manifest& m) {
  std::string out;
  out += "cluster:     " + m.cluster_name + " (id " + m.cluster_id + ")\n";
  out += "node:        " + m.node_name + " (" + m.role + "), hostname " + m.hostname + ", private IP " + m.private_ip +
         (m.instance_id.empty() ? "" : ", EC2 instance " + m.instance_id) + "\n";
  out += "serial:      " + std::to_string(m.serial) + "\n";
  out += "created:     " + m.created_at + "\n";
  out += "kubernetes:  " + m.kubernetes_version + "\n";
  out += "signed by:   sha256:" + m.signing_key_sha256 + "\n";
  out += "units:      ";
  for (const auto& u : m.units) out += " " + u;
  out += "\nchecks:     ";
  for (const auto& h : m.health_checks) out += " " + (h.contains("name") && h["name"].is_string() ? h["name"].get<std::string>() : "?");
  out += "\nentries:     " + std::to_string(m.entries.size()) + "\n";
  for (const auto& e : m.entries) {
    char line[160];
    std::string owner = e.owner + ":" + e.group;
    if (e.type == EntryType::File)
      std::snprintf(line, sizeof line, "  f %s %-17s %12llu %-7s %.16s  ", mode_string(e.mode).c_str(), owner.c_str(),
                    static_cast<unsigned long long>(e.size), to_string(e.cls), e.sha256.c_str());
    else
      std::snprintf(line, sizeof line, "  d %s %-17s %12s %-7s %-16s  ", mode_string(e.mode).c_str(), owner.c_str(), "-", "-", "-");
    out += line + e.path + "\n";
  }
  return out;
}

json manifest_listing_json(const Manifest& m) {
  // The manifest holds metadata only (never contents), so its own JSON is the listing.
  return manifest_to_json(m);
}

const ManifestEntry* find_file_entry(const Manifest& m, const std::string& path) {
  for (const auto& e : m.entries)
    if (e.path == path && e.type == EntryType::File) return &e;
  return nullptr;
}

}  // namespace kb
