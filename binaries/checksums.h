#pragma once
// Published checksum files, as upstream projects write them:
//   a bare hash                      (dl.k8s.io <file>.sha256, cri-tools <asset>.sha256)
//   "<hash>  <name>" lines           (sha256sum: etcd SHA256SUMS, runc.sha256sum, containerd, CNI)
//   "<hash> *<name>"                 (sha256sum --binary)
//   "SHA256 (<name>) = <hash>"       (BSD style)

#include <string>
#include <string_view>

namespace kb {

// The lowercase sha256 that `text` publishes for `asset_name` (a file name, no directory).
// A file holding one bare hash names no file and applies to the asset it sits beside.
// Throws kb::Error "<where>: ..." when there is none, two different ones, or a malformed hash.
std::string published_sha256(std::string_view text, std::string_view asset_name, const std::string& where);

// True for 64 hex digits.
bool is_sha256_hex(std::string_view s);

}  // namespace kb
