#include "bundles/bundle_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "base/atomic_file.h"
#include "base/file_io.h"
#include "base/hash.h"
#include "base/unique_fd.h"
#include "bundles/bundle_error.h"

namespace kb {

namespace {

constexpr size_t kBlock = kStreamBlock;

// Opens a source file for reading; the caller owns the descriptor.
int open_source(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open " + path);
  return fd;
}

// Reads up to `n` bytes; 0 at end of file.
size_t read_some(int fd, char* buf, size_t n, const std::string& path) {
  for (;;) {
    ssize_t r = ::read(fd, buf, n);
    if (r >= 0) return static_cast<size_t>(r);
    if (errno != EINTR) throw_errno("cannot read " + path);
  }
}

// What identifies a file's content without reading it: any write changes ctime.
struct FileIdentity {
  uint64_t dev, ino, size;
  int64_t mtime_s, mtime_ns, ctime_s, ctime_ns;
  auto operator<=>(const FileIdentity&) const = default;
};

FileIdentity identity(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) throw_errno("cannot stat " + path);
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_size),
          st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_ctim.tv_sec, st.st_ctim.tv_nsec};
}

// Size and sha256 of a source file, with its identity before and after the read when asked.
FileDigest hash_source(const std::string& path, FileIdentity* before = nullptr, FileIdentity* after = nullptr) {
  UniqueFd fd(open_source(path));
  if (before) *before = identity(fd.get(), path);
  FileDigest out = sha256_fd(fd.get(), path);
  if (after) *after = identity(fd.get(), path);
  return out;
}

const char kZeros[1024] = {};

// The 512-byte POSIX ustar header of FORMAT.md §3, byte for byte what
// libarchive's ustar writer produces for the same member.
std::string ustar_header(const std::string& name, bool dir, unsigned mode, uint64_t size, int64_t mtime,
                         const std::string& out_path) {
  std::string h(kTarBlock, '\0');
  auto put = [&](size_t off, const std::string& v) { h.replace(off, v.size(), v); };
  auto octal = [&](size_t off, size_t digits, uint64_t v, const char* what) {
    if (digits < 22 && v >> (3 * digits)) throw Error(out_path + ": " + name + ": " + what + " does not fit a ustar header");
    for (size_t i = digits; i-- > 0; v >>= 3) h[off + i] = static_cast<char>('0' + (v & 7));
  };
  // A long name is split at the first '/' that leaves at most 100 bytes for the name field.
  std::string prefix, last = name;
  if (name.size() > 100) {
    size_t slash = name.find('/', name.size() - 101);
    if (slash == 0) slash = name.find('/', 1);
    if (slash == std::string::npos || slash + 1 == name.size() || slash > 155)
      throw Error(out_path + ": " + name + ": name cannot be split into ustar prefix and name");
    prefix = name.substr(0, slash);
    last = name.substr(slash + 1);
  }
  put(0, last);
  octal(100, 6, mode & 07777, "mode");
  put(106, std::string(" \0", 2));
  for (size_t off : {108u, 116u, 329u, 337u}) put(off, std::string("000000 \0", 8));  // uid, gid, devmajor, devminor
  octal(124, 11, dir ? 0 : size, "size");
  h[135] = ' ';
  if (mtime < 0) throw Error(out_path + ": mtime before 1970");
  octal(136, 11, static_cast<uint64_t>(mtime), "mtime");
  h[147] = ' ';
  h[156] = dir ? '5' : '0';
  put(257, std::string("ustar\0" "00", 8));
  put(265, "root");
  put(297, "root");
  put(345, prefix);
  octal(148, 6, ustar_checksum(h.data()), "checksum");
  put(154, std::string("\0 ", 2));
  return h;
}

using Emit = std::function<void(const char*, size_t)>;

// One libzstd compression context producing complete frames.
class ZstdCtx {
 public:
  // workers >= 1: multithreaded; the bytes are then the same for any number of
  // workers (libzstd guarantees it), but differ from workers == 0.
  ZstdCtx(int level, int workers) : level_(level), ctx_(ZSTD_createCCtx()), out_(new char[kBlock]) {
    if (!ctx_) throw Error("cannot create a zstd context");
    set(ZSTD_c_compressionLevel, level);
    set(ZSTD_c_checksumFlag, 1);
    if (workers > 0) {
      set(ZSTD_c_nbWorkers, workers);
      set(ZSTD_c_jobSize, 4 << 20);  // fixed: job size shapes the output; 4 MiB keeps memory near 30 MiB
    }
  }
  ~ZstdCtx() { ZSTD_freeCCtx(ctx_); }
  ZstdCtx(const ZstdCtx&) = delete;
  ZstdCtx& operator=(const ZstdCtx&) = delete;
  int level() const { return level_; }

