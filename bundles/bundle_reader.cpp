#include "bundles/bundle_reader.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <dirent.h>
#include <exception>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <set>
#include <stdlib.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>
#include <zlib.h>
#include <zstd.h>

#include "base/atomic_file.h"
#include "base/hash.h"
#include "bundles/signing.h"

namespace kb {

namespace {

constexpr size_t kBlock = kStreamBlock;
constexpr int kZstdWindowLogMax = 23;  // 8 MiB, what zstd levels 1-19 use at most

std::string printable(std::string_view s) {
  std::string out;
  for (char c : s) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

bool zstd_magic(const char* p) { return std::memcmp(p, "\x28\xb5\x2f\xfd", 4) == 0; }
bool skippable_magic(const char* p) {
  return (static_cast<uint8_t>(p[0]) & 0xf0) == 0x50 && std::memcmp(p + 1, "\x2a\x4d\x18", 3) == 0;
}

// The decompressed byte stream of the bundle: one or more complete zstd frames,
// none empty, or one gzip member; the last ends exactly at the end of the file.
// zlib and libzstd are driven directly (not through libarchive) so that the
// reader sees frame boundaries, the gzip header bytes and the gzip CRC-32/ISIZE check.
class Decoder {
 public:
  explicit Decoder(const std::string& path) : path_(path), in_(new char[kBlock]) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) fail(BundleErrc::Io, std::string("cannot open: ") + std::strerror(errno));
    struct stat st;
    if (::fstat(fd_, &st) != 0) fail(BundleErrc::Io, std::string("cannot stat: ") + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) fail(BundleErrc::Io, "not a regular file");
    if (st.st_size == 0) fail(BundleErrc::NotABundle, "empty file");
    fill(10);
    auto at = [&](size_t i) { return static_cast<uint8_t>(in_[i]); };
    if (in_len_ >= 4 && zstd_magic(in_.get())) {
      compression_ = Compression::Zstd;
      zstd_ = ZSTD_createDCtx();
      // Bounded window: a hostile frame cannot make the installer allocate more than 8 MiB for it.
      // The parameter is sticky: it holds for every frame of the file.
      if (!zstd_ || ZSTD_isError(ZSTD_DCtx_setParameter(zstd_, ZSTD_d_windowLogMax, kZstdWindowLogMax)))
        fail(BundleErrc::Io, "cannot initialise zstd");
      frames_ = 1;
    } else if (in_len_ >= 2 && at(0) == 0x1f && at(1) == 0x8b) {
      compression_ = Compression::Gzip;
      // One fixed header: deflate, no flags (no name, comment, extra), MTIME 0, XFL 0, OS 3 (Unix).
      static const uint8_t header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
      if (in_len_ < sizeof header) fail(BundleErrc::Truncated, "gzip header cut short");
      if (std::memcmp(in_.get(), header, sizeof header) != 0)
        fail(BundleErrc::Corrupt, "gzip header is not 1f 8b 08 00 00000000 00 03");
      zlib_ = std::make_unique<z_stream>();
      std::memset(zlib_.get(), 0, sizeof(z_stream));
      if (inflateInit2(zlib_.get(), 16 + MAX_WBITS) != Z_OK) fail(BundleErrc::Io, "cannot initialise zlib");
    } else {
      fail(BundleErrc::NotABundle, "neither zstd nor gzip");
    }
  }
  ~Decoder() {
    if (zstd_) ZSTD_freeDCtx(zstd_);
    if (zlib_) inflateEnd(zlib_.get());
    if (fd_ >= 0) ::close(fd_);
  }
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Fills `buf` with up to `n` bytes; fewer only at the end of the last frame
  // (or, with `next_frames` false, at the end of the current one).
  size_t read(char* buf, size_t n, bool next_frames = true) {
    size_t got = 0;
    while (got < n) {
      if (done_ && !(next_frames && next_frame())) break;
      if (in_pos_ == in_len_ && !in_eof_) fill(1);
      size_t in_before = in_pos_, got_before = got;
      if (zstd_) {
        ZSTD_inBuffer in{in_.get() + in_pos_, in_len_ - in_pos_, 0};
        ZSTD_outBuffer out{buf + got, n - got, 0};
        size_t r = ZSTD_decompressStream(zstd_, &out, &in);
        if (ZSTD_isError(r))
          fail(BundleErrc::Corrupt, "zstd frame " + std::to_string(frames_) + ": " + ZSTD_getErrorName(r));
        in_pos_ += in.pos;
        got += out.pos;
        frame_out_ += out.pos;
        done_ = r == 0;  // the frame is complete and fully flushed
        // Only frame boundaries could tell an empty frame apart: none is allowed anywhere.
        if (done_ && frame_out_ == 0)
          fail(BundleErrc::Corrupt, "zstd frame " + std::to_string(frames_) + " decompresses to nothing");
      } else {
        z_stream& z = *zlib_;
        z.next_in = reinterpret_cast<Bytef*>(in_.get() + in_pos_);
        z.avail_in = static_cast<uInt>(in_len_ - in_pos_);
        z.next_out = reinterpret_cast<Bytef*>(buf + got);
        z.avail_out = static_cast<uInt>(n - got);
        int r = inflate(&z, Z_NO_FLUSH);
        in_pos_ = in_len_ - z.avail_in;
        got = n - z.avail_out;
        // Z_STREAM_END comes only after zlib checked the trailer's CRC-32 and ISIZE.
        if (r == Z_STREAM_END) done_ = true;
        else if (r != Z_OK && r != Z_BUF_ERROR)
          fail(BundleErrc::Corrupt, std::string("gzip: ") + (z.msg ? z.msg : "inflate failed"));
      }
      if (!done_ && in_pos_ == in_before && got == got_before && in_pos_ == in_len_ && in_eof_)
        fail(BundleErrc::Truncated, "compressed stream ends early");
    }
    position_ += got;
    return got;
  }

