#pragma once
// The release catalog (catalog/v<minor>.json, compiled in): for each supported Kubernetes
// minor, a template of every node binary's upstream URL ("{version}" stands for the patch
// release asked for, so any published vX.Y.Z of the minor resolves), its published checksum
// file, the archive member it comes from, where it goes on the node and which roles need it;
// plus the container images a node needs offline, as OCI archives. docs/fetch.md describes it.

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

// One catalog file resolved for one Kubernetes release.
struct CatalogEntry {
  std::string kubernetes_version;  // "v1.32.3"
  std::string etcd_version;        // "v3.5.21": the etcd this release ships with (fixed per minor)
  std::string source;              // the resolved entry's text (goes into air-gap kits as catalog-<V>.json)
  std::vector<CatalogArtifact> artifacts;
  std::vector<CatalogImage> images;
};

// Parses one resolved catalog entry (no "{version}" left; what an air-gap kit carries); `name`
// prefixes every error ("v1.32.json: artifacts[3].url: ...").
CatalogEntry parse_catalog(std::string_view name, std::string_view json_text);

// Resolves the template `json_text` (a catalog/v<minor>.json) for `kubernetes_version`, which
// must be a vX.Y.Z of the template's kubernetesMinor. A template must give every Kubernetes
// file (a URL with "{version}") the per-file checksum published beside it (URL + ".sha256").
CatalogEntry resolve_catalog(std::string_view name, std::string_view json_text, const std::string& kubernetes_version);

// The compiled-in entry for any release `kubernetes_version` ("v1.32.9") of a supported minor.
// Throws kb::Error naming the minors the catalog has when there is none.
CatalogEntry catalog_entry(const std::string& kubernetes_version);

// One compiled-in entry per minor, resolved at its first patch (vX.Y.0), in file order.
const std::vector<CatalogEntry>& catalog_entries();

// "v1.32.x, v1.33.x"
std::string catalog_versions();

// The mirror rule: https://HOST/PATH -> MIRROR/HOST/PATH (and http:// likewise); an empty
// mirror returns `url` unchanged. A trailing '/' on the mirror is ignored.
std::string mirror_url(const std::string& mirror, const std::string& url);

// Where a mirror serves an image: MIRROR/oci/<registry>/<repository>/<tag>.tar, and its
// checksum beside it (+ ".sha256"). Throws kb::Error for a ref without a tag or with a digest.
std::string image_mirror_url(const std::string& mirror, const std::string& ref);

}  // namespace kb