  // Starts a frame; `size` is its decompressed size when known (it goes into the frame header).
  void begin(uint64_t size = ZSTD_CONTENTSIZE_UNKNOWN) {
    check(ZSTD_CCtx_reset(ctx_, ZSTD_reset_session_only));
    check(ZSTD_CCtx_setPledgedSrcSize(ctx_, size));
  }
  void write(const char* p, size_t n, const Emit& emit) { run(p, n, ZSTD_e_continue, emit); }
  void end(const Emit& emit) { run(nullptr, 0, ZSTD_e_end, emit); }

 private:
  void set(ZSTD_cParameter p, int v) { check(ZSTD_CCtx_setParameter(ctx_, p, v)); }
  static void check(size_t r) {
    if (ZSTD_isError(r)) throw Error(std::string("zstd: ") + ZSTD_getErrorName(r));
  }
  void run(const char* p, size_t n, ZSTD_EndDirective mode, const Emit& emit) {
    ZSTD_inBuffer in{p, n, 0};
    for (;;) {
      ZSTD_outBuffer out{out_.get(), kBlock, 0};
      size_t r = ZSTD_compressStream2(ctx_, &out, &in, mode);
      check(r);
      if (out.pos > 0) emit(out_.get(), out.pos);
      if (mode == ZSTD_e_end ? r == 0 : in.pos == in.size) return;
    }
  }

  int level_;
  ZSTD_CCtx* ctx_;
  std::unique_ptr<char[]> out_;
};

constexpr int kZstdWorkers = 2;

// Copies `n` bytes at offset 0 of `from` to the current position of `to`.
void copy_bytes(int from, uint64_t n, int to, const std::string& to_path) {
  off_t off = 0;
  uint64_t left = n;
  while (left > 0) {
    ssize_t c = ::copy_file_range(from, &off, to, nullptr, static_cast<size_t>(std::min<uint64_t>(left, 1 << 30)), 0);
    if (c < 0 && errno == EINTR) continue;
    if (c < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP) && off == 0) break;
    if (c < 0) throw_errno("cannot copy a cached frame into " + to_path);
    if (c == 0) throw Error(to_path + ": cached frame ends early");
    left -= static_cast<uint64_t>(c);
  }
  if (left == 0) return;
  // No copy_file_range between these files: 1 MiB blocks through memory.
  std::unique_ptr<char[]> buf(new char[1 << 20]);
  while (left > 0) {
    ssize_t r = ::pread(from, buf.get(), static_cast<size_t>(std::min<uint64_t>(left, 1 << 20)), off);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw_errno("cannot read a cached frame");
    if (r == 0) throw Error(to_path + ": cached frame ends early");
    write_all(to, std::string_view(buf.get(), static_cast<size_t>(r)), to_path);
    off += r;
    left -= static_cast<uint64_t>(r);
  }
}

// Streams a member's content in blocks of at most kBlock bytes.
using Feed = std::function<void(const char*, size_t)>;
using Produce = std::function<void(const Feed&)>;

// The compressed side of a bundle: tar bytes in, compressed bytes out.
class Encoder {
 public:
  virtual ~Encoder() = default;
  virtual void write(const char* p, size_t n) = 0;
  // A whole member: header, content (from `produce`) and padding.
  virtual void member(const std::string& header, const ManifestEntry& e, const Produce& produce) {
    write(header.data(), header.size());
    produce([&](const char* p, size_t n) { write(p, n); });
    write(kZeros, tar_padding(e.size));
  }
  virtual void finish() = 0;
};