  // At the end of the tar stream: the current frame/member must end here, and
  // so must the file (no further frame, not even an empty one, no other bytes).
  void check_end() {
    char b;
    if (read(&b, 1, false) != 0) fail(BundleErrc::TrailingData, "data after the end-of-archive marker");
    if (in_pos_ < in_len_ || (!in_eof_ && (fill(1), in_len_ > in_pos_)))
      fail(BundleErrc::TrailingData, "bytes after the end of the compressed stream");
  }

  uint64_t position() const { return position_; }
  Compression compression() const { return compression_; }
  [[noreturn]] void fail(BundleErrc code, const std::string& why) const { throw BundleError(code, path_ + ": " + why); }

 private:
  // After a complete zstd frame: starts the next one. False at the end of the
  // file (or after the gzip member, which is always the only one).
  bool next_frame() {
    if (!zstd_) return false;
    fill(4);
    size_t left = in_len_ - in_pos_;
    if (left == 0) return false;
    const char* p = in_.get() + in_pos_;
    // Called only while the tar stream wants more bytes, so anything else here is damage.
    std::string after = "after zstd frame " + std::to_string(frames_) + ": ";
    if (left < 4) fail(BundleErrc::Corrupt, after + std::to_string(left) + " stray bytes");
    if (skippable_magic(p)) fail(BundleErrc::Corrupt, after + "a skippable frame (not allowed)");
    if (!zstd_magic(p)) fail(BundleErrc::Corrupt, after + "bytes that are not a zstd frame");
    ++frames_;
    frame_out_ = 0;
    done_ = false;
    return true;
  }

  // Makes at least `want` unread bytes available unless the file ends first.
  void fill(size_t want) {
    if (in_len_ - in_pos_ >= want || in_eof_) return;
    std::memmove(in_.get(), in_.get() + in_pos_, in_len_ - in_pos_);
    in_len_ -= in_pos_;
    in_pos_ = 0;
    while (in_len_ < want) {
      ssize_t r = ::read(fd_, in_.get() + in_len_, kBlock - in_len_);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) fail(BundleErrc::Io, std::string("cannot read: ") + std::strerror(errno));
      if (r == 0) {
        in_eof_ = true;
        return;
      }
      in_len_ += static_cast<size_t>(r);
    }
  }

  std::string path_;
  int fd_ = -1;
  std::unique_ptr<char[]> in_;
  size_t in_pos_ = 0, in_len_ = 0;
  bool in_eof_ = false;
  bool done_ = false;  // the current frame/member is complete
  uint64_t frames_ = 0, frame_out_ = 0;
  ZSTD_DCtx* zstd_ = nullptr;
  std::unique_ptr<z_stream> zlib_;
  uint64_t position_ = 0;
  Compression compression_ = Compression::Zstd;
};

