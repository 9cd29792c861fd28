#pragma once
// `kbundle fetch`: fills the verified offline cache (generator/binary_cache.h) from upstream or a
// mirror, and moves it across an air gap as one kit. See docs/fetch.md.

#include <iosfwd>
#include <string>

#include "generator/binary_cache.h"
#include "generator/http_download.h"

namespace CLI {
class App;
}

namespace kb {

struct CatalogEntry;

struct FetchOptions {
  std::string version = "v1.32.3";
  std::string mirror;         // empty: upstream URLs (images are then skipped)
  std::string cache_dir;      // empty: <state_dir>/cache
  std::string state_dir = "state";
  std::string export_path;    // write an air-gap kit after fetching
  std::string import_path;    // a kit (.tar) or a directory holding one unpacked; no network
};

// Adds the `fetch` command to `app`; returns it.
CLI::App* add_fetch_command(CLI::App& app, FetchOptions& options);

// Fetches (and exports) or imports; progress on `err` (a bar when it is a terminal), the summary on `out`.
int run_fetch(const FetchOptions& options, std::ostream& out, std::ostream& err);

// Downloads what the cache lacks for `entry`, verifies each download against its published
// checksum, extracts the archive members and writes lock-<version>.json. Files already in
// the cache and in its lock are re-hashed, not downloaded again. Returns the lock written.
LockFile fetch_into_cache(const std::string& cache_dir, const CatalogEntry& entry, const std::string& mirror,
                          const DownloadOptions& download, std::ostream& log);

// Writes the kit (lock-<V>.json, catalog-<V>.json, blobs/sha256/<hex> of every node file)
// atomically, re-checking every file against the lock while copying it.
void export_kit(const std::string& cache_dir, const std::string& kubernetes_version, const std::string& kit_path);

// Verifies a kit against its lock and the compiled-in catalog before anything reaches the
// cache; then adds its files and lock. On any error the cache is left as it was.
// Returns the kit's Kubernetes version.
std::string import_kit(const std::string& cache_dir, const std::string& kit_path, std::ostream& log);

}  // namespace kb