class GzipEncoder : public Encoder {
 public:
  GzipEncoder(AtomicFile& out, int level, const std::string& path) : out_(out), path_(path), buf_(new char[kBlock]) {
    std::memset(&z_, 0, sizeof z_);
    // windowBits 16 + 15: a gzip wrapper with zlib's fixed header (MTIME 0, XFL 0 for levels 2-8, OS 3).
    if (deflateInit2(&z_, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) throw Error(path_ + ": cannot initialise zlib");
  }
  ~GzipEncoder() override { deflateEnd(&z_); }
  void write(const char* p, size_t n) override { run(p, n, Z_NO_FLUSH); }
  void finish() override { run(nullptr, 0, Z_FINISH); }

 private:
  void run(const char* p, size_t n, int flush) {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(p));
    z_.avail_in = static_cast<uInt>(n);
    for (;;) {
      z_.next_out = reinterpret_cast<Bytef*>(buf_.get());
      z_.avail_out = static_cast<uInt>(kBlock);
      int r = deflate(&z_, flush);
      if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR) throw Error(path_ + ": deflate failed");
      out_.write(std::string_view(buf_.get(), kBlock - z_.avail_out));
      if (flush == Z_FINISH ? r == Z_STREAM_END : z_.avail_in == 0 && z_.avail_out != 0) return;
    }
  }

  AtomicFile& out_;
  std::string path_;
  z_stream z_;
  std::unique_ptr<char[]> buf_;
};

}  // namespace

// ---- FrameCache ---------------------------------------------------------------

struct FrameCache::Impl {
  struct Slot {
    std::mutex m;  // held while the frame is being made
    bool ready = false;
    int fd = -1;
    uint64_t size = 0;
  };
  std::string dir;
  mutable std::mutex m;  // slots and stats
  std::map<std::string, std::shared_ptr<Slot>> slots;
  Stats stats;
  std::map<FileIdentity, FileDigest> hashes;  // files hashed in this run, guarded by `m`
  std::mutex compress_m;  // one large frame at a time: bounded memory, both cores busy anyway
  std::unique_ptr<ZstdCtx> ctx;

  ~Impl() {
    for (auto& [key, slot] : slots)
      if (slot->fd >= 0) ::close(slot->fd);
  }

  std::shared_ptr<Slot> slot(const std::string& key) {
    std::lock_guard<std::mutex> g(m);
    auto& s = slots[key];
    if (!s) s = std::make_shared<Slot>();
    return s;
  }

  // An unlinked temp file in `dir`.
  int new_file() const {
    int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
    std::string tmpl = dir + "/.kbundle-frame.XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    fd = ::mkostemp(buf.data(), O_CLOEXEC);
    if (fd < 0) throw_errno("cannot create a frame cache file in " + dir);
    ::unlink(buf.data());
    return fd;
  }

  // A file's size and sha256, hashed once per identity (the identity must be
  // the same before and after hashing for the result to be remembered).
  FileDigest file_hash(const std::string& path) {
    FileIdentity id;
    {
      UniqueFd fd(open_source(path));
      id = identity(fd.get(), path);
      std::lock_guard<std::mutex> g(m);
      auto it = hashes.find(id);
      if (it != hashes.end()) return it->second;
    }
    FileIdentity before, after;
    FileDigest sh = hash_source(path, &before, &after);
    if (before == after) {
      std::lock_guard<std::mutex> g(m);
      hashes.emplace(before, sh);
    }
    return sh;
  }

  ZstdCtx& context(int level) {
    if (!ctx || ctx->level() != level) ctx = std::make_unique<ZstdCtx>(level, kZstdWorkers);
    return *ctx;
  }
};

FrameCache::FrameCache(std::string dir) : impl_(std::make_unique<Impl>()) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) throw_errno("frame cache directory " + dir);
  if (!S_ISDIR(st.st_mode)) throw Error("frame cache directory " + dir + ": not a directory");
  impl_->dir = std::move(dir);
}

FrameCache::~FrameCache() = default;

FrameCache::Stats FrameCache::stats() const {
  std::lock_guard<std::mutex> g(impl_->m);
  return impl_->stats;
}

namespace {

class ZstdEncoder : public Encoder {
 public:
  ZstdEncoder(AtomicFile& out, int level, FrameCache::Impl* cache, const std::string& path)
      : out_(out), path_(path), level_(level), cache_(cache), run_(level, 0),
        emit_([this](const char* p, size_t n) { out_.write(std::string_view(p, n)); }) {}

  // Small members share one frame (a "run") until a large member ends it.
  void write(const char* p, size_t n) override {
    if (!in_run_) run_.begin();
    in_run_ = true;
    run_.write(p, n, emit_);
  }