struct TarHeader {
  bool end = false;  // an all-zero block
  std::string name;  // prefix "/" name
  char type = 0;
  uint64_t size = 0;
  uint64_t mode = 0, uid = 0, gid = 0, mtime = 0;
  std::string uname, gname;
  bool links_or_devices = false;  // linkname or devmajor/devminor set
};

const char* type_name(char t) {
  switch (t) {
    case '1': return "hardlink";
    case '2': return "symlink";
    case '3': return "character device";
    case '4': return "block device";
    case '6': return "fifo";
    case '7': return "contiguous file";
    case 'x': case 'g': return "pax extended header";
    case 'L': case 'K': return "GNU long name";
    case '\0': return "old-style regular file";
    default: return "unknown member type";
  }
}

class TarReader {
 public:
  explicit TarReader(Decoder& d) : d_(d) {}

  TarHeader next() {
    char b[kTarBlock];
    uint64_t at = d_.position();
    size_t n = d_.read(b, sizeof b);
    if (n != sizeof b) d_.fail(BundleErrc::Truncated, "ends at byte " + std::to_string(at + n) + " where a tar header was due");
    TarHeader h;
    if (std::all_of(b, b + sizeof b, [](char c) { return c == 0; })) {
      h.end = true;
      return h;
    }
    uint64_t stored = 0;
    if (!ustar_octal_field(b + 148, 8, stored)) d_.fail(BundleErrc::Corrupt, "tar header at byte " + std::to_string(at) + ": bad checksum field");
    if (ustar_checksum(b) != stored) d_.fail(BundleErrc::Corrupt, "tar header at byte " + std::to_string(at) + ": checksum mismatch");
    if (std::memcmp(b + 257, "ustar\0" "00", 8) != 0)
      d_.fail(BundleErrc::Corrupt, "tar header at byte " + std::to_string(at) + ": not a POSIX ustar header");
    std::string name, prefix, link;
    bool clean = ustar_string_field(b, 100, name) && ustar_string_field(b + 345, 155, prefix);
    h.name = prefix.empty() ? name : prefix + "/" + name;
    if (!clean) d_.fail(BundleErrc::UnsafePath, "member \"" + printable(h.name) + "\": NUL inside the name");
    h.type = b[156];
    if (!ustar_string_field(b + 157, 100, link)) link = "?";
    h.links_or_devices = !link.empty() || std::any_of(b + 329, b + 345, [](char c) { return c != 0 && c != '0' && c != ' '; });
    bool ok = ustar_octal_field(b + 124, 12, h.size) && ustar_octal_field(b + 100, 8, h.mode) && ustar_octal_field(b + 108, 8, h.uid) &&
              ustar_octal_field(b + 116, 8, h.gid) && ustar_octal_field(b + 136, 12, h.mtime) && ustar_string_field(b + 265, 32, h.uname) &&
              ustar_string_field(b + 297, 32, h.gname);
    if (!ok) d_.fail(BundleErrc::Corrupt, "member \"" + printable(h.name) + "\": malformed numeric or name field");
    return h;
  }

  // Streams `size` bytes to `fn` in blocks, then checks the zero padding.
  template <typename Fn>
  void data(const std::string& name, uint64_t size, Fn&& fn) {
    if (!buf_) buf_.reset(new char[kBlock]);
    uint64_t left = size;
    while (left > 0) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(left, kBlock));
      size_t n = d_.read(buf_.get(), want);
      if (n != want) d_.fail(BundleErrc::Truncated, "ends inside member \"" + printable(name) + "\"");
      fn(std::string_view(buf_.get(), n));
      left -= n;
    }
    size_t pad = tar_padding(size);
    char p[kTarBlock];
    if (d_.read(p, pad) != pad) d_.fail(BundleErrc::Truncated, "ends inside member \"" + printable(name) + "\"");
    if (std::any_of(p, p + pad, [](char c) { return c != 0; }))
      d_.fail(BundleErrc::Corrupt, "member \"" + printable(name) + "\": non-zero padding");
  }

  // After the first zero block: exactly one more, then the end of the last frame and of the file.
  void finish() {
    char b[kTarBlock];
    size_t n = d_.read(b, sizeof b);
    if (n != sizeof b) d_.fail(BundleErrc::Truncated, "ends inside the end-of-archive marker");
    if (std::any_of(b, b + n, [](char c) { return c != 0; })) d_.fail(BundleErrc::TrailingData, "data after the last member");
    d_.check_end();
  }

 private:
  Decoder& d_;
  std::unique_ptr<char[]> buf_;
};

