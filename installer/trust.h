#pragma once
// Which public key a bundle must be signed with (G1, fail closed), and whether
// a manifest is meant for this machine (G5).

#include <functional>
#include <string>

#include "bundles/manifest.h"
#include "installer/installer.h"
#include "installer/layout.h"

namespace kb::installer {

struct Trust {
  std::string pem;          // SPKI PEM of the Ed25519 key
  std::string fingerprint;  // 64 lowercase hex
  bool pinned = false;      // already at /etc/kbundle/trust.pub
};

// The pinned key; or on a node without one, --trust-key FILE, or --trust-fingerprint HEX
// together with the bundle-signing.pub next to `bundle`. Anything else, and any
// disagreement between them, is InstallerError(BadBundle). `bundle` may be empty.
Trust resolve_trust(const Layout& layout, const Options& opt, const std::string& bundle);

// "sha256:ABC..." or "abc..." to 64 lowercase hex; InstallerError(Usage) otherwise.
std::string normalize_fingerprint(const std::string& text);

// Empty when this machine has the manifest's hostname and private IPv4 address,
// otherwise why not.
std::string machine_mismatch(const Manifest& m);

// Empty when the manifest names no EC2 instance or the instance metadata service
// (IMDSv2) says this is it; otherwise why not (also when the service cannot be asked:
// a bound bundle fails closed). `imds_endpoint` is Hooks::imds_endpoint ("" on a node);
// `warn` hears about a test-only endpoint override.
std::string instance_mismatch(const Manifest& m, const std::string& imds_endpoint,
                              const std::function<void(const std::string&)>& warn);

}  // namespace kb::installer
