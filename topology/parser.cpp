#include "topology/topology.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <span>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "base/etcd_backup.h"
#include "base/text_escape.h"
#include "base/unique_fd.h"
#include "topology/cidr.h"
#include "topology/s3_location.h"

namespace kb {

namespace {

// Keys each mapping may hold. Adding a section or field is one entry here plus its reader.
constexpr std::string_view kTopLevelKeys[] = {"cluster", "nodes", "aws", "etcd"};
constexpr std::string_view kEtcdKeys[] = {"backup"};
constexpr std::string_view kEtcdBackupKeys[] = {"schedule", "keep", "maxAgeDays", "dir"};
constexpr std::string_view kClusterKeys[] = {
    "name",        "kubernetesVersion", "apiEndpoint", "podCIDR",  "nodePodCIDRPrefix",
    "serviceCIDR", "clusterDomain",     "keyType",     "validity", "encryption", "hardening"};
constexpr std::string_view kApiEndpointKeys[] = {"host", "port"};
constexpr std::string_view kValidityKeys[] = {"caDays", "leafDays", "renewBeforeDays"};
constexpr std::string_view kEncryptionKeys[] = {"provider"};
constexpr std::string_view kHardeningKeys[] = {"alwaysPullImages", "denyServiceExternalIPs"};
constexpr std::string_view kAwsKeys[] = {"region",           "vpcCIDR",     "subnetCIDR", "availabilityZone",
                                         "instanceTypes",    "image",       "sshPublicKeyFile", "adminCIDR",
                                         "userData"};
constexpr std::string_view kAwsInstanceTypeKeys[] = {"controlPlane", "worker"};
constexpr std::string_view kAwsImageKeys[] = {"id", "name", "owner"};
constexpr std::string_view kAwsUserDataKeys[] = {"bundles", "bundleURL", "installerURL"};
constexpr std::string_view kNodeKeys[] = {"name", "role", "privateIP", "publicIP", "hostname", "podCIDR", "instanceId"};

constexpr std::string_view kRoleNames[] = {"control-plane", "worker", "both"};
constexpr Role kRoles[] = {Role::ControlPlane, Role::Worker, Role::Both};
constexpr std::string_view kKeyTypeNames[] = {"ecdsa-p256", "rsa-2048", "rsa-3072", "rsa-4096"};
constexpr KeyType kKeyTypes[] = {KeyType::EcdsaP256, KeyType::Rsa2048, KeyType::Rsa3072, KeyType::Rsa4096};
constexpr std::string_view kProviderNames[] = {"aescbc", "secretbox", "aesgcm"};
constexpr EncryptionProvider kProviders[] = {EncryptionProvider::Aescbc, EncryptionProvider::Secretbox,
                                             EncryptionProvider::Aesgcm};

// A node's pod CIDR must leave room for a useful number of pods (and the bridge gateway).
constexpr int kMaxNodePodPrefix = 28;
// Kubernetes refuses service CIDRs with more than 20 host bits; cluster DNS needs the tenth address.
constexpr int kMinServicePrefix = 12;
constexpr int kMaxServicePrefix = 28;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The closest candidate, compared case-insensitively, if it is close enough to be a typo.
std::optional<std::string_view> closest(std::string_view word, std::span<const std::string_view> candidates) {
  std::string w = lower(word);
  std::optional<std::string_view> best;
  size_t best_distance = std::max<size_t>(2, w.size() / 3) + 1;
  for (std::string_view c : candidates) {
    size_t d = edit_distance(w, lower(c));
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

std::string join_list(std::span<const std::string_view> items) {
  std::string out;
  for (std::string_view s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

bool is_dns_label(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return alnum(c) || c == '-'; });
}

bool is_dns_subdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t pos = 0;
  while (true) {
    size_t dot = s.find('.', pos);
    if (!is_dns_label(s.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos))) return false;
    if (dot == std::string_view::npos) return true;
    pos = dot + 1;
  }
}

bool looks_like_ipv4(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

// A corrected spelling of an almost-valid name, e.g. "Worker_1" -> "worker-1".
std::string dns_hint(std::string_view s, bool subdomain) {
  std::string fixed = lower(s);
  for (char& c : fixed)
    if (c == '_' || c == ' ' || (!subdomain && c == '.')) c = '-';
  std::string rule = subdomain ? "use dot-separated labels of lowercase letters, digits and '-', each starting and "
                                 "ending with a letter or digit (at most 63 characters each, 253 in all)"
                               : "use lowercase letters, digits and '-', starting and ending with a letter or "
                                 "digit, at most 63 characters";
  if (fixed != s && (subdomain ? is_dns_subdomain(fixed) : is_dns_label(fixed))) return rule + ", e.g. '" + fixed + "'";
  return rule;
}

const char* describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return "a single value";
    case YAML::NodeType::Null: return "empty";
    case YAML::NodeType::Undefined: break;
  }
  return "undefined";
}

struct Loc {
  int line = 0;  // 1-based; 0 = nowhere in the file
  int column = 0;
};

Loc loc_of(const YAML::Mark& m) {
  if (m.is_null() || m.line < 0) return {};
  return {m.line + 1, m.column + 1};
}

std::string at_line(Loc l) { return l.line > 0 ? " at line " + std::to_string(l.line) : ""; }

// What a plain look at the lines tells, for what yaml-cpp 0.7 gets wrong: LoadAll can loop forever
// on malformed input (jbeder/yaml-cpp#1319), Load ignores every document after the first and reads
// some garbage (a leading ',') as an empty document.
struct TextScan {
  Loc first_content;  // first character that is not blank, a comment, a directive or a document marker
  char first_char = 0;
  Loc second_document;  // a document marker followed by more content, if any
};

TextScan scan_text(std::string_view text) {
  TextScan scan;
  Loc pending_marker;  // a marker seen after content; a second document once content follows it
  int line = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = std::min(text.find('\n', pos), text.size());
    std::string_view l = text.substr(pos, end - pos);
    pos = end + 1;
    ++line;
    if (l.ends_with('\r')) l.remove_suffix(1);
    size_t first = l.find_first_not_of(" \t");
    if (first == std::string_view::npos || l[first] == '#') continue;
    bool marker = (l.starts_with("---") || l.starts_with("...")) && (l.size() == 3 || l[3] == ' ' || l[3] == '\t');
    if (marker) {
      if (scan.first_content.line > 0 && pending_marker.line == 0) pending_marker = {line, 1};
      size_t rest = l.find_first_not_of(" \t", 3);
      if (rest == std::string_view::npos || l[rest] == '#') continue;  // nothing else on the marker's line
    } else if (scan.first_content.line == 0 && l[0] == '%') {
      continue;  // a directive such as %YAML 1.2
    }
    if (scan.first_content.line == 0) {
      scan.first_content = {line, static_cast<int>(first) + 1};
      scan.first_char = l[first];
    } else if (pending_marker.line > 0 && scan.second_document.line == 0) {
      scan.second_document = pending_marker;
    }
  }
  return scan;
}

struct InputProblem {
  Loc loc;
  std::string message;
  std::string hint;
};

std::string size_text(size_t bytes) {
  if (bytes >= (size_t{1} << 20)) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes) + " bytes";
}

InputProblem too_big(std::string what) {
  return {{},
          "the topology is " + what + ", over the limit of " + size_text(kMaxTopologyBytes),
          "a 5,000-node topology is under 1 MiB: check that this is the topology file (docs/topology.md, "
          "\"Input limits\")"};
}