// Path checks on a member name, before anything else is believed about it.
void check_member_name(Decoder& d, const std::string& name) {
  auto unsafe = [&](const std::string& why) { d.fail(BundleErrc::UnsafePath, "member \"" + printable(name) + "\": " + why); };
  if (name.empty()) unsafe("empty name");
  if (name[0] == '/') unsafe("absolute path");
  std::string_view body(name);
  if (body.back() == '/') body.remove_suffix(1);
  size_t start = 0;
  while (start <= body.size()) {
    size_t end = body.find('/', start);
    if (end == std::string_view::npos) end = body.size();
    std::string_view comp = body.substr(start, end - start);
    if (comp == "..") unsafe("contains \"..\"");
    if (comp.empty() || comp == ".") unsafe("not a normalized path");
    start = end + 1;
  }
  for (char c : name)
    if (c < 0x20 || c >= 0x7f) unsafe("control or non-ASCII character");
}

void check_type(Decoder& d, const TarHeader& h) {
  if (h.type != '0' && h.type != '5')
    d.fail(BundleErrc::ForbiddenType, "member \"" + printable(h.name) + "\": " + type_name(h.type) + " not allowed");
  if (h.links_or_devices) d.fail(BundleErrc::ForbiddenType, "member \"" + printable(h.name) + "\": link or device fields set");
}

void check_fixed_fields(Decoder& d, const TarHeader& h, unsigned mode, int64_t mtime) {
  std::string why;
  if (h.mode != mode) why = "mode";
  else if (h.uid != 0 || h.gid != 0) why = "uid/gid";
  else if (h.uname != "root" || h.gname != "root") why = "uname/gname";
  else if (h.mtime != static_cast<uint64_t>(mtime)) why = "mtime";
  if (!why.empty()) d.fail(BundleErrc::HeaderMismatch, "member \"" + printable(h.name) + "\": " + why + " differs from the format");
}

}  // namespace

struct BundleReader::Impl {
  Decoder dec;
  TarReader tar{dec};
  std::string manifest_bytes;
  std::string signature;
  Manifest manifest;
  std::string rollover_bytes;
  RolloverChain rollover;
  ChainEnd signer;
  bool payload_read = false;
  explicit Impl(const std::string& path) : dec(path) {}
};

