#pragma once
// The release catalog (catalog/*.json, compiled in): for each supported Kubernetes
// version, every node binary's upstream URL, its published checksum file, the archive
// member it comes from, where it goes on the node and which roles need it; plus the
// container images a node needs offline, as OCI archives. docs/fetch.md describes it.

#include <string>
#include <string_view>
#include <vector>

namespace kb {

// One file a node gets out of an artifact (a plain download or a member of a tarball).
struct CatalogFile {
  std::string component;  // "etcd", "cni-bridge"
  std::string member;     // path inside the archive; empty: the artifact itself is the file
  std::string node_path;  // "/usr/local/bin/etcd"
  unsigned mode = 0755;
  bool control_plane = false;
  bool worker = false;
};

// One upstream download and the files taken from it.
struct CatalogArtifact {
  std::string url;           // upstream, e.g. https://dl.k8s.io/release/v1.32.3/bin/linux/amd64/kubelet
  std::string checksum_url;  // the published checksum file (a bare hash or sha256sum lines)
  std::vector<CatalogFile> files;
};

// A container image, shipped as an OCI archive (a tar of an OCI image layout).
struct CatalogImage {
  std::string component;  // "pause"
  std::string ref;        // "registry.k8s.io/pause:3.10"
  std::string node_path;  // "/var/lib/kbundle-images/pause.tar"
  unsigned mode = 0644;
  bool control_plane = false;
  bool worker = false;
};

struct CatalogEntry {
  std::string kubernetes_version;  // "v1.32.3"
  std::string source;              // the catalog file's text, as embedded (goes into air-gap kits)
  std::vector<CatalogArtifact> artifacts;
  std::vector<CatalogImage> images;
};

// Parses one catalog file; `name` prefixes every error ("v1.32.json: artifacts[3].url: ...").
CatalogEntry parse_catalog(std::string_view name, std::string_view json_text);

// The compiled-in entry for `kubernetes_version` (exact match, e.g. "v1.32.3").
// Throws kb::Error listing the versions the catalog has when there is none.
const CatalogEntry& catalog_entry(const std::string& kubernetes_version);

// Every compiled-in entry, in file order.
const std::vector<CatalogEntry>& catalog_entries();

// "v1.32.3, v1.33.3"
std::string catalog_versions();

// The mirror rule: https://HOST/PATH -> MIRROR/HOST/PATH (and http:// likewise); an empty
// mirror returns `url` unchanged. A trailing '/' on the mirror is ignored.
std::string mirror_url(const std::string& mirror, const std::string& url);

// Where a mirror serves an image: MIRROR/oci/<registry>/<repository>/<tag>.tar, and its
// checksum beside it (+ ".sha256"). Throws kb::Error for a ref without a tag or with a digest.
std::string image_mirror_url(const std::string& mirror, const std::string& ref);

}  // namespace kb
