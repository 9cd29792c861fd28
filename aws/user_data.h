#pragma once
// The user-data script `kbundle aws up` gives each instance (docs/aws.md, "User data"): a POSIX sh
// script, run once by cloud-init as root at first boot, that fetches the node's bundle over https,
// waits with bounded back-off while it is not published yet, checks the installer's sha256 before
// running it, and applies the bundle pinned to the signing key's fingerprint. Needs curl,
// sha256sum and logger on the node.

#include <cstddef>
#include <string>

namespace kb::aws {

// AWS's limit on user data, in raw form before base64.
inline constexpr size_t kUserDataLimit = 16 * 1024;

struct BootObject {
  std::string url;    // https:// only; may carry a presigned query (a credential)
  std::string label;  // what the logs show: "s3://BUCKET/KEY", or the URL without its query
};

struct UserDataInput {
  std::string cluster;
  std::string node;
  BootObject bundle;
  BootObject installer;                 // url "": the image has /usr/local/bin/kbundle-installer
  std::string installer_sha256;         // 64 lowercase hex; required with an installer URL
  std::string signing_public_key_pem;   // bundle-signing.pub, written beside the bundle
  std::string signing_fingerprint;      // its sha256, 64 lowercase hex (--trust-fingerprint)
  std::string urls_expire;              // RFC 3339 when the URLs stop working; "" when they do not
};

// The script. Every value is single-quoted (nothing in it is ever expanded by the shell).
// Throws kb::Error for a URL that is not https://, a control character in any value, a node name
// that is not a file name, a malformed sha256 or fingerprint, or a script over kUserDataLimit.
std::string render_user_data(const UserDataInput& input);

// "https://h/k?X-Amz-Signature=..." -> "https://h/k": for logs, never the query.
std::string url_without_query(const std::string& url);

}  // namespace kb::aws