  void member(const std::string& header, const ManifestEntry& e, const Produce& produce) override {
    if (e.cls != EntryClass::Binary && e.size < kOwnFrameMinSize) return Encoder::member(header, e, produce);
    end_run();
    if (!cache_) {
      if (!own_) own_ = std::make_unique<ZstdCtx>(level_, kZstdWorkers);
      return frame(*own_, header, e, produce, emit_);
    }
    // The cache key: everything the frame's bytes depend on.
    Sha256 k;
    k.update("kbundle-frame zstd level " + std::to_string(level_) + "\n");
    k.update(header);
    k.update(e.sha256);
    std::shared_ptr<FrameCache::Impl::Slot> slot = cache_->slot(k.hex_digest());
    std::unique_lock<std::mutex> lock(slot->m);
    if (!slot->ready) {
      int fd = cache_->new_file();
      uint64_t stored = 0;
      try {
        std::lock_guard<std::mutex> g(cache_->compress_m);
        frame(cache_->context(level_), header, e, produce, [&](const char* p, size_t n) {
          emit_(p, n);
          write_all(fd, std::string_view(p, n), "frame cache in " + cache_->dir);
          stored += n;
        });
      } catch (...) {
        ::close(fd);
        throw;
      }
      slot->fd = fd;
      slot->size = stored;
      slot->ready = true;
      std::lock_guard<std::mutex> g(cache_->m);
      ++cache_->stats.frames;
      cache_->stats.stored_bytes += stored;
      return;
    }
    lock.unlock();  // a ready slot never changes
    copy_bytes(slot->fd, slot->size, out_.fd(), path_);
    std::lock_guard<std::mutex> g(cache_->m);
    ++cache_->stats.hits;
    cache_->stats.copied_bytes += slot->size;
  }

  void finish() override { end_run(); }

 private:
  void end_run() {
    if (in_run_) run_.end(emit_);
    in_run_ = false;
  }

  // One frame holding exactly one member: header, content, padding.
  static void frame(ZstdCtx& z, const std::string& header, const ManifestEntry& e, const Produce& produce, const Emit& emit) {
    z.begin(header.size() + e.size + tar_padding(e.size));
    z.write(header.data(), header.size(), emit);
    produce([&](const char* p, size_t n) { z.write(p, n, emit); });
    z.write(kZeros, tar_padding(e.size), emit);
    z.end(emit);
  }

  AtomicFile& out_;
  std::string path_;
  int level_;
  FrameCache::Impl* cache_;
  ZstdCtx run_;
  std::unique_ptr<ZstdCtx> own_;
  Emit emit_;
  bool in_run_ = false;
};

}  // namespace

BundleWriter::BundleWriter(Manifest header) : header_(std::move(header)) { header_.entries.clear(); }

void BundleWriter::add_directory(const std::string& path, unsigned mode, const std::string& owner,
                                 const std::string& group) {
  ManifestEntry e;
  e.path = path;
  e.type = EntryType::Directory;
  e.mode = mode;
  e.owner = owner;
  e.group = group;
  pending_.push_back({std::move(e), std::monostate{}});
}

void BundleWriter::add_file(ManifestEntry meta, std::string content) {
  meta.type = EntryType::File;
  meta.size = content.size();
  meta.sha256 = sha256_hex(content);
  pending_.push_back({std::move(meta), std::variant<std::monostate, std::string, std::string>(std::in_place_index<1>, std::move(content))});
}

void BundleWriter::add_file_from_path(ManifestEntry meta, std::string source_path) {
  meta.type = EntryType::File;
  pending_.push_back({std::move(meta), std::variant<std::monostate, std::string, std::string>(std::in_place_index<2>, std::move(source_path))});
}

