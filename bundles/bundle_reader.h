#pragma once
// Streaming, fail-closed reading of a bundle (bundles/FORMAT.md), usable by the
// installer. Memory stays bounded (256 KiB blocks plus the manifest) whatever
// the bundle size. Every refusal is a BundleError whose code() says why.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "bundles/bundle_error.h"
#include "bundles/manifest.h"
#include "bundles/rollover.h"
#include "bundles/tar.h"

namespace kb {

// Receives the payload, one member at a time, in manifest order. The reader
// calls begin(), then write() for each block of a file's bytes, and finish()
// only after the member's size and sha256 matched the signed manifest. When
// anything is wrong the reader throws instead of calling finish(), so a sink
// that writes into a temp file and publishes it in finish() never publishes
// an unverified byte. A directory gets begin() and finish() only.
// Note: finish() means "this member is good", not "the bundle is good": the
// bundle is good once read_payload() returns.
class MemberSink {
 public:
  virtual ~MemberSink() = default;
  virtual void begin(const ManifestEntry& entry) = 0;
  virtual void write(std::string_view block) = 0;
  virtual void finish() = 0;

  // A sink may hash what it receives itself, e.g. on the thread that writes the
  // bytes, so the reader's thread only decompresses. The reader then skips its
  // own sha256 and, before finish(), compares received_sha256() (lowercase hex of
  // exactly the bytes write() got since begin(); it may wait for the sink to
  // catch up) with the manifest: a mismatch still throws and finish() is not
  // called, so the guarantee above is unchanged.
  virtual bool hashes_members() const { return false; }
  virtual std::string received_sha256() { return {}; }
};

// Throws the payload away: for verifying a bundle without writing anything.
class DiscardSink : public MemberSink {
 public:
  void begin(const ManifestEntry&) override {}
  void write(std::string_view) override {}
  void finish() override {}
};

// Writes each file member to a temp file beside `root` + its path and renames it into place in
// finish(), i.e. only after its size and sha256 matched the signed manifest: a file under `root`
// is always a verified member. Used by extract_bundle() and by the installer's staging.
class AtomicFileSink : public MemberSink {
 public:
  struct Options {
    unsigned file_mode = 0;                // every file's mode; 0: the manifest entry's mode
    bool create_directory_members = true;  // create directory members (0700), or skip them
    // Creates a file's missing parent directories; default make_dirs(dir, 0700). The installer
    // passes one that also fsyncs what it creates.
    std::function<void(const std::string& dir)> make_parents;
    // Hash and write on a second thread (as `zstd -dc | tar -x` runs two processes; sha256 and
    // zstd cost about the same), so the reader's thread only decompresses. For large payloads.
    bool writer_thread = false;
  };
  AtomicFileSink(std::string root, Options options);
  ~AtomicFileSink() override;
  AtomicFileSink(const AtomicFileSink&) = delete;
  AtomicFileSink& operator=(const AtomicFileSink&) = delete;

  void begin(const ManifestEntry& entry) override;
  void write(std::string_view block) override;
  void finish() override;
  bool hashes_members() const override;
  std::string received_sha256() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class BundleReader {
 public:
  // Opens `path` and reads member 1 (the manifest, at most kMaxManifestSize)
  // and member 2 (the signature); verifies the signature over the exact
  // manifest bytes with `public_key_pem` BEFORE parsing them; then parses and
  // validates the manifest and checks it names that key. Throws BundleError.
  // An optional member kbundle/rollover.json before the manifest (FORMAT.md §11) is read and
  // parsed first; the manifest is then verified with the key at the end of walking that chain
  // from `public_key_pem` (walk_rollover_chain: `pinned_serial` is the rollover serial pinned
  // with the key, nullopt for a key given by hand). Without a chain, the key itself.
  BundleReader(const std::string& path, std::string_view public_key_pem,
               std::optional<uint64_t> pinned_serial = std::nullopt);
  ~BundleReader();
  BundleReader(const BundleReader&) = delete;
  BundleReader& operator=(const BundleReader&) = delete;

  const Manifest& manifest() const;
  const std::string& manifest_bytes() const;  // exactly the signed bytes
  const std::string& signature() const;       // the 64-byte Ed25519 signature over them
  const RolloverChain& rollover() const;      // empty when the bundle carries no chain
  const std::string& rollover_bytes() const;  // the member's exact bytes ("" without one)
  const ChainEnd& signer() const;             // the key that verified the manifest, and its serial
  Compression compression() const;

  // Streams every payload member to `sink`, checking names, order, types,
  // sizes, hashes and header fields, then reads to the end of the file and
  // requires a clean end. Call once. Returns only if the whole bundle is good.
  void read_payload(MemberSink& sink);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads and checks the whole bundle, discarding the payload. Throws BundleError.
Manifest verify_bundle(const std::string& path, std::string_view public_key_pem);

// Verifies and extracts into `dest_dir` (created 0700 if missing; must be empty
// otherwise): file entries at dest_dir + path with their manifest mode,
// directories 0700, no owners set. Files are staged inside dest_dir and moved
// into place only after the WHOLE bundle verified, so on any error dest_dir is
// left as it was (empty). Meant for tests and `kbundle inspect`; the installer
// does its own staging.
Manifest extract_bundle(const std::string& path, std::string_view public_key_pem, const std::string& dest_dir);

}  // namespace kb
