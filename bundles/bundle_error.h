#pragma once
// Why a bundle was refused. Every refusal by the reader, the manifest parser or
// the signature check is a BundleError whose code() names the kind, so that
// callers (the installer's exit codes, the tamper tests) can tell them apart.

#include <string>

#include "base/error.h"

namespace kb {

enum class BundleErrc {
  Io,                // the bundle file cannot be opened or read
  NotABundle,        // empty, not zstd/gzip, or not a tar stream
  Corrupt,           // the compressed stream does not decode (including an empty or skippable zstd frame,
                     // a window over 8 MiB, bytes between frames), or a tar header checksum is wrong
  Truncated,         // the stream ends inside a frame, a member or before the end-of-archive marker
  TrailingData,      // anything after the end-of-archive marker: more tar bytes, another frame, any byte
  MissingManifest,   // member 1 is not kbundle/manifest.json
  ManifestTooLarge,  // manifest member larger than kMaxManifestSize
  MissingSignature,  // member 2 is not kbundle/manifest.sig (64 bytes)
  BadKey,            // a key PEM cannot be loaded or is not Ed25519
  BadSignature,      // the signature does not verify with the trusted key
  KeyMismatch,       // the manifest names another signing key than the trusted one
  BadManifest,       // not canonical JSON, a missing/unknown/invalid field
  UnsupportedVersion,// format_version is not one this reader knows
  UnsafePath,        // "..", ".", "//", absolute, NUL, control characters, outside files/
  ForbiddenType,     // symlink, hardlink, device, fifo, pax/GNU extension or any other non-file/dir
  UnlistedMember,    // a member the manifest does not list
  DuplicateMember,   // a member seen twice
  OutOfOrder,        // a listed member before its turn
  MissingMember,     // a manifest entry whose member never came
  TypeMismatch,      // file in the manifest, directory in the tar, or the reverse
  SizeMismatch,      // tar size differs from the manifest size
  HeaderMismatch,    // mode, uid/gid, uname/gname or mtime differ from what the format requires
  HashMismatch,      // member bytes do not hash to the manifest sha256
  PolicyViolation,   // validly signed, but manages a path, unit, mode or owner the path policy forbids
  BadRollover,       // kbundle/rollover.json is not a well-formed chain of rollover statements
  UntrustedRollover, // the rollover chain does not lead from the trusted key: forged, a gap, another old key
};

const char* to_string(BundleErrc c);  // "bad-signature", "hash-mismatch", ...

class BundleError : public Error {
 public:
  BundleError(BundleErrc code, const std::string& what)
      : Error(what), code_(code) {}
  BundleErrc code() const { return code_; }

 private:
  BundleErrc code_;
};

}  // namespace kb
