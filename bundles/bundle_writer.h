#pragma once
// Writes one signed bundle (bundles/FORMAT.md). Entries come from memory or
// from files on disk; file sources are streamed in blocks (hashed in a first
// pass, copied and re-hashed in a second), so a 1 GiB binary never sits in memory.
// The output appears atomically and is byte-identical for identical inputs.

#include <string>
#include <variant>
#include <vector>

#include "bundles/manifest.h"
#include "bundles/signing.h"

namespace kb {

enum class Compression { Zstd, Gzip };
const char* to_string(Compression c);  // "zstd", "gzip"

struct WriteOptions {
  Compression compression = Compression::Zstd;
  int level = 0;  // 0: the default (zstd 3, gzip 6); zstd 1-19, gzip 2-8
};

// Member names inside the tar for the manifest, the signature and an entry.
inline constexpr const char* kManifestMember = "kbundle/manifest.json";
inline constexpr const char* kSignatureMember = "kbundle/manifest.sig";
std::string member_name(const ManifestEntry& e);  // "files" + path, plus "/" for a directory

class BundleWriter {
 public:
  // `header` gives everything but the entries and signing_key_sha256, which
  // write() fills in. created_at also becomes every member's mtime.
  explicit BundleWriter(Manifest header);

  void add_directory(const std::string& path, unsigned mode, const std::string& owner = "root",
                     const std::string& group = "root");
  // `meta` gives path, mode, owner, group, class and source; size and sha256 are computed.
  void add_file(ManifestEntry meta, std::string content);
  // The file is read when write() runs; it must not change in between or during
  // (a change is detected and refused).
  void add_file_from_path(ManifestEntry meta, std::string source_path);

  // Sorts the entries by path, signs the manifest with `key` and writes the
  // bundle to `out_path` (mode 0600, temp + fsync + rename). Returns the
  // manifest as signed. Throws kb::Error (BundleError for an invalid manifest).
  Manifest write(const std::string& out_path, const SigningKey& key, const WriteOptions& options = {}) const;

 private:
  struct Pending {
    ManifestEntry entry;
    std::variant<std::monostate, std::string, std::string> source;  // none (dir), content, path
  };
  Manifest header_;
  std::vector<Pending> pending_;
};

}  // namespace kb