// What YAML 1.2 allows in a stream (c-printable): tab, line breaks and printable Unicode in
// well-formed UTF-8. yaml-cpp takes NUL bytes, broken UTF-8 and control characters anywhere,
// comments included, so the bytes are checked before it sees them. A UTF-8 byte order mark is
// accepted at the very start (YAML allows it; some Windows editors write it) and nowhere else.
std::optional<InputProblem> check_bytes(std::string_view text) {
  if (text.size() > kMaxTopologyBytes) return too_big(size_text(text.size()));
  size_t i = text.starts_with("\xef\xbb\xbf") ? 3 : 0;
  int line = 1, column = 1;
  char buf[64];
  while (i < text.size()) {
    unsigned char b = static_cast<unsigned char>(text[i]);
    Loc here{line, column};
    if (b == '\n') {
      ++line, column = 1, ++i;
      continue;
    }
    if (b == 0)
      return InputProblem{here, "a NUL byte: the file is binary or damaged",
                          "a topology is UTF-8 text; remove the byte or restore the file"};
    Utf8Char u = decode_utf8(text, i);
    if (u.length == 0) {
      std::snprintf(buf, sizeof buf, "0x%02X", b);
      return InputProblem{here,
                          std::string("invalid UTF-8 (byte ") + buf +
                              " starts no well-formed character: malformed, overlong, a surrogate or cut short)",
                          "save the file as UTF-8, e.g. iconv -f latin1 -t utf-8"};
    }
    char32_t c = u.code;
    if (c == 0xfeff)
      return InputProblem{here, "a byte order mark (U+FEFF) after the start of the file",
                          "remove it; a byte order mark may only be the file's first character"};
    bool printable = c == '\t' || c == '\r' || (c >= 0x20 && c <= 0x7e) || c == 0x85 ||
                     (c >= 0xa0 && c <= 0xfffd) || c >= 0x10000;
    if (!printable) {
      std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(c));
      return InputProblem{here, std::string("control character ") + buf + " is not allowed in YAML",
                          "remove it; YAML text holds only tabs, line breaks and printable characters"};
    }
    i += u.length;
    ++column;
  }
  return std::nullopt;
}

// yaml-cpp 0.7 is lenient where YAML is not: it takes a quote never closed before the end of the
// file, a line without ':' in a mapping (as a key with no value), and drops whatever follows a
// complete top-level node ("- a" then "b: 1"). libyaml's parser is strict, streams events
// (aliases are never expanded) and keeps no recursion, so it checks the syntax first.
std::optional<InputProblem> check_syntax(std::string_view text) {
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) return InputProblem{{}, "out of memory while reading the YAML", ""};
  yaml_parser_set_input_string(&p, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  std::optional<InputProblem> out;
  while (true) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p, &ev)) {
      auto at = [](const yaml_mark_t& m) { return Loc{static_cast<int>(m.line) + 1, static_cast<int>(m.column) + 1}; };
      std::string problem = p.problem ? p.problem : "malformed YAML";
      std::string context = p.context ? p.context : "";
      // The two scans that run to where the mistake shows are reported where they started.
      if (context == "while scanning a quoted scalar")
        out = InputProblem{at(p.context_mark), "YAML syntax error: this quote is never closed",
                           "add the closing quote at the end of the value"};
      else if (context == "while scanning a simple key")
        out = InputProblem{at(p.context_mark), "YAML syntax error: a key without ':' after it",
                           "write 'key: value', with a space after the ':'"};
      else
        out = InputProblem{at(p.problem_mark),
                           "YAML syntax error: " + problem +
                               (context.empty() ? "" : " (" + context + " from line " +
                                                           std::to_string(p.context_mark.line + 1) + ")"),
                           "check indentation, quotes and brackets at or just before this place"};
      break;
    }
    bool end = ev.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&ev);
    if (end) break;
  }
  yaml_parser_delete(&p);
  return out;
}

// C0 and C1 controls and DEL (or bytes that are not UTF-8, which "\\x.." escapes can make).
bool has_control(std::string_view v) {
  for (size_t i = 0; i < v.size();) {
    Utf8Char u = decode_utf8(v, i);
    if (u.length == 0 || u.code < 0x20 || (u.code >= 0x7f && u.code <= 0x9f)) return true;
    i += u.length;
  }
  return false;
}

struct Field {
  std::string key;
  YAML::Node value;
  Loc key_loc;
  Loc value_loc;  // the key's place when the value is empty (yaml-cpp marks empty values oddly)
};

// The known keys of one mapping, first occurrence of each.
struct Fields {
  std::string path;  // "cluster.apiEndpoint", "nodes[3]"; empty at the top level
  Loc loc;           // where the mapping is introduced, for "missing key" messages
  std::vector<Field> items;
  std::vector<std::string_view> suggested;  // known keys offered for a misspelt one

  const Field* find(std::string_view key) const {
    for (const Field& f : items)
      if (f.key == key) return &f;
    return nullptr;
  }
  std::string path_of(std::string_view key) const {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  }
};

// What the validator learned about one node, beside the Node itself, for the cross-node checks.
struct NodeInfo {
  Loc loc;
  Loc name_loc, role_loc, private_ip_loc, public_ip_loc, hostname_loc, pod_cidr_loc;
  bool name_ok = false;
  bool role_ok = false;
  bool hostname_ok = false;
  bool hostname_given = false;
  std::optional<uint32_t> private_ip;
  std::optional<uint32_t> public_ip;
  std::optional<Cidr> pod_cidr;  // given and well-formed
};

class Parser {
 public:
  explicit Parser(std::string file) : file_(std::move(file)) { topo_.source_path = file_; }