BundleReader::BundleReader(const std::string& path, std::string_view public_key_pem, std::optional<uint64_t> pinned_serial) {
  VerifyKey anchor(public_key_pem);  // a bad key fails before the bundle is even opened
  impl_ = std::make_unique<Impl>(path);
  Decoder& d = impl_->dec;
  TarReader& tar = impl_->tar;

  // Optional member 0: the rollover chain (FORMAT.md §11), size-limited, parsed strictly. Each
  // statement carries its own signature, so the chain is believed only as far as the walk verifies.
  TarHeader mh = tar.next();
  if (mh.end) d.fail(BundleErrc::MissingManifest, "no members");
  check_member_name(d, mh.name);
  check_type(d, mh);
  std::optional<TarHeader> rh;
  if (mh.name == kRolloverMember && mh.type == '0') {
    if (mh.size > kMaxRolloverSize)
      d.fail(BundleErrc::BadRollover, std::string(kRolloverMember) + " of " + std::to_string(mh.size) + " bytes exceeds the limit");
    tar.data(mh.name, mh.size, [&](std::string_view b) { impl_->rollover_bytes.append(b); });
    try {
      impl_->rollover = parse_rollover_chain(impl_->rollover_bytes);
    } catch (const BundleError& e) {
      d.fail(e.code(), std::string(e.what()));
    }
    rh = mh;
    mh = tar.next();
    if (mh.end) d.fail(BundleErrc::MissingManifest, "no manifest after " + std::string(kRolloverMember));
    check_member_name(d, mh.name);
    check_type(d, mh);
  }
  try {
    impl_->signer = walk_rollover_chain(std::string(public_key_pem), pinned_serial, impl_->rollover);
  } catch (const BundleError& e) {
    d.fail(e.code(), std::string(e.what()));
  }
  VerifyKey key(impl_->signer.key_pem);

  // Member 1: the manifest, size-limited before a byte of it is read.
  if (mh.name != kManifestMember || mh.type != '0')
    d.fail(BundleErrc::MissingManifest, "first member is \"" + printable(mh.name) + "\", not " + kManifestMember);
  if (mh.size > kMaxManifestSize)
    d.fail(BundleErrc::ManifestTooLarge, "manifest of " + std::to_string(mh.size) + " bytes exceeds the limit");
  tar.data(mh.name, mh.size, [&](std::string_view b) { impl_->manifest_bytes.append(b); });

  // Member 2: the 64-byte Ed25519 signature.
  TarHeader sh = tar.next();
  if (sh.end) d.fail(BundleErrc::MissingSignature, "no signature member");
  check_member_name(d, sh.name);
  check_type(d, sh);
  if (sh.name != kSignatureMember || sh.type != '0')
    d.fail(BundleErrc::MissingSignature, "second member is \"" + printable(sh.name) + "\", not " + kSignatureMember);
  if (sh.size != kSignatureSize) d.fail(BundleErrc::MissingSignature, "signature is not 64 bytes");
  std::string& sig = impl_->signature;
  tar.data(sh.name, sh.size, [&](std::string_view b) { sig.append(b); });

  // Verify before parsing: nothing in the manifest is looked at until it is known to be signed.
  if (!key.verify(impl_->manifest_bytes, sig)) {
    std::string via = impl_->signer.steps == 0 ? std::string()
                                                : ", reached from sha256:" + anchor.fingerprint() + " through " +
                                                      std::to_string(impl_->signer.steps) + " rollover statements";
    d.fail(BundleErrc::BadSignature, "signature does not verify with the trusted key sha256:" + key.fingerprint() + via);
  }
  try {
    impl_->manifest = parse_manifest(impl_->manifest_bytes);
  } catch (const BundleError& e) {
    d.fail(e.code(), std::string(e.what()));
  }
  if (impl_->manifest.signing_key_sha256 != key.fingerprint())
    d.fail(BundleErrc::KeyMismatch, "manifest names signing key " + impl_->manifest.signing_key_sha256 +
                                        ", verified with " + key.fingerprint());
  // A chain must end at the manifest's key: the writer never sends one that leads elsewhere.
  if (!impl_->rollover.empty() && impl_->rollover.back().new_key_sha256 != impl_->manifest.signing_key_sha256)
    d.fail(BundleErrc::KeyMismatch, std::string(kRolloverMember) + " ends at key " + impl_->rollover.back().new_key_sha256 +
                                        ", the manifest is signed by " + impl_->manifest.signing_key_sha256);
  int64_t mtime = *parse_rfc3339_utc(impl_->manifest.created_at);
  if (rh) check_fixed_fields(d, *rh, 0644, mtime);
  check_fixed_fields(d, mh, 0644, mtime);
  check_fixed_fields(d, sh, 0644, mtime);
}

BundleReader::~BundleReader() = default;

const Manifest& BundleReader::manifest() const { return impl_->manifest; }
const std::string& BundleReader::manifest_bytes() const { return impl_->manifest_bytes; }
const std::string& BundleReader::signature() const { return impl_->signature; }
const RolloverChain& BundleReader::rollover() const { return impl_->rollover; }
const std::string& BundleReader::rollover_bytes() const { return impl_->rollover_bytes; }
const ChainEnd& BundleReader::signer() const { return impl_->signer; }
Compression BundleReader::compression() const { return impl_->dec.compression(); }

