#pragma once
// The verified offline cache of node binaries and images that `kbundle fetch` fills
// (see binaries/fetch.h and docs/fetch.md). Layout of a cache directory:
//   blobs/sha256/<hex>        every verified download and every extracted node file, by content
//   lock-<version>.json       what a node gets for that Kubernetes version, with every sha256
//   partial/<hex>.part        downloads in progress (resumed with HTTP Range)
// Everything here reads the cache only: never the network.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kb {

struct CatalogArtifact;
struct CatalogEntry;
struct CatalogFile;
struct CatalogImage;

struct CachedBinary {
  std::string component;   // "kubelet", "cni-bridge", "pause"
  std::string node_path;   // "/usr/local/bin/kubelet"
  std::string cache_path;  // the verified file in the cache (blobs/sha256/<sha256>)
  std::string url;         // where it came from (upstream URL; for an image, the mirror URL)
  std::string checksum_url;  // the published checksum it was verified against
  std::string sha256;      // of the node file
  unsigned mode;           // 0755 for binaries, 0644 for image archives
};

// One node file in a lock file.
struct LockEntry {
  std::string component, node_path;
  std::string url;              // binaries: the upstream URL (mirror-independent); images: the URL fetched
  std::string checksum_url;     // where artifact_sha256 was published (upstream; images: the mirror's URL + ".sha256")
  std::string member;           // archive member; empty for a plain download or an image
  std::string ref;              // images only: "registry.k8s.io/pause:3.10"
  std::string artifact_sha256;  // of the download, as the published checksum at checksum_url says
  std::string sha256;           // of the node file (== artifact_sha256 for a plain download)
  std::string manifest_digest;  // images only: "sha256:..." of the image manifest in the archive
  uint64_t size = 0;
  unsigned mode = 0755;
  bool control_plane = false, worker = false;
};

struct LockFile {
  std::string kubernetes_version;
  std::vector<LockEntry> binaries;
  std::vector<LockEntry> images;  // empty when fetched without a mirror
};

// The lock entry for a catalog file or image with what the catalog says filled in (component,
// node path, URL, member or ref, mode, roles); the caller adds the hashes and the size it verified.
LockEntry lock_entry_for(const CatalogArtifact& artifact, const CatalogFile& file);
LockEntry lock_entry_for(const CatalogImage& image);

std::string lock_path(const std::string& cache_dir, const std::string& kubernetes_version);
std::string blob_path(const std::string& cache_dir, const std::string& sha256);

std::string lock_to_json(const LockFile& lock);
// Throws kb::Error "<where>: <field>: <why>" for anything malformed.
LockFile parse_lock(std::string_view json_text, const std::string& where);
void write_lock(const std::string& cache_dir, const LockFile& lock);  // atomic

// Checks that `lock` describes exactly the catalog's files (components, node paths, URLs,
// members, modes, roles, image refs): a lock (or an air-gap kit) cannot add, drop or move a file.
// Images are checked only when the lock has any. Throws kb::Error naming the first difference.
void check_lock_matches_catalog(const LockFile& lock, const CatalogEntry& entry, const std::string& where);

// "kbundle fetch --version V --cache DIR", the command that fills the cache.
std::string fetch_command(const std::string& cache_dir, const std::string& kubernetes_version);

// The binaries a node with these roles needs for `kubernetes_version`, from the cache's lock
// file only (never the network); every file's sha256 re-checked.
// Throws kb::Error naming the exact `kbundle fetch --version V` command when one is missing or does not match.
std::vector<CachedBinary> binaries_for(const std::string& cache_dir, const std::string& kubernetes_version,
                                       bool control_plane, bool worker);

// Likewise for the container images (OCI archives, e.g. /var/lib/kbundle-images/pause.tar).
// Images need a mirror: the command named in errors carries --mirror.
std::vector<CachedBinary> images_for(const std::string& cache_dir, const std::string& kubernetes_version,
                                     bool control_plane, bool worker);

}  // namespace kb