  TopologyResult run(const std::string& text) {
    if (auto bad = check_bytes(text)) {
      error(bad->loc, bad->message, bad->hint);
      return finish();
    }
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      error(loc_of(e.mark), "YAML syntax error: " + e.msg,
            "check indentation, quotes and brackets at or just before this place");
      return finish();
    }
    TextScan scan = scan_text(text);
    bool stray = std::string_view(",]}").find(scan.first_char) != std::string_view::npos;
    if (scan.second_document.line > 0)
      error(scan.second_document, "the file holds more than one YAML document; expected one",
            "remove this document marker and everything after it");
    else if (!(root.IsNull() && stray))
      if (auto bad = check_syntax(text)) {
        error(bad->loc, bad->message, bad->hint);
        return finish();
      }
    if (root.IsNull()) {
      if (scan.first_content.line == 0)
        error({}, "the topology is empty", "start from examples/aws-ha.yaml");
      else if (stray)
        error(scan.first_content, std::string("YAML syntax error: unexpected '") + scan.first_char + "'",
              "remove it, or quote the value it belongs to");
      else
        error(scan.first_content, "the top level must be a mapping, not empty",
              "start with 'cluster:' and 'nodes:' as in examples/aws-ha.yaml");
      return finish();
    }
    if (!root.IsMap()) {
      error(loc_of(root.Mark()), std::string("the top level must be a mapping, not ") + describe(root),
            "start with 'cluster:' and 'nodes:' as in examples/aws-ha.yaml");
      return finish();
    }
    Fields top = check_mapping(root, "", loc_of(root.Mark()), kTopLevelKeys);
    parse_cluster(top);
    parse_nodes(top);
    parse_aws(top);
    parse_etcd(top);
    cross_checks();
    if (errors_ == 0) assign_pod_cidrs();
    return finish();
  }

 private:
  void report(Diagnostic::Severity severity, Loc loc, std::string message, std::string hint) {
    Diagnostic d;
    d.severity = severity;
    d.file = file_;
    d.line = loc.line;
    d.column = loc.column;
    d.message = std::move(message);
    d.hint = std::move(hint);
    diags_.push_back(std::move(d));
  }
  void error(Loc loc, std::string message, std::string hint) {
    ++errors_;
    report(Diagnostic::Severity::Error, loc, std::move(message), std::move(hint));
  }
  void warning(Loc loc, std::string message, std::string hint) {
    report(Diagnostic::Severity::Warning, loc, std::move(message), std::move(hint));
  }

  TopologyResult finish() {
    // Top to bottom, as the user reads the file; problems with no place last.
    std::stable_sort(diags_.begin(), diags_.end(), [](const Diagnostic& a, const Diagnostic& b) {
      auto key = [](const Diagnostic& d) { return std::pair(d.line == 0 ? INT32_MAX : d.line, d.column); };
      return key(a) < key(b);
    });
    if (diags_.size() > kMaxDiagnostics) {
      size_t more = diags_.size() - (kMaxDiagnostics - 1);
      diags_.resize(kMaxDiagnostics - 1);
      Diagnostic d;
      d.file = file_;
      d.message = std::to_string(more) + " more problems not shown";
      d.hint = "fix the ones above and run again";
      d.severity = errors_ > 0 ? Diagnostic::Severity::Error : Diagnostic::Severity::Warning;
      diags_.push_back(std::move(d));
    }
    TopologyResult r;
    r.diagnostics = std::move(diags_);
    if (errors_ == 0) r.topology = std::move(topo_);
    return r;
  }

  // Checks keys (unknown, duplicate, not a plain name) and returns the known ones.
  Fields check_mapping(const YAML::Node& map, std::string path, Loc loc, std::span<const std::string_view> known) {
    Fields out;
    out.path = std::move(path);
    out.loc = loc;
    std::string where = out.path.empty() ? "at the top level" : "in " + out.path;
    std::unordered_map<std::string, Loc> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      Loc key_loc = loc_of(it->first.Mark());
      if (!it->first.IsScalar()) {
        error(key_loc, "a key " + where + " is " + describe(it->first) + ", not a name",
              "keys are plain names such as 'name' or 'podCIDR'");
        continue;
      }
      std::string key = it->first.Scalar();
      auto [first, inserted] = seen.emplace(key, key_loc);
      if (!inserted) {
        error(key_loc, "duplicate key '" + key + "' " + where,
              "it is already set" + at_line(first->second) + "; keep one of them");
        continue;
      }
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        auto suggestion = closest(key, known);
        if (suggestion) out.suggested.push_back(*suggestion);
        error(key_loc, "unknown key '" + key + "' " + where,
              suggestion ? "did you mean '" + std::string(*suggestion) + "'?"
                         : "valid keys " + where + ": " + join_list(known));
        continue;
      }
      Field f;
      f.key = key;
      f.value = it->second;
      f.key_loc = key_loc;
      f.value_loc = it->second.IsNull() ? key_loc : loc_of(it->second.Mark());
      out.items.push_back(std::move(f));
    }
    return out;
  }

  void missing(const Fields& parent, std::string_view key, std::string_view example) {
    // A misspelt key already said "did you mean"; "missing" on top would be noise.
    if (std::find(parent.suggested.begin(), parent.suggested.end(), key) != parent.suggested.end()) return;
    std::string hint = "add '" + std::string(key) + ": " + std::string(example) + "'";
    if (!parent.path.empty()) hint += " under " + parent.path;
    error(parent.loc, "missing required key '" + parent.path_of(key) + "'", hint);
  }

  // A mapping-valued key; nullptr (after reporting when required or mistyped) when there is none.
  const Field* mapping_field(const Fields& parent, std::string_view key, bool required, std::string_view example) {
    const Field* f = parent.find(key);
    if (!f || f->value.IsNull()) {
      if (required) missing(parent, key, example);
      return nullptr;
    }
    if (!f->value.IsMap()) {
      error(f->value_loc, parent.path_of(key) + " must be a mapping, not " + describe(f->value),
            "write it as '" + std::string(key) + ": " + std::string(example) + "'");
      return nullptr;
    }
    return f;
  }

  // A scalar as text; nullopt when absent (reported if required) or mistyped (reported).
  std::optional<std::string> string_field(const Fields& parent, std::string_view key, bool required,
                                          std::string_view example, Loc* loc = nullptr) {
    const Field* f = parent.find(key);
    if (loc) *loc = f ? f->value_loc : parent.loc;
    if (!f || f->value.IsNull()) {
      if (required) missing(parent, key, example);
      return std::nullopt;
    }
    if (!f->value.IsScalar()) {
      error(f->value_loc, parent.path_of(key) + " must be a single value, not " + describe(f->value),
            "write it as '" + std::string(key) + ": " + std::string(example) + "'");
      return std::nullopt;
    }
    // Double-quoted escapes ("\e[31m", "\n") make control characters the bytes check never saw;
    // no value needs one, and they would reach user-data, unit files and terminals.
    const std::string& v = f->value.Scalar();
    if (has_control(v)) {
      error(f->value_loc, parent.path_of(key) + " holds a control character: '" + v + "'",
            "remove it; no topology value needs tabs, line breaks or escape sequences");
      return std::nullopt;
    }
    return v;
  }

  // A whole number in [min, max]; nullopt when absent or invalid (reported).
  std::optional<int> int_field(const Fields& parent, std::string_view key, int min, int max, std::string_view example,
                               Loc* loc = nullptr) {
    Loc l;
    auto text = string_field(parent, key, false, example, &l);
    if (loc) *loc = l;
    if (!text) return std::nullopt;
    std::string path = parent.path_of(key);
    if (parent.find(key)->value.Tag() != "?") {
      error(l, path + " must be a number, not the string \"" + *text + "\"",
            "remove the quotes: '" + std::string(key) + ": " + std::string(example) + "'");
      return std::nullopt;
    }
    std::string_view digits = *text;
    bool negative = digits.starts_with('-');
    if (negative) digits.remove_prefix(1);
    auto v = parse_plain_decimal(digits, 9);
    if (!v) {
      error(l, path + " must be a whole number, not '" + *text + "'",
            "write decimal digits, e.g. '" + std::string(key) + ": " + std::string(example) + "'");
      return std::nullopt;
    }
    long long value = negative ? -static_cast<long long>(*v) : static_cast<long long>(*v);
    if (value < min || value > max) {
      error(l, path + " is " + *text + ", outside the valid range " + std::to_string(min) + "-" + std::to_string(max),
            "use a number from " + std::to_string(min) + " to " + std::to_string(max));
      return std::nullopt;
    }
    return static_cast<int>(value);
  }

  // true or false, unquoted; nullopt when absent or invalid (reported).
  std::optional<bool> bool_field(const Fields& parent, std::string_view key) {
    Loc l;
    auto text = string_field(parent, key, false, "true", &l);
    if (!text) return std::nullopt;
    bool plain = parent.find(key)->value.Tag() == "?";
    if (plain && (*text == "true" || *text == "false")) return *text == "true";
    error(l, parent.path_of(key) + " must be true or false, not " + (plain ? "'" : "the string \"") + *text +
                 (plain ? "'" : "\""),
          "write '" + std::string(key) + ": true' or '" + std::string(key) + ": false', without quotes");
    return std::nullopt;
  }

  // One of a fixed set of words; nullopt when absent or invalid (reported).
  template <typename T>
  std::optional<T> enum_field(const Fields& parent, std::string_view key, bool required, std::string_view what,
                              std::span<const std::string_view> names, std::span<const T> values, Loc* loc = nullptr) {
    Loc l;
    auto text = string_field(parent, key, required, names[0], &l);
    if (loc) *loc = l;
    if (!text) return std::nullopt;
    for (size_t i = 0; i < names.size(); ++i)
      if (*text == names[i]) return values[i];
    auto suggestion = closest(*text, names);
    error(l, parent.path_of(key) + ": '" + *text + "' is not a valid " + std::string(what),
          (suggestion ? "did you mean '" + std::string(*suggestion) + "'? " : std::string()) +
              "valid values: " + join_list(names));
    return std::nullopt;
  }

  // A CIDR-valued key; nullopt when absent or invalid (reported).
  std::optional<Cidr> cidr_field(const Fields& parent, std::string_view key, Loc* loc) {
    auto text = string_field(parent, key, false, "10.200.0.0/16", loc);
    if (!text) return std::nullopt;
    auto [message, hint] = cidr_problem(*text);
    if (!message.empty()) {
      error(*loc, parent.path_of(key) + ": " + message, hint);
      return std::nullopt;
    }
    return Cidr::parse(*text);
  }

  std::optional<uint32_t> ip_field(const Fields& parent, std::string_view key, bool required, Loc* loc) {
    auto text = string_field(parent, key, required, "10.0.1.10", loc);
    if (!text) return std::nullopt;
    auto ip = parse_ipv4(*text);
    if (!ip)
      error(*loc, parent.path_of(key) + ": '" + *text + "' is not a valid IPv4 address",
            "write four decimal numbers from 0 to 255 without leading zeros, separated by dots, e.g. 10.0.1.10");
    return ip;
  }

  void parse_cluster(const Fields& top) {
    const Field* cf = mapping_field(top, "cluster", true, "{name: kthw, apiEndpoint: {host: ...}}");
    if (!cf) {
      // Keep the defaults so node checks still run against them.
      pod_cidr_ = Cidr::parse(topo_.cluster.pod_cidr);
      service_cidr_ = Cidr::parse(topo_.cluster.service_cidr);
      node_prefix_ = topo_.cluster.node_pod_cidr_prefix;
      return;
    }
    cluster_loc_ = cf->key_loc;
    Fields c = check_mapping(cf->value, "cluster", cf->key_loc, kClusterKeys);
    Cluster& cl = topo_.cluster;

    Loc l;
    if (auto name = string_field(c, "name", true, "kthw", &l)) {
      if (!is_dns_label(*name))
        error(l, "cluster.name: '" + *name + "' is not a DNS-1123 label", dns_hint(*name, false));
      cl.name = *name;
    }

    if (auto version = string_field(c, "kubernetesVersion", false, "v1.32.3", &l)) {
      if (!is_supported_kubernetes_version(*version)) {
        std::string hint = "supported versions: " + supported_kubernetes_versions() + " (x = any patch number)";
        if (is_supported_kubernetes_version("v" + *version)) hint = "write it with a leading 'v': v" + *version;
        error(l, "cluster.kubernetesVersion: unsupported Kubernetes version '" + *version + "'", hint);
      }
      cl.kubernetes_version = *version;
    }

    if (const Field* af = mapping_field(c, "apiEndpoint", true, "{host: api.kthw.example.com, port: 6443}")) {
      Fields a = check_mapping(af->value, "cluster.apiEndpoint", af->key_loc, kApiEndpointKeys);
      if (auto host = string_field(a, "host", true, "api.kthw.example.com", &api_host_loc_)) {
        if (looks_like_ipv4(*host)) {
          api_host_ip_ = parse_ipv4(*host);
          if (!api_host_ip_)
            error(api_host_loc_, "cluster.apiEndpoint.host: '" + *host + "' is not a valid IPv4 address",
                  "write four decimal numbers from 0 to 255, e.g. 10.0.1.5, or a DNS name");
        } else if (!is_dns_subdomain(*host)) {
          error(api_host_loc_, "cluster.apiEndpoint.host: '" + *host + "' is not a valid DNS name or IPv4 address",
                host->find_first_of(":/") != std::string::npos
                    ? "give only the load balancer's name or address, without scheme or port (the port goes in "
                      "cluster.apiEndpoint.port)"
                    : dns_hint(*host, true));
        }
        cl.api_host = *host;
      }
      if (auto port = int_field(a, "port", 1, 65535, "6443")) cl.api_port = *port;
    }

    pod_cidr_loc_ = cluster_loc_;
    pod_cidr_ = Cidr::parse(cl.pod_cidr);
    if (c.find("podCIDR")) pod_cidr_ = cidr_field(c, "podCIDR", &pod_cidr_loc_);
    if (pod_cidr_) cl.pod_cidr = pod_cidr_->str();

    service_cidr_loc_ = cluster_loc_;
    service_cidr_ = Cidr::parse(cl.service_cidr);
    if (c.find("serviceCIDR")) service_cidr_ = cidr_field(c, "serviceCIDR", &service_cidr_loc_);
    if (service_cidr_) {
      cl.service_cidr = service_cidr_->str();
      if (service_cidr_->prefix < kMinServicePrefix || service_cidr_->prefix > kMaxServicePrefix) {
        error(service_cidr_loc_,
              "cluster.serviceCIDR " + cl.service_cidr + " has a /" + std::to_string(service_cidr_->prefix) +
                  " prefix, outside /" + std::to_string(kMinServicePrefix) + " to /" +
                  std::to_string(kMaxServicePrefix),
              "Kubernetes allows at most 20 host bits and cluster DNS needs the tenth address; e.g. 10.32.0.0/24");
        service_cidr_.reset();
      }
    }

    node_prefix_loc_ = cluster_loc_;
    node_prefix_ = cl.node_pod_cidr_prefix;
    if (c.find("nodePodCIDRPrefix")) {
      node_prefix_ = int_field(c, "nodePodCIDRPrefix", 1, kMaxNodePodPrefix, "24", &node_prefix_loc_);
      if (node_prefix_) cl.node_pod_cidr_prefix = *node_prefix_;
    }
    if (pod_cidr_ && node_prefix_ && *node_prefix_ < pod_cidr_->prefix) {
      error(node_prefix_loc_,
            "cluster.nodePodCIDRPrefix /" + std::to_string(*node_prefix_) +
                " is larger than the whole cluster podCIDR " + pod_cidr_->str(),
            "each worker's block is carved out of podCIDR: use a prefix of at least /" +
                std::to_string(pod_cidr_->prefix) + " (e.g. /24)");
      node_prefix_.reset();
    }

    if (auto domain = string_field(c, "clusterDomain", false, "cluster.local", &l)) {
      if (!is_dns_subdomain(*domain))
        error(l, "cluster.clusterDomain: '" + *domain + "' is not a DNS subdomain", dns_hint(*domain, true));
      cl.cluster_domain = *domain;
    }

    if (auto k = enum_field<KeyType>(c, "keyType", false, "key type", kKeyTypeNames, kKeyTypes)) cl.key_type = *k;

    if (const Field* vf = mapping_field(c, "validity", false, "{caDays: 3650, leafDays: 365, renewBeforeDays: 30}")) {
      Fields v = check_mapping(vf->value, "cluster.validity", vf->key_loc, kValidityKeys);
      constexpr int kMaxDays = 100 * 366;
      Loc ca_loc = vf->key_loc, leaf_loc = vf->key_loc, renew_loc = vf->key_loc;
      auto ca = int_field(v, "caDays", 1, kMaxDays, "3650", &ca_loc);
      auto leaf = int_field(v, "leafDays", 1, kMaxDays, "365", &leaf_loc);
      auto renew = int_field(v, "renewBeforeDays", 1, kMaxDays, "30", &renew_loc);
      if (ca) cl.ca_validity_days = *ca;
      if (leaf) cl.leaf_validity_days = *leaf;
      if (renew) cl.renew_before_days = *renew;
      // Cross-field rules use the effective values: given, else the default; skip invalid ones.
      auto effective = [&](std::optional<int> given, std::string_view key, int def) {
        return v.find(key) ? given : std::optional<int>(def);
      };
      auto ca_eff = effective(ca, "caDays", Cluster{}.ca_validity_days);
      auto leaf_eff = effective(leaf, "leafDays", Cluster{}.leaf_validity_days);
      auto renew_eff = effective(renew, "renewBeforeDays", Cluster{}.renew_before_days);
      if (leaf_eff && renew_eff && *renew_eff >= *leaf_eff)
        error(renew ? renew_loc : leaf_loc,
              "cluster.validity.renewBeforeDays (" + std::to_string(*renew_eff) + ") must be less than leafDays (" +
                  std::to_string(*leaf_eff) + ")",
              "otherwise every certificate is due for renewal as soon as it is issued");
      if (ca_eff && leaf_eff && *leaf_eff > *ca_eff)
        error(leaf ? leaf_loc : ca_loc,
              "cluster.validity.leafDays (" + std::to_string(*leaf_eff) + ") exceeds caDays (" +
                  std::to_string(*ca_eff) + ")",
              "a certificate cannot outlive the CA that signed it; lower leafDays or raise caDays");
    }

    if (const Field* ef = mapping_field(c, "encryption", false, "{provider: aescbc}")) {
      Fields e = check_mapping(ef->value, "cluster.encryption", ef->key_loc, kEncryptionKeys);
      if (auto p =
              enum_field<EncryptionProvider>(e, "provider", false, "encryption provider", kProviderNames, kProviders))
        cl.encryption_provider = *p;
    }

    if (const Field* hf =
            mapping_field(c, "hardening", false, "{alwaysPullImages: true, denyServiceExternalIPs: true}")) {
      Fields h = check_mapping(hf->value, "cluster.hardening", hf->key_loc, kHardeningKeys);
      if (auto b = bool_field(h, "alwaysPullImages")) cl.hardening.always_pull_images = *b;
      if (auto b = bool_field(h, "denyServiceExternalIPs")) cl.hardening.deny_service_external_ips = *b;
    }
  }

  void parse_nodes(const Fields& top) {
    const Field* nf = top.find("nodes");
    if (!nf) {
      missing(top, "nodes", "[{name: control-0, role: control-plane, privateIP: 10.0.1.10}, ...]");
      return;
    }
    nodes_loc_ = nf->key_loc;
    if (nf->value.IsNull() || (nf->value.IsSequence() && nf->value.size() == 0)) {
      error(nf->key_loc, "no nodes: the nodes list is empty",
            "list every machine under 'nodes:', at least one with role control-plane");
      return;
    }
    if (!nf->value.IsSequence()) {
      error(nf->value_loc, std::string("nodes must be a list, not ") + describe(nf->value),
            "start each node with '- name: ...' under 'nodes:'");
      return;
    }
    if (nf->value.size() > kMaxNodes) {
      error(nf->key_loc,
            "nodes lists " + std::to_string(nf->value.size()) + " nodes, more than the " +
                std::to_string(kMaxNodes) + " a Kubernetes cluster supports",
            "split the machines into several clusters (docs/topology.md, \"Input limits\")");
      return;
    }
    topo_.nodes.reserve(nf->value.size());
    infos_.reserve(nf->value.size());
    size_t index = 0;
    for (const YAML::Node& item : nf->value) {
      std::string path = "nodes[" + std::to_string(index++) + "]";
      Loc loc = loc_of(item.Mark());
      if (!item.IsMap()) {
        error(item.IsNull() ? nf->key_loc : loc, path + " must be a mapping, not " + std::string(describe(item)),
              "write '- name: worker-0' followed by the node's other keys, indented");
        continue;
      }
      parse_node(check_mapping(item, path, loc, kNodeKeys), loc);
    }
  }

  void parse_node(const Fields& f, Loc loc) {
    Node n;
    NodeInfo info;
    info.loc = loc;
    if (auto name = string_field(f, "name", true, "worker-0", &info.name_loc)) {
      info.name_ok = is_dns_label(*name);
      if (!info.name_ok)
        error(info.name_loc, f.path + ".name: '" + *name + "' is not a DNS-1123 label", dns_hint(*name, false));
      n.name = *name;
    }
    if (auto role = enum_field<Role>(f, "role", true, "role", kRoleNames, kRoles, &info.role_loc)) {
      n.role = *role;
      info.role_ok = true;
    }
    if ((info.private_ip = ip_field(f, "privateIP", true, &info.private_ip_loc)))
      n.private_ip = format_ipv4(*info.private_ip);
    if ((info.public_ip = ip_field(f, "publicIP", false, &info.public_ip_loc)))
      n.public_ip = format_ipv4(*info.public_ip);
    if (auto host = string_field(f, "hostname", false, "ip-10-0-1-20", &info.hostname_loc)) {
      info.hostname_given = true;
      info.hostname_ok = is_dns_subdomain(*host);
      if (!info.hostname_ok)
        error(info.hostname_loc, f.path + ".hostname: '" + *host + "' is not a DNS-1123 subdomain",
              dns_hint(*host, true));
      n.hostname = *host;
    } else if (!f.find("hostname")) {
      n.hostname = n.name;
      info.hostname_ok = info.name_ok;
      info.hostname_loc = info.name_loc;
    }
    Loc id_loc;
    if (auto id = string_field(f, "instanceId", false, "i-0123456789abcdef0", &id_loc)) {
      bool ok = id->size() > 2 && id->size() <= 34 && id->rfind("i-", 0) == 0 &&
                std::all_of(id->begin() + 2, id->end(), [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'); });
      if (!ok)
        error(id_loc, f.path + ".instanceId: '" + *id + "' is not an EC2 instance id",
              "write it as i- and lowercase letters and digits, e.g. i-0123456789abcdef0, or leave it out");
      n.instance_id = *id;
    }
    if (f.find("podCIDR")) {
      info.pod_cidr = cidr_field(f, "podCIDR", &info.pod_cidr_loc);
      if (info.pod_cidr) n.pod_cidr = info.pod_cidr->str();
    }
    topo_.nodes.push_back(std::move(n));
    infos_.push_back(info);
  }

  // The optional `etcd` section: the snapshot timer's settings (docs/backup.md).
  void parse_etcd(const Fields& top) {
    const Field* ef = mapping_field(top, "etcd", false, "{backup: {schedule: hourly, keep: 24}}");
    if (!ef) return;
    Fields e = check_mapping(ef->value, "etcd", ef->key_loc, kEtcdKeys);
    const Field* bf = mapping_field(e, "backup", false, "{schedule: hourly, keep: 24, maxAgeDays: 7}");
    if (!bf) return;
    Fields b = check_mapping(bf->value, "etcd.backup", bf->key_loc, kEtcdBackupKeys);
    EtcdBackup& out = topo_.etcd_backup;
    Loc l;
    if (auto s = string_field(b, "schedule", false, "hourly", &l)) {
      // The value becomes a unit file line: only what a calendar expression needs, so that no
      // newline, '%' specifier or quote can reach systemd.
      bool ok = !s->empty() && s->size() <= 100 && std::all_of(s->begin(), s->end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || std::string_view(" *-:,./~").find(ch) != std::string_view::npos;
      }) && s->front() != ' ' && s->back() != ' ';
      if (!ok)
        error(l, "etcd.backup.schedule: '" + *s + "' is not a systemd calendar expression kbundle accepts",
              "use hourly, daily, or an OnCalendar= expression of letters, digits, spaces and *-:,./~ such as "
              "'*-*-* 00/4:00:00' (check it with systemd-analyze calendar)");
      else
        out.schedule = *s;
    }
    if (auto k = int_field(b, "keep", 1, 10000, "24")) out.keep = *k;
    if (auto d = int_field(b, "maxAgeDays", 1, 3650, "7")) out.max_age_days = *d;
    if (auto d = string_field(b, "dir", false, "/var/backups/etcd", &l)) {
      if (std::string why = backup_dir_problem(*d); !why.empty())
        error(l, "etcd.backup.dir: " + why, "use a directory of its own, e.g. /var/backups/etcd");
      else
        out.dir = *d;
    }
  }

  // The optional `aws` section (read by `kbundle aws`; `gen` ignores it).
  void parse_aws(const Fields& top) {
    const Field* af = mapping_field(top, "aws", false, "{region: eu-west-1, adminCIDR: 203.0.113.0/24, ...}");
    if (!af) return;
    Fields a = check_mapping(af->value, "aws", af->key_loc, kAwsKeys);
    AwsSettings aws;
    Loc l;
    if (auto region = string_field(a, "region", false, "eu-west-1", &l)) {
      // Shape only; `kbundle aws` checks it against the regions it knows.
      bool ok = !region->empty() && std::all_of(region->begin(), region->end(), [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
      }) && region->find('-') != std::string::npos && std::isdigit(static_cast<unsigned char>(region->back()));
      if (!ok) error(l, "aws.region: '" + *region + "' is not an AWS region name", "write it as e.g. eu-west-1");
      aws.region = *region;
    }
    Loc vpc_loc = af->key_loc, subnet_loc = af->key_loc;
    std::optional<Cidr> vpc = Cidr::parse(aws.vpc_cidr), subnet = Cidr::parse(aws.subnet_cidr);
    if (a.find("vpcCIDR")) vpc = cidr_field(a, "vpcCIDR", &vpc_loc);
    if (a.find("subnetCIDR")) subnet = cidr_field(a, "subnetCIDR", &subnet_loc);
    for (auto [c, loc, key] : {std::tuple(&vpc, vpc_loc, "vpcCIDR"), std::tuple(&subnet, subnet_loc, "subnetCIDR")}) {
      if (*c && ((*c)->prefix < 16 || (*c)->prefix > 28)) {
        error(loc, std::string("aws.") + key + " " + (*c)->str() + " has a /" + std::to_string((*c)->prefix) +
                       " prefix; AWS allows /16 to /28",
              "e.g. vpcCIDR 10.0.0.0/16 and subnetCIDR 10.0.1.0/24");
        c->reset();
      }
    }
    if (vpc) aws.vpc_cidr = vpc->str();
    if (subnet) aws.subnet_cidr = subnet->str();
    if (vpc && subnet && !vpc->contains(*subnet)) {
      error(subnet_loc, "aws.subnetCIDR " + subnet->str() + " is outside aws.vpcCIDR " + vpc->str(),
            "the subnet is carved out of the VPC; pick a block inside " + vpc->str());
      subnet.reset();
    }
    if (vpc && pod_cidr_ && vpc->overlaps(*pod_cidr_))
      error(vpc_loc, "aws.vpcCIDR " + vpc->str() + " overlaps cluster.podCIDR " + pod_cidr_->str(),
            "pod addresses are routed to the workers through the VPC route table; pick disjoint ranges");
    if (vpc && service_cidr_ && vpc->overlaps(*service_cidr_))
      error(vpc_loc, "aws.vpcCIDR " + vpc->str() + " overlaps cluster.serviceCIDR " + service_cidr_->str(),
            "service IPs must not be machine addresses; pick disjoint ranges");
    if (subnet) {
      // AWS keeps the first four addresses of a subnet and its last one.
      for (size_t i = 0; i < infos_.size() && i < topo_.nodes.size(); ++i) {
        const NodeInfo& info = infos_[i];
        if (!info.private_ip) continue;
        uint32_t offset = *info.private_ip - subnet->network;
        if (!subnet->contains(*info.private_ip))
          error(info.private_ip_loc,
                node_label(i) + ": privateIP " + topo_.nodes[i].private_ip + " is outside aws.subnetCIDR " +
                    subnet->str(),
                "every instance gets its address from the subnet; use one from " + subnet->address_at(4) + " to " +
                    subnet->address_at(subnet->size() - 2));
        else if (offset < 4 || offset == subnet->size() - 1)
          error(info.private_ip_loc,
                node_label(i) + ": privateIP " + topo_.nodes[i].private_ip + " is reserved by AWS in subnet " +
                    subnet->str(),
                "AWS keeps the first four addresses and the last one; use one from " + subnet->address_at(4) +
                    " to " + subnet->address_at(subnet->size() - 2));
      }
    }
    if (auto zone = string_field(a, "availabilityZone", false, "eu-west-1a", &l)) aws.availability_zone = *zone;

    auto instance_type = [&](const Fields& f, std::string_view key, std::string& out) {
      if (auto t = string_field(f, key, false, "t3.medium", &l)) {
        size_t dot = t->find('.');
        bool ok = dot != std::string::npos && dot > 0 && dot + 1 < t->size() &&
                  std::all_of(t->begin(), t->end(), [](char ch) {
                    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-';
                  });
        if (!ok) error(l, f.path_of(key) + ": '" + *t + "' is not an EC2 instance type", "e.g. t3.medium or m7i.large");
        out = *t;
      }
    };
    if (const Field* tf = mapping_field(a, "instanceTypes", false, "{controlPlane: t3.medium, worker: t3.medium}")) {
      Fields t = check_mapping(tf->value, "aws.instanceTypes", tf->key_loc, kAwsInstanceTypeKeys);
      instance_type(t, "controlPlane", aws.control_plane_instance_type);
      instance_type(t, "worker", aws.worker_instance_type);
    }

    const char* image_example = "{name: 'ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*', owner: '099720109477'}";
    if (const Field* imf = mapping_field(a, "image", true, image_example)) {
      Fields im = check_mapping(imf->value, "aws.image", imf->key_loc, kAwsImageKeys);
      Loc id_loc;
      if (auto id = string_field(im, "id", false, "ami-0123456789abcdef0", &id_loc)) {
        bool ok = id->starts_with("ami-") && id->size() >= 12 && id->size() <= 21 &&
                  std::all_of(id->begin() + 4, id->end(), [](char ch) {
                    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
                  });
        if (!ok) error(id_loc, "aws.image.id: '" + *id + "' is not an AMI id", "write it as ami- and 8 or 17 hex digits");
        aws.image_id = *id;
      }
      if (auto name = string_field(im, "name", false, "ubuntu/images/*", &l)) aws.image_name = *name;
      if (auto owner = string_field(im, "owner", false, "099720109477", &l)) aws.image_owner = *owner;
      if ((im.find("id") != nullptr) == (im.find("name") != nullptr))
        error(imf->key_loc,
              im.find("id") ? "aws.image: give either id or name, not both" : "aws.image: give id or name",
              "id names one AMI; name is a filter (with * wildcards) whose newest match is used");
      if (im.find("owner") && im.find("id"))
        error(imf->key_loc, "aws.image.owner goes with aws.image.name, not with id", "remove owner, or use name");
    }

    if (auto key = string_field(a, "sshPublicKeyFile", true, "~/.ssh/id_ed25519.pub", &l)) aws.ssh_public_key_file = *key;
    if (a.find("adminCIDR")) {
      if (auto admin = cidr_field(a, "adminCIDR", &l)) aws.admin_cidr = admin->str();
    } else {
      missing(a, "adminCIDR", "203.0.113.0/24");
    }

    if (const Field* uf = mapping_field(a, "userData", false, "{bundles: 's3://BUCKET/clusters/kthw/'}")) {
      Fields u = check_mapping(uf->value, "aws.userData", uf->key_loc, kAwsUserDataKeys);
      Loc bundles_loc, bundle_loc, installer_loc;
      // Bundles hold private keys and the installer runs as root: https only, never http.
      auto url = [&](std::string_view key, std::string& out, Loc* loc) {
        if (auto v = string_field(u, key, false, "https://example.com/{node}.kbundle", loc)) {
          if (v->starts_with("http://"))
            error(*loc, u.path_of(key) + ": '" + *v + "' is plain http://, which anyone on the path can read and change",
                  "use https://, or better `bundles: s3://BUCKET/PREFIX/` (per-node presigned URLs)");
          else if (!v->starts_with("https://") || v->size() == 8)
            error(*loc, u.path_of(key) + ": '" + *v + "' is not an https:// URL", "e.g. https://example.com/{node}.kbundle");
          out = *v;
        }
      };
      if (auto v = string_field(u, "bundles", false, "s3://BUCKET/clusters/kthw/", &bundles_loc)) {
        std::string why;
        if (!parse_s3_location(*v, &why))
          error(bundles_loc, "aws.userData.bundles: '" + *v + "': " + why, "e.g. s3://my-bucket/clusters/kthw/");
        else if (!v->ends_with('/'))
          error(bundles_loc, "aws.userData.bundles: '" + *v + "' does not end with '/'",
                "the prefix is a folder: s3://BUCKET/PREFIX/, as given to `kbundle publish --to`");
        aws.bundles = *v;
      }
      url("bundleURL", aws.bundle_url, &bundle_loc);
      url("installerURL", aws.installer_url, &installer_loc);
      if (u.find("bundles") && u.find("bundleURL"))
        error(bundle_loc, "aws.userData: give bundles or bundleURL, not both",
              "bundles (s3://BUCKET/PREFIX/) is the recommended way: each node gets a URL for its own bundle only");
      else if (!u.find("bundles") && !u.find("bundleURL"))
        error(uf->key_loc, "aws.userData: give bundles or bundleURL", "e.g. bundles: s3://my-bucket/clusters/kthw/");
      if (u.find("bundles") && u.find("installerURL"))
        error(installer_loc, "aws.userData.installerURL goes with bundleURL, not with bundles",
              "with bundles the installer comes from s3://BUCKET/PREFIX/kbundle-installer (kbundle publish puts it there); "
              "remove installerURL");
      if (!aws.bundle_url.empty() && aws.bundle_url.find("{node}") == std::string::npos)
        error(bundle_loc, "aws.userData.bundleURL has no {node}", "every node fetches its own bundle: put {node} in the URL");
    }
    topo_.aws = std::move(aws);
  }

  // "node 'worker-1' (nodes[4], line 30)" for messages that name another node.
  std::string node_ref(size_t i) const {
    std::string ref = "node '" + topo_.nodes[i].name + "'";
    if (infos_[i].loc.line > 0) ref += " at line " + std::to_string(infos_[i].loc.line);
    return ref;
  }
  std::string node_label(size_t i) const {
    return infos_[i].name_ok ? "node '" + topo_.nodes[i].name + "'" : "nodes[" + std::to_string(i) + "]";
  }

  // Reports each node whose key was already used; `quiet(i, j)` suppresses follow-on reports.
  template <typename K>
  void check_unique(std::string_view what, std::string_view hint, auto&& key_of, auto&& quiet) {
    std::unordered_map<K, size_t> first;
    first.reserve(topo_.nodes.size());
    for (size_t i = 0; i < topo_.nodes.size(); ++i) {
      auto [ok, key, loc] = key_of(i);
      if (!ok) continue;
      auto [it, inserted] = first.emplace(key, i);
      if (!inserted && !quiet(it->second, i))
        error(loc,
              "duplicate " + std::string(what) + ": " + node_label(i) + " uses the same one as " + node_ref(it->second),
              std::string(hint));
    }
  }

  void cross_checks() {
    const auto& nodes = topo_.nodes;
    if (nodes.empty()) return;

    // Unique identities: one hash lookup per node, no pairwise comparison.
    check_duplicates();

    // Control-plane count: only meaningful once every role is known.
    bool all_roles = std::all_of(infos_.begin(), infos_.end(), [](const NodeInfo& i) { return i.role_ok; });
    if (all_roles && infos_.size() == nodes.size()) {
      size_t cp = 0, workers = 0;
      for (const Node& n : nodes) {
        cp += n.is_control_plane();
        workers += n.is_worker();
      }
      if (cp == 0)
        error(nodes_loc_, "no control-plane node", "set 'role: control-plane' (or 'both') on 1, 3 or 5 of the nodes");
      else if (cp % 2 == 0)
        warning(nodes_loc_, "an even number of control-plane nodes (" + std::to_string(cp) + ")",
                "etcd needs a majority: " + std::to_string(cp) + " members tolerate no more failures than " +
                    std::to_string(cp - 1) + "; use an odd number such as 3 or 5");
      if (workers == 0)
        warning(nodes_loc_, "no worker nodes: pods have nowhere to run",
                "add nodes with 'role: worker', or use 'role: both'");
    }

    if (pod_cidr_ && service_cidr_ && pod_cidr_->overlaps(*service_cidr_))
      error(service_cidr_loc_.line ? service_cidr_loc_ : pod_cidr_loc_,
            "cluster.serviceCIDR " + service_cidr_->str() + " overlaps cluster.podCIDR " + pod_cidr_->str(),
            "pick disjoint ranges, e.g. podCIDR 10.200.0.0/16 and serviceCIDR 10.32.0.0/24");

    if (api_host_ip_) {
      if (pod_cidr_ && pod_cidr_->contains(*api_host_ip_))
        error(api_host_loc_,
              "cluster.apiEndpoint.host " + format_ipv4(*api_host_ip_) + " is inside the pod CIDR " + pod_cidr_->str(),
              "pod and service ranges must not contain machine addresses");
      if (service_cidr_ && service_cidr_->contains(*api_host_ip_))
        error(api_host_loc_,
              "cluster.apiEndpoint.host " + format_ipv4(*api_host_ip_) + " is inside the service CIDR " +
                  service_cidr_->str(),
              "pod and service ranges must not contain machine addresses");
    }

    std::vector<std::pair<Cidr, size_t>> explicit_cidrs;
    for (size_t i = 0; i < nodes.size(); ++i) {
      const NodeInfo& info = infos_[i];
      if (info.private_ip) {
        const char* hint = "pod and service ranges must not contain node addresses; move the range or the node";
        if (pod_cidr_ && pod_cidr_->contains(*info.private_ip))
          error(info.private_ip_loc,
                node_label(i) + ": privateIP " + nodes[i].private_ip + " is inside the pod CIDR " + pod_cidr_->str(),
                hint);
        if (service_cidr_ && service_cidr_->contains(*info.private_ip))
          error(info.private_ip_loc,
                node_label(i) + ": privateIP " + nodes[i].private_ip + " is inside the service CIDR " +
                    service_cidr_->str(),
                hint);
      }
      if (!info.pod_cidr) continue;
      if (info.role_ok && !nodes[i].is_worker()) {
        error(info.pod_cidr_loc, node_label(i) + ": podCIDR is set on a control-plane-only node",
              "only workers run pods: remove podCIDR, or set 'role: both'");
        continue;
      }
      const Cidr& c = *info.pod_cidr;
      bool ok = true;
      if (node_prefix_ && c.prefix != *node_prefix_) {
        error(info.pod_cidr_loc,
              node_label(i) + ": podCIDR " + c.str() + " is a /" + std::to_string(c.prefix) +
                  ", but cluster.nodePodCIDRPrefix is /" + std::to_string(*node_prefix_),
              "give every worker a block of the same size, e.g. " +
                  Cidr{c.network & prefix_mask(*node_prefix_), *node_prefix_}.str());
        ok = false;
      }
      if (pod_cidr_ && !pod_cidr_->contains(c)) {
        error(info.pod_cidr_loc,
              node_label(i) + ": podCIDR " + c.str() + " is outside the cluster pod CIDR " + pod_cidr_->str(),
              "pick a block inside " + pod_cidr_->str() + ", or leave podCIDR out to have one assigned");
        ok = false;
      }
      if (ok) explicit_cidrs.emplace_back(c, i);
    }

    // Overlaps among explicit node pod CIDRs: sort by start, sweep with the furthest end seen so far.
    std::sort(explicit_cidrs.begin(), explicit_cidrs.end(), [](const auto& a, const auto& b) {
      return std::pair(a.first.network, a.second) < std::pair(b.first.network, b.second);
    });
    std::optional<std::pair<uint64_t, size_t>> reach;  // one past the furthest end, and whose block it is
    for (const auto& [c, i] : explicit_cidrs) {
      uint64_t end = uint64_t{c.network} + (c.prefix == 0 ? (uint64_t{1} << 32) : c.size());
      if (reach && c.network < reach->first) {
        size_t later = std::max(i, reach->second), earlier = std::min(i, reach->second);
        error(infos_[later].pod_cidr_loc,
              node_label(later) + ": podCIDR " + nodes[later].pod_cidr + " overlaps the podCIDR " +
                  nodes[earlier].pod_cidr + " of " + node_ref(earlier),
              "give each worker its own block, or leave podCIDR out to have a free one assigned");
      }
      if (!reach || end > reach->first) reach = std::pair(end, i);
    }

    // Room for one block per worker, whether given or assigned.
    if (pod_cidr_ && node_prefix_ && all_roles) {
      size_t workers = std::count_if(nodes.begin(), nodes.end(), [](const Node& n) { return n.is_worker(); });
      uint64_t blocks = uint64_t{1} << (*node_prefix_ - pod_cidr_->prefix);
      if (workers > blocks) {
        int bits = 0;
        while ((uint64_t{1} << bits) < workers) ++bits;
        error(pod_cidr_loc_,
              "cluster.podCIDR " + pod_cidr_->str() + " has room for " + std::to_string(blocks) + " /" +
                  std::to_string(*node_prefix_) + " blocks, but there are " + std::to_string(workers) + " workers",
              "use a podCIDR of /" + std::to_string(std::max(0, *node_prefix_ - bits)) +
                  " or larger, or a longer nodePodCIDRPrefix");
      }
    }
  }

  void check_duplicates() {
    const auto& nodes = topo_.nodes;
    auto never = [](size_t, size_t) { return false; };
    check_unique<std::string>(
        "node name", "node names must be unique; rename one",
        [&](size_t i) { return std::tuple(infos_[i].name_ok, nodes[i].name, infos_[i].name_loc); }, never);
    check_unique<uint32_t>(
        "privateIP", "every node needs its own private address",
        [&](size_t i) {
          const NodeInfo& n = infos_[i];
          return std::tuple(n.private_ip.has_value(), n.private_ip.value_or(0), n.private_ip_loc);
        },
        never);
    check_unique<uint32_t>(
        "publicIP", "every node needs its own public address, or none",
        [&](size_t i) {
          const NodeInfo& n = infos_[i];
          return std::tuple(n.public_ip.has_value(), n.public_ip.value_or(0), n.public_ip_loc);
        },
        never);
    check_unique<std::string>(
        "hostname", "hostnames must be unique (a node without one uses its name)",
        [&](size_t i) { return std::tuple(infos_[i].hostname_ok, nodes[i].hostname, infos_[i].hostname_loc); },
        // Two defaulted hostnames clash only because the names do, reported above.
        [&](size_t a, size_t b) { return !infos_[a].hostname_given && !infos_[b].hostname_given; });
  }

  // Workers without a pod CIDR get the lowest free blocks of the cluster pod CIDR, in node order.
  void assign_pod_cidrs() {
    if (!pod_cidr_ || !node_prefix_) return;
    std::unordered_set<uint32_t> used;
    for (const NodeInfo& info : infos_)
      if (info.pod_cidr) used.insert(info.pod_cidr->network);
    const uint32_t block = uint32_t{1} << (32 - *node_prefix_);
    uint64_t next = 0;
    for (Node& n : topo_.nodes) {
      if (!n.is_worker() || !n.pod_cidr.empty()) continue;
      while (used.count(static_cast<uint32_t>(pod_cidr_->network + next * block))) ++next;
      n.pod_cidr = Cidr{static_cast<uint32_t>(pod_cidr_->network + next * block), *node_prefix_}.str();
      ++next;
    }
  }

  std::string file_;
  Topology topo_;
  std::vector<NodeInfo> infos_;  // parallel to topo_.nodes
  std::vector<Diagnostic> diags_;
  int errors_ = 0;

  Loc cluster_loc_, nodes_loc_, api_host_loc_, pod_cidr_loc_, service_cidr_loc_, node_prefix_loc_;
  std::optional<uint32_t> api_host_ip_;
  std::optional<Cidr> pod_cidr_;      // valid or nullopt
  std::optional<Cidr> service_cidr_;  // valid or nullopt
  std::optional<int> node_prefix_;    // valid or nullopt
};

}  // namespace

TopologyResult parse_topology(const std::string& yaml_text, const std::string& file_name) {
  return Parser(file_name).run(yaml_text);
}

TopologyResult load_topology(const std::string& path) {
  auto fail = [&](const std::string& why, const std::string& hint = "check the path and its permissions") {
    TopologyResult r;
    Diagnostic d;
    d.file = path;
    d.message = "cannot read the topology file: " + why;
    d.hint = hint;
    r.diagnostics.push_back(std::move(d));
    return r;
  };
  // Bounded: the size is known before anything is read, and a pipe, a device or a file that
  // grows while being read is cut off one byte past the limit.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) return fail(std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail(std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return fail("it is a directory");
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > kMaxTopologyBytes) {
    InputProblem p = too_big(size_text(static_cast<size_t>(st.st_size)));
    return fail(p.message, p.hint);
  }
  std::string text;
  text.resize(kMaxTopologyBytes + 1);
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(std::strerror(errno));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > kMaxTopologyBytes) {
    InputProblem p = too_big("more than " + size_text(kMaxTopologyBytes));
    return fail(p.message, p.hint);
  }
  text.resize(got);
  text.shrink_to_fit();
  return parse_topology(text, path);
}

}  // namespace kb