void BundleReader::read_payload(MemberSink& sink) {
  if (impl_->payload_read) throw Error("BundleReader::read_payload called twice");
  impl_->payload_read = true;
  Decoder& d = impl_->dec;
  TarReader& tar = impl_->tar;
  const auto& entries = impl_->manifest.entries;
  int64_t mtime = *parse_rfc3339_utc(impl_->manifest.created_at);
  std::map<std::string, size_t, std::less<>> index;  // member name without trailing "/" -> entry
  for (size_t i = 0; i < entries.size(); ++i) index.emplace("files" + entries[i].path, i);

  size_t next = 0;
  for (;;) {
    TarHeader h = tar.next();
    if (h.end) {
      if (next < entries.size())
        d.fail(BundleErrc::MissingMember, "no member for manifest entry " + entries[next].path);
      break;
    }
    // Name safety and type first: nothing else about a hostile member matters.
    check_member_name(d, h.name);
    check_type(d, h);
    bool slash = h.name.back() == '/';
    std::string key = slash ? h.name.substr(0, h.name.size() - 1) : h.name;
    auto it = index.find(key);
    if (it == index.end()) d.fail(BundleErrc::UnlistedMember, "member \"" + printable(h.name) + "\" is not in the manifest");
    if (it->second < next) d.fail(BundleErrc::DuplicateMember, "member \"" + h.name + "\" appears twice");
    if (it->second > next)
      d.fail(BundleErrc::OutOfOrder, "member \"" + h.name + "\" comes before " + member_name(entries[next]));
    const ManifestEntry& e = entries[next++];
    bool dir = e.type == EntryType::Directory;
    if ((h.type == '5') != dir || slash != dir)
      d.fail(BundleErrc::TypeMismatch, "member \"" + h.name + "\" is not a " + to_string(e.type) + " as the manifest says");
    if (h.size != e.size)
      d.fail(BundleErrc::SizeMismatch, "member \"" + h.name + "\" has " + std::to_string(h.size) + " bytes, the manifest says " +
                                           std::to_string(e.size));
    check_fixed_fields(d, h, e.mode, mtime);

    sink.begin(e);
    if (!dir) {
      std::string digest;
      if (sink.hashes_members()) {
        tar.data(h.name, h.size, [&](std::string_view b) { sink.write(b); });
        digest = sink.received_sha256();
      } else {
        Sha256 hash;
        tar.data(h.name, h.size, [&](std::string_view b) {
          hash.update(b);
          sink.write(b);
        });
        digest = hash.hex_digest();
      }
      // Checked before finish(): the sink never accepts a member that does not match.
      if (digest != e.sha256) d.fail(BundleErrc::HashMismatch, "member \"" + h.name + "\": sha256 differs from the manifest");
    }
    sink.finish();
  }
  tar.finish();
}

// ---- AtomicFileSink ----------------------------------------------------------------------

// With a writer thread, blocks go through a small bounded queue of recycled buffers, so memory
// stays flat (kMaxQueued blocks in flight). received_sha256() and finish() drain the queue; a
// write error on the writer thread is rethrown on the reader's thread.
struct AtomicFileSink::Impl {
  static constexpr size_t kMaxQueued = 16;  // blocks of at most kStreamBlock: 4 MiB in flight
  static constexpr uint64_t kWritebackChunk = 8u << 20;

  std::string root;
  Options options;
  // Touched by the writer thread only while blocks are queued or `busy`.
  std::unique_ptr<AtomicFile> file;
  std::unique_ptr<Sha256> hash;
  uint64_t written = 0, flushed = 0;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> queue;
  std::vector<std::string> spare;  // emptied buffers, reused so blocks are not reallocated
  bool busy = false, stop = false;
  std::exception_ptr error;
  std::thread writer;  // started last, once everything above exists

  // One block into the open file (on the writer thread when there is one).
  void append(std::string_view block) {
    if (hash) hash->update(block);
    file->write(block);
    written += block.size();
    // Start writeback every 8 MiB, so that commit()'s fsync does not wait for a whole binary.
    if (written - flushed >= kWritebackChunk) {
      ::sync_file_range(file->fd(), static_cast<off_t>(flushed), static_cast<off_t>(written - flushed), SYNC_FILE_RANGE_WRITE);
      flushed = written;
    }
  }

  void rethrow_locked() {
    if (error) std::rethrow_exception(error);
  }

