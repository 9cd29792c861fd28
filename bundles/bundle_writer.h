#pragma once
// Writes one signed bundle (bundles/FORMAT.md). Entries come from memory or
// from files on disk; file sources are streamed in blocks (hashed in a first
// pass, copied and re-hashed in a second), so a 1 GiB binary never sits in memory.
// The output appears atomically and is byte-identical for identical inputs.
//
// zstd bundles are a sequence of zstd frames (bundles/FORMAT.md §2): every
// large member (a binary-class entry, or any file of at least 1 MiB) gets a
// frame of its own whose bytes depend only on its tar header and content, so
// a FrameCache shared by several write() calls compresses each such member
// once and copies the compressed frame into every other bundle that has it.

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "bundles/manifest.h"
#include "bundles/rollover.h"
#include "bundles/signing.h"
#include "bundles/tar.h"

namespace kb {

// Compressed frames of large members, shared by the bundles of one run.
// Thread-safe: several threads may write() bundles with one cache at once;
// the first one that needs a frame compresses it (the others wait for it)
// and every later one copies the stored bytes (copy_file_range). Frames live
// in unlinked temp files in `dir` (nothing remains after a crash), not in
// memory. A hit requires the same tar header bytes (name, mode, size, mtime,
// ...), the same content sha256 and the same zstd level, so a bundle written
// with the cache is byte-identical to one written without. Big frames are
// compressed one at a time with two zstd worker threads, which bounds memory
// (about 30 MiB) however many threads write. gzip bundles do not use it.
// It also remembers the sha256 of every source file it saw, keyed by the
// file's identity (device, inode, size, mtime and ctime in ns, unchanged
// across the hashing), so a binary shared by six nodes is read once for the
// manifests. Either way the bytes written are those whose hash is signed: a
// frame is stored only after its content hashed to the key's sha256.
class FrameCache {
 public:
  // `dir` must exist; the bundles' output directory is a good choice (same
  // file system, so copies can be reflinks). Throws kb::Error if it cannot be used.
  explicit FrameCache(std::string dir);
  ~FrameCache();
  FrameCache(const FrameCache&) = delete;
  FrameCache& operator=(const FrameCache&) = delete;

  struct Stats {
    uint64_t frames = 0;       // frames compressed and stored
    uint64_t stored_bytes = 0; // their compressed size
    uint64_t hits = 0;         // frames copied from the cache
    uint64_t copied_bytes = 0;
  };
  Stats stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  friend class BundleWriter;
};

struct WriteOptions {
  Compression compression = Compression::Zstd;
  int level = 0;  // 0: the default (zstd 3, gzip 6); zstd 1-19, gzip 2-8
  // Optional, zstd only: reuse large members' frames across write() calls.
  // The output bytes are the same with or without it.
  FrameCache* cache = nullptr;
};

// Content of at least this size gets a zstd frame of its own (binaries always do).
inline constexpr uint64_t kOwnFrameMinSize = uint64_t(1) << 20;

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

  // The signing key's rollover chain, written as the member before the manifest (FORMAT.md
  // §11); it must end at the key write() signs with. Empty (the default): no such member.
  void set_rollover(RolloverChain chain) { rollover_ = std::move(chain); }

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
  RolloverChain rollover_;
  std::vector<Pending> pending_;
};

}  // namespace kb
