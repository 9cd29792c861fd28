#pragma once
// Imports the bundle's container images into containerd (issue 5). A worker bundle carries each
// image the node needs offline (pause, CoreDNS) as an OCI archive under /var/lib/kbundle-images/
// and containerd's own CLI as /usr/local/bin/ctr. After the services step and the health checks
// have passed, apply imports every archive that changed in this apply, or whose image containerd
// does not have, with
//   <root>/usr/local/bin/ctr --address <root>/run/containerd/containerd.sock -n k8s.io
//       images import --base-name <registry/repository> <root>/var/lib/kbundle-images/<name>.tar
// (--base-name: an OCI archive may name only the tag, e.g. "3.10"; without it ctr would call the
// image "import-<date>:3.10"). The image reference comes from the entry's source URL, which the
// fetch mirror layout makes ".../oci/<registry/repository>/<tag>.tar" (docs/fetch.md).
// A failure (no ctr, no containerd socket in time, ctr failing or too slow) is a health failure:
// apply rolls back and exits 4 with the reason. With --no-systemd it is skipped and said so.

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "bundles/manifest.h"

namespace kb::installer {

struct Run;

inline constexpr const char* kImagesDir = "/var/lib/kbundle-images/";
inline constexpr const char* kCtrPath = "/usr/local/bin/ctr";
inline constexpr const char* kContainerdSocketPath = "/run/containerd/containerd.sock";

// One image archive of a bundle.
struct ImageArchive {
  std::string path;     // node path, "/var/lib/kbundle-images/pause.tar"
  std::string ref;      // "registry.k8s.io/pause:3.10"; empty when the source URL does not say
  bool changed = false; // written by this apply
  bool operator==(const ImageArchive&) const = default;
};

// "registry.k8s.io/pause:3.10" from "<mirror>/oci/registry.k8s.io/pause/3.10.tar"; "" otherwise.
std::string image_ref_from_url(const std::string& url);

// The manifest's image archives (files directly under /var/lib/kbundle-images/ named *.tar),
// in manifest order, each marked changed when its path is in `changed_paths`.
std::vector<ImageArchive> image_archives(const Manifest& m, const std::vector<std::string>& changed_paths);

// True when some archive's state in containerd must be asked (an unchanged archive with a ref).
bool needs_listing(const std::vector<ImageArchive>& archives);

// What to import: every changed archive, and every unchanged one whose ref is not in `present`
// (the names `ctr images ls -q` printed). An unchanged archive without a ref is left alone.
std::vector<ImageArchive> images_to_import(const std::vector<ImageArchive>& archives, const std::set<std::string>& present);

// The command lines (argv), with every path under `root` ("/" on a real node).
std::vector<std::string> ctr_list_command(const std::string& root);
std::vector<std::string> ctr_import_command(const std::string& root, const ImageArchive& archive);

struct ImageLimits {
  std::chrono::milliseconds socket_wait{std::chrono::seconds(60)};
  std::chrono::milliseconds list{std::chrono::seconds(30)};
  std::chrono::milliseconds import_each{std::chrono::seconds(300)};
};

// The whole step for apply. Returns "" on success (including nothing to do and --no-systemd),
// otherwise the reason, naming the archive or the command and what to do. Says what it does,
// and records the imported paths in the report ("imported").
std::string import_images(Run& r, const Manifest& m, const std::vector<std::string>& changed_paths,
                          const ImageLimits& limits = {});

}  // namespace kb::installer
