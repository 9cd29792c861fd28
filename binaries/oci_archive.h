#pragma once
// OCI image archives (a tar of an OCI image layout: oci-layout, index.json, blobs/sha256/*),
// as `skopeo copy ... oci-archive:x.tar` writes them and `ctr images import` reads them.

#include <string>

namespace kb {

// Checks that the archive is a well-formed OCI layout whose every blob matches its digest and
// whose first manifest (index.json) and that manifest's config and layers are all present.
// Returns the manifest digest ("sha256:..."). Throws kb::Error "<path>: <why>".
std::string verify_oci_archive(const std::string& path);

}  // namespace kb
