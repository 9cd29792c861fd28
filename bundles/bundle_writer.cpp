#include "bundles/bundle_writer.h"

#include <algorithm>
#include <archive.h>
#include <archive_entry.h>
#include <cerrno>
#include <fcntl.h>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

#include "bundles/atomic_file.h"
#include "bundles/bundle_error.h"
#include "bundles/hash.h"

namespace kb {

namespace {

constexpr size_t kBlock = 256 * 1024;

struct ArchiveWriteFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

class Fd {
 public:
  explicit Fd(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) throw_errno("cannot open " + path);
  }
  ~Fd() { ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  // Reads up to `n` bytes; 0 at end of file.
  size_t read(char* buf, size_t n, const std::string& path) {
    for (;;) {
      ssize_t r = ::read(fd_, buf, n);
      if (r >= 0) return static_cast<size_t>(r);
      if (errno != EINTR) throw_errno("cannot read " + path);
    }
  }

 private:
  int fd_;
};

struct SizeHash {
  uint64_t size = 0;
  std::string sha256;
};

SizeHash hash_file(const std::string& path) {
  Fd fd(path);
  Sha256 h;
  SizeHash out;
  std::unique_ptr<char[]> buf(new char[kBlock]);
  for (size_t n; (n = fd.read(buf.get(), kBlock, path)) > 0;) {
    h.update(buf.get(), n);
    out.size += n;
  }
  out.sha256 = h.hex_digest();
  return out;
}

class TarOut {
 public:
  TarOut(int fd, const WriteOptions& o, int64_t mtime, const std::string& out_path) : a_(archive_write_new()), mtime_(mtime), path_(out_path) {
    if (!a_) throw Error(path_ + ": cannot create archive writer");
    // ustar: every field is a fixed-width header field, so there is no room for
    // variable extension headers (no atime/ctime, no PaxHeaders with pids).
    check(archive_write_set_format_ustar(a_.get()), "ustar format");
    if (o.compression == Compression::Zstd) {
      // ARCHIVE_WARN would mean an external zstd program: refuse, output must not depend on one.
      if (archive_write_add_filter_zstd(a_.get()) != ARCHIVE_OK) fail("zstd support is not built into libarchive");
      // Levels 20-22 need windows over the 8 MiB that readers are required to accept.
      if (o.level < 0 || o.level > 19) fail("zstd level must be 1-19");
      std::string level = std::to_string(o.level ? o.level : 3);
      check(archive_write_set_filter_option(a_.get(), "zstd", "compression-level", level.c_str()), "zstd level");
    } else {
      if (archive_write_add_filter_gzip(a_.get()) != ARCHIVE_OK) fail("gzip support is not built into libarchive");
      // Levels 1 and 9 would set the gzip XFL byte, which the format fixes at 0.
      if (o.level != 0 && (o.level < 2 || o.level > 8)) fail("gzip level must be 2-8");
      std::string level = std::to_string(o.level ? o.level : 6);
      check(archive_write_set_filter_option(a_.get(), "gzip", "compression-level", level.c_str()), "gzip level");
      // The gzip header's MTIME would otherwise be the current time.
      check(archive_write_set_filter_option(a_.get(), "gzip", "timestamp", nullptr), "gzip timestamp");
    }
    // No padding of the compressed output: nothing may follow the compressed stream.
    check(archive_write_set_bytes_in_last_block(a_.get(), 1), "block size");
    check(archive_write_open_fd(a_.get(), fd), "open");
  }

  void begin(const std::string& name, bool dir, unsigned mode, uint64_t size) {
    std::unique_ptr<archive_entry, EntryFree> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), dir ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(e.get(), mode);
    archive_entry_set_size(e.get(), dir ? 0 : static_cast<la_int64_t>(size));
    archive_entry_set_uid(e.get(), 0);
    archive_entry_set_gid(e.get(), 0);
    archive_entry_set_uname(e.get(), "root");
    archive_entry_set_gname(e.get(), "root");
    archive_entry_set_mtime(e.get(), mtime_, 0);
    int rc = archive_write_header(a_.get(), e.get());
    if (rc != ARCHIVE_OK) fail("cannot write header for " + name + ": " + err());
  }

  void data(const char* p, size_t n) {
    while (n > 0) {
      la_ssize_t w = archive_write_data(a_.get(), p, n);
      if (w <= 0) fail("cannot write data: " + err());
      p += w;
      n -= static_cast<size_t>(w);
    }
  }

  void close() { check(archive_write_close(a_.get()), "close"); }

 private:
  std::string err() const {
    const char* s = archive_error_string(a_.get());
    return s ? s : "unknown libarchive error";
  }
  [[noreturn]] void fail(const std::string& why) const { throw Error(path_ + ": " + why); }
  void check(int rc, const char* what) const {
    if (rc != ARCHIVE_OK) fail(std::string(what) + ": " + err());
  }

  std::unique_ptr<archive, ArchiveWriteFree> a_;
  int64_t mtime_;
  std::string path_;
};

}  // namespace

const char* to_string(Compression c) { return c == Compression::Zstd ? "zstd" : "gzip"; }

std::string member_name(const ManifestEntry& e) {
  return "files" + e.path + (e.type == EntryType::Directory ? "/" : "");
}

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
      SizeHash sh = hash_file(std::get<2>(p->source));
      e.size = sh.size;
      e.sha256 = sh.sha256;
    }
    m.entries.push_back(std::move(e));
  }
  std::string manifest = serialize_manifest(m);  // validates: sorted, unique, safe paths, modes
  std::string signature = key.sign(manifest);
  int64_t mtime = *parse_rfc3339_utc(m.created_at);

  // 2. The tar stream: manifest, signature, then every entry in manifest order.
  AtomicFile out(out_path, 0600);  // a bundle holds private keys
  TarOut tar(out.fd(), options, mtime, out_path);
  tar.begin(kManifestMember, false, 0644, manifest.size());
  tar.data(manifest.data(), manifest.size());
  tar.begin(kSignatureMember, false, 0644, signature.size());
  tar.data(signature.data(), signature.size());
  std::unique_ptr<char[]> buf;
  for (size_t i = 0; i < order.size(); ++i) {
    const ManifestEntry& e = m.entries[i];
    const Pending* p = order[i];
    tar.begin(member_name(e), e.type == EntryType::Directory, e.mode, e.size);
    if (p->source.index() == 1) {
      const std::string& content = std::get<1>(p->source);
      tar.data(content.data(), content.size());
    } else if (p->source.index() == 2) {
      const std::string& src = std::get<2>(p->source);
      if (!buf) buf.reset(new char[kBlock]);
      Fd fd(src);
      Sha256 h;
      uint64_t done = 0;
      for (size_t n; (n = fd.read(buf.get(), kBlock, src)) > 0;) {
        if (done + n > e.size) throw Error(src + ": grew while the bundle was being written");
        h.update(buf.get(), n);
        tar.data(buf.get(), n);
        done += n;
      }
      // The manifest was signed over the first pass; the bytes written must be those.
      if (done != e.size || h.hex_digest() != e.sha256) throw Error(src + ": changed while the bundle was being written");
    }
  }
  tar.close();
  out.commit();
  return m;
}

}  // namespace kb