Manifest BundleWriter::write(const std::string& out_path, const SigningKey& key, const WriteOptions& options) const {
  // 1. The manifest: entries sorted by path, file sources hashed in a first pass.
  std::vector<const Pending*> order;
  for (const auto& p : pending_) order.push_back(&p);
  std::stable_sort(order.begin(), order.end(), [](const Pending* a, const Pending* b) { return a->entry.path < b->entry.path; });
  Manifest m = header_;
  m.signing_key_sha256 = key.fingerprint();
  for (const Pending* p : order) {
    ManifestEntry e = p->entry;
    if (p->source.index() == 2) {
      const std::string& src = std::get<2>(p->source);
      bool zstd_cache = options.cache && options.compression == Compression::Zstd;
      FileDigest sh = zstd_cache ? options.cache->impl_->file_hash(src) : hash_source(src);
      e.size = sh.size;
      e.sha256 = sh.sha256;
    }
    m.entries.push_back(std::move(e));
  }
  // Levels 20-22 need windows over the 8 MiB that readers are required to accept;
  // gzip levels 1 and 9 would set the XFL byte, which the format fixes at 0.
  if (options.compression == Compression::Zstd && (options.level < 0 || options.level > 19))
    throw Error(out_path + ": zstd level must be 1-19");
  if (options.compression == Compression::Gzip && options.level != 0 && (options.level < 2 || options.level > 8))
    throw Error(out_path + ": gzip level must be 2-8");
  std::string manifest = serialize_manifest(m);  // validates: sorted, unique, safe paths, modes
  std::string signature = key.sign(manifest);
  std::string rollover = rollover_.empty() ? std::string() : serialize_rollover_chain(rollover_);
  if (!rollover_.empty() && rollover_.back().new_key_sha256 != m.signing_key_sha256)
    throw Error(out_path + ": the rollover chain ends at key sha256:" + rollover_.back().new_key_sha256 +
                ", not at the signing key sha256:" + m.signing_key_sha256);
  int64_t mtime = *parse_rfc3339_utc(m.created_at);

  // 2. The tar stream (manifest, signature, then every entry in manifest order), compressed.
  AtomicFile out(out_path, 0600);  // a bundle holds private keys
  std::unique_ptr<Encoder> enc;
  if (options.compression == Compression::Zstd)
    enc = std::make_unique<ZstdEncoder>(out, options.level ? options.level : 3, options.cache ? options.cache->impl_.get() : nullptr,
                                        out_path);
  else
    enc = std::make_unique<GzipEncoder>(out, options.level ? options.level : 6, out_path);
  auto in_memory = [](const std::string& content) {
    return [&content](const Feed& feed) {
      for (size_t at = 0; at < content.size(); at += kBlock) feed(content.data() + at, std::min(kBlock, content.size() - at));
    };
  };
  // The rollover chain (if any), the manifest and the signature always go into the first frame.
  for (const auto& [name, content] : {std::pair{kRolloverMember, &rollover}, std::pair{kManifestMember, &manifest},
                                      std::pair{kSignatureMember, &signature}}) {
    if (name == kRolloverMember && rollover.empty()) continue;
    std::string header = ustar_header(name, false, 0644, content->size(), mtime, out_path);
    enc->write(header.data(), header.size());
    enc->write(content->data(), content->size());
    enc->write(kZeros, tar_padding(content->size()));
  }
  std::unique_ptr<char[]> buf;
  for (size_t i = 0; i < order.size(); ++i) {
    const ManifestEntry& e = m.entries[i];
    const Pending* p = order[i];
    std::string header = ustar_header(member_name(e), e.type == EntryType::Directory, e.mode, e.size, mtime, out_path);
    if (p->source.index() == 0) {
      enc->write(header.data(), header.size());
    } else if (p->source.index() == 1) {
      enc->member(header, e, in_memory(std::get<1>(p->source)));
    } else {
      const std::string& src = std::get<2>(p->source);
      enc->member(header, e, [&](const Feed& feed) {
        if (!buf) buf.reset(new char[kBlock]);
        UniqueFd fd(open_source(src));
        Sha256 h;
        uint64_t done = 0;
        for (size_t n; (n = read_some(fd.get(), buf.get(), kBlock, src)) > 0;) {
          if (done + n > e.size) throw Error(src + ": grew while the bundle was being written");
          h.update(buf.get(), n);
          feed(buf.get(), n);
          done += n;
        }
        // The manifest was signed over the first pass; the bytes written must be those.
        if (done != e.size || h.hex_digest() != e.sha256) throw Error(src + ": changed while the bundle was being written");
      });
    }
  }
  enc->write(kZeros, sizeof kZeros);  // the end-of-archive marker: two zero blocks
  enc->finish();
  out.commit();
  return m;
}

}  // namespace kb
