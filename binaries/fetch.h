#pragma once
// `kbundle fetch`: fills the verified offline cache (binaries/binary_cache.h) from upstream or a
// mirror, and moves it across an air gap as one kit. See docs/fetch.md.

#include <iosfwd>
#include <string>

#include "binaries/binary_cache.h"
#include "binaries/http_download.h"

namespace kb {

struct CatalogEntry;

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
