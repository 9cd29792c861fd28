#pragma once
// Which public key a bundle must be signed with (G1, fail closed), and whether
// a manifest is meant for this machine (G5).

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "bundles/bundle_reader.h"
#include "bundles/manifest.h"
#include "installer/installer.h"
#include "installer/layout.h"

namespace kb::installer {

struct Trust {
  std::string pem;          // SPKI PEM of the Ed25519 key
  std::string fingerprint;  // 64 lowercase hex
  bool pinned = false;      // already pinned (/etc/kbundle/trust.json, or an older trust.pub)
  // The rollover serial pinned with the key (docs/trust.md); nullopt for a key given by hand on
  // the first apply, which is then located in the bundle's rollover chain.
  std::optional<uint64_t> rollover_serial;
};

// The pinned key; or on a node without one, --trust-key FILE, or --trust-fingerprint HEX
// together with the bundle-signing.pub next to `bundle`. Anything else, and any
// disagreement between them, is InstallerError(BadBundle). `bundle` may be empty.
Trust resolve_trust(const Layout& layout, const Options& opt, const std::string& bundle);

// Opens `bundle` and verifies its manifest with `trust`, following the bundle's rollover chain
// from the pinned key and serial (bundles/rollover.h). A refusal says which key is pinned and
// what to do.
std::unique_ptr<BundleReader> open_bundle(const Layout& layout, const Trust& trust, const std::string& bundle);

// The pin record to stage with this bundle: the key that signed it and its rollover serial, when
// that is not what is pinned already (the first apply, or a rollover); "" when nothing changes.
std::string pin_to_stage(const Trust& trust, const BundleReader& reader);

// Makes a staged pin record the node's pin: /etc/kbundle/trust.json in one atomic replace, then
// the older trust.pub goes. Idempotent (recovery runs it again). Returns "sha256:<hex> (rollover serial N)".
std::string commit_pin(const Layout& layout, const std::string& record);

// The pin record staged in `staging` by an apply (trust.json), or made from the trust.pub an
// older installer staged when nothing is pinned yet; "" for none. For recovery.
std::string staged_pin(const Layout& layout, const std::string& staging);

// The pin as `status` shows it; nullopt when nothing is pinned.
std::optional<Trust> read_pin(const Layout& layout);

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
