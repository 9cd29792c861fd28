#pragma once
// The signed manifest of a bundle (see bundles/FORMAT.md): node identity,
// serial, units, health checks and every entry with its mode, owner, size and
// sha256. serialize_manifest() and parse_manifest() are exact inverses on valid
// manifests, and serialize_manifest() is canonical: equal manifests give equal bytes.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace kb {

inline constexpr int kFormatVersion = 1;
inline constexpr uint64_t kMaxManifestSize = 16u << 20;  // bytes; larger manifests are refused

enum class EntryType { File, Directory };
enum class EntryClass { Secret, Config, Unit, Binary };
const char* to_string(EntryType t);   // "file", "directory"
const char* to_string(EntryClass c);  // "secret", "config", "unit", "binary"

// Where a binary came from (informational; the entry's own sha256 is what is checked).
struct EntrySource {
  std::string url;
  std::string sha256;  // of the downloaded artifact, lowercase hex
  bool operator==(const EntrySource&) const = default;
};

struct ManifestEntry {
  std::string path;  // absolute and normalized, e.g. /var/lib/kubernetes/ca.crt
  EntryType type = EntryType::File;
  unsigned mode = 0600;  // permission bits only: never setuid, setgid or sticky
  std::string owner = "root";
  std::string group = "root";
  // Files only (directories carry none of these):
  uint64_t size = 0;
  std::string sha256;  // lowercase hex of the content
  EntryClass cls = EntryClass::Config;
  std::optional<EntrySource> source;

  bool operator==(const ManifestEntry&) const = default;
};

struct Manifest {
  int format_version = kFormatVersion;
  std::string cluster_name;
  std::string cluster_id;
  std::string node_name;
  std::string role;        // "control-plane", "worker" or "both"
  std::string hostname;    // the node must have this hostname ...
  std::string private_ip;  // ... and this private IPv4 address
  std::string instance_id; // ... and, when set, be this EC2 instance (optional)
  uint64_t serial = 0;     // strictly increasing per node
  std::string created_at;  // RFC 3339 UTC, seconds: 2026-01-02T03:04:05Z
  std::string kubernetes_version;
  std::string signing_key_sha256;  // fingerprint of the Ed25519 key that signed it
  std::vector<std::string> units;  // unit names to enable and start, in order
  std::vector<nlohmann::json> health_checks;  // opaque objects, passed through
  std::vector<ManifestEntry> entries;         // sorted by path, unique

  bool operator==(const Manifest&) const = default;
};

// Canonical JSON of `m` (keys sorted, no whitespace, UTF-8). Throws
// BundleError(BadManifest) when `m` is not valid (validate_manifest()).
std::string serialize_manifest(const Manifest& m);

// Parses and validates; refuses anything serialize_manifest() would not have
// produced byte for byte (non-canonical JSON, duplicate or unknown keys).
// Throws BundleError: BadManifest, UnsupportedVersion or UnsafePath.
Manifest parse_manifest(std::string_view bytes);

// The file entry at `path` (never a directory), or nullptr.
const ManifestEntry* find_file_entry(const Manifest& m, const std::string& path);

// Checks every rule of FORMAT.md on an in-memory manifest. Throws BundleError.
void validate_manifest(const Manifest& m);

// Checks one node path: absolute, normalized, printable ASCII, no "." or "..".
// Throws BundleError(UnsafePath) naming the path.
void validate_entry_path(const std::string& path);

// A mode as the manifest writes it: four octal digits, "0600".
std::string mode_string(unsigned mode);

// Seconds since the epoch for an RFC 3339 "YYYY-MM-DDTHH:MM:SSZ"; nullopt if malformed.
std::optional<int64_t> parse_rfc3339_utc(std::string_view text);

// For `kbundle inspect`: identity, units and per-entry path/type/mode/owner/
// size/class/sha256. Never contains file contents.
std::string manifest_listing_text(const Manifest& m);
nlohmann::json manifest_listing_json(const Manifest& m);

}  // namespace kb