  void drain() {
    if (!writer.joinable()) return;
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return (queue.empty() && !busy) || error; });
    rethrow_locked();
  }

  void enqueue(std::string_view block) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return queue.size() < kMaxQueued || error; });
    rethrow_locked();
    std::string buf;
    if (!spare.empty()) {
      buf = std::move(spare.back());
      spare.pop_back();
    }
    lock.unlock();
    buf.assign(block);  // copied outside the lock; reuses the spare's capacity
    lock.lock();
    queue.push_back(std::move(buf));
    cv.notify_all();
  }

  void write_loop() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return !queue.empty() || stop; });
      // Stopping without a finish(): the member was refused and its temp file is discarded anyway.
      if (stop) return;
      std::string block = std::move(queue.front());
      queue.pop_front();
      busy = true;
      lock.unlock();
      std::exception_ptr failed;
      try {
        append(block);
      } catch (...) {
        failed = std::current_exception();
      }
      lock.lock();
      busy = false;
      spare.push_back(std::move(block));
      if (failed && !error) error = failed;
      if (error) queue.clear();
      cv.notify_all();
    }
  }
};

AtomicFileSink::AtomicFileSink(std::string root, Options options) : impl_(std::make_unique<Impl>()) {
  impl_->root = std::move(root);
  impl_->options = std::move(options);
  if (!impl_->options.make_parents) impl_->options.make_parents = [](const std::string& dir) { make_dirs(dir, 0700); };
  if (impl_->options.writer_thread) impl_->writer = std::thread([impl = impl_.get()] { impl->write_loop(); });
}

AtomicFileSink::~AtomicFileSink() {
  if (!impl_->writer.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  impl_->writer.join();
}

void AtomicFileSink::begin(const ManifestEntry& e) {
  std::string target = impl_->root + e.path;
  if (e.type == EntryType::Directory) {
    if (impl_->options.create_directory_members) make_dirs(target, 0700);
    return;
  }
  impl_->options.make_parents(parent_dir(target));
  impl_->file = std::make_unique<AtomicFile>(target, impl_->options.file_mode ? impl_->options.file_mode : e.mode);
  if (hashes_members()) impl_->hash = std::make_unique<Sha256>();
  impl_->written = impl_->flushed = 0;
}

void AtomicFileSink::write(std::string_view block) {
  if (impl_->writer.joinable()) impl_->enqueue(block);
  else impl_->append(block);
}

bool AtomicFileSink::hashes_members() const { return impl_->options.writer_thread; }

std::string AtomicFileSink::received_sha256() {
  impl_->drain();
  return impl_->hash ? impl_->hash->hex_digest() : std::string();
}

void AtomicFileSink::finish() {
  if (!impl_->file) return;
  impl_->drain();
  impl_->file->commit();
  impl_->file.reset();
  impl_->hash.reset();
}

namespace {

bool dir_is_empty(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw_errno("cannot open directory " + dir);
  bool empty = true;
  while (dirent* ent = ::readdir(d)) {
    if (std::strcmp(ent->d_name, ".") != 0 && std::strcmp(ent->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  ::closedir(d);
  return empty;
}

}  // namespace

Manifest verify_bundle(const std::string& path, std::string_view public_key_pem) {
  BundleReader r(path, public_key_pem);
  DiscardSink sink;
  r.read_payload(sink);
  return r.manifest();
}

Manifest extract_bundle(const std::string& path, std::string_view public_key_pem, const std::string& dest_dir) {
  BundleReader r(path, public_key_pem);  // signature checked before dest is touched
  make_dirs(dest_dir, 0700);
  if (!dir_is_empty(dest_dir)) throw Error(dest_dir + ": extraction directory is not empty");
  std::string tmpl = dest_dir + "/.kbundle-staging.XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) throw_errno("cannot create staging directory in " + dest_dir);
  std::string staging = buf.data();
  try {
    AtomicFileSink sink(staging, {});
    r.read_payload(sink);
    // The whole bundle verified: move the top-level trees into place.
    std::set<std::string> tops;
    for (const auto& e : r.manifest().entries) tops.insert(e.path.substr(0, e.path.find('/', 1)));
    for (const auto& t : tops)
      if (::rename((staging + t).c_str(), (dest_dir + t).c_str()) != 0) throw_errno("cannot move " + staging + t + " into " + dest_dir);
    remove_tree(staging);
    fsync_dir(dest_dir);
  } catch (...) {
    remove_tree(staging);
    throw;
  }
  return r.manifest();
}

}  // namespace kb
