#include "binaries/fetch.h"

#include <archive.h>
#include <archive_entry.h>
#include <cerrno>
#include <dirent.h>
#include <cstdlib>
#include <fcntl.h>
#include <map>
#include <optional>
#include <tuple>
#include <memory>
#include <ostream>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "base/dir_lock.h"
#include "base/error.h"
#include "base/file_io.h"
#include "base/hash.h"
#include "base/unique_fd.h"
#include "binaries/catalog.h"
#include "binaries/checksums.h"
#include "base/exit_code.h"
#include "binaries/oci_archive.h"

namespace kb {

namespace {

struct ReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct WriteFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

bool exists(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0;
}

std::string base_name(const std::string& url) {
  auto slash = url.find_last_of('/');
  return slash == std::string::npos ? url : url.substr(slash + 1);
}

std::string normalize_member(std::string name) {
  while (name.starts_with("./")) name.erase(0, 2);
  return name;
}

// One `kbundle fetch` at a time per cache (fetches and imports both rename into blobs/).
DirLock lock_cache(const std::string& cache_dir) {
  make_dirs(cache_dir + "/blobs/sha256", 0755);
  make_dirs(cache_dir + "/partial", 0755);
  return DirLock(cache_dir, 0644, [&cache_dir](const std::string&) { return Error(cache_dir + ": in use by another kbundle fetch"); });
}

// A file written under a temporary name in `dir` and hashed as it is written; moved into
// the blob store under its own hash by publish(); removed unless published.
class HashingTemp {
 public:
  explicit HashingTemp(const std::string& dir) : path_(dir + "/.tmp-XXXXXX"), fd_(::mkstemp(path_.data())) {
    if (fd_.get() < 0) throw_errno("cannot create a temporary file in " + dir);
  }
  ~HashingTemp() {
    fd_.reset();
    if (!published_) ::unlink(path_.c_str());
  }
  HashingTemp(const HashingTemp&) = delete;
  HashingTemp& operator=(const HashingTemp&) = delete;

  void write(const void* data, size_t len) {
    hash_.update(data, len);
    size_ += len;
    write_all(fd_.get(), std::string_view(static_cast<const char*>(data), len), path_);
  }
  // Closes the file; returns its sha256.
  std::string finish() {
    if (::fchmod(fd_.get(), 0644) != 0) throw_errno("cannot chmod " + path_);
    if (::fsync(fd_.get()) != 0) throw_errno("cannot fsync " + path_);
    fd_.reset();
    sha256_ = hash_.hex_digest();
    return sha256_;
  }
  void publish(const std::string& target) {
    if (::rename(path_.c_str(), target.c_str()) != 0) throw_errno("cannot rename " + path_ + " to " + target);
    published_ = true;
  }
  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }

 private:
  std::string path_;
  UniqueFd fd_;
  Sha256 hash_;
  std::string sha256_;
  uint64_t size_ = 0;
  bool published_ = false;
};

uint64_t file_size(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) throw_errno("cannot stat " + path);
  return static_cast<uint64_t>(st.st_size);
}

// True when the cache holds `sha256` intact.
bool blob_ok(const std::string& cache_dir, const std::string& sha256) {
  std::string p = blob_path(cache_dir, sha256);
  return exists(p) && sha256_file(p).sha256 == sha256;
}

// Takes `member` out of the archive at `artifact` into the blob store; returns {sha256, size}.
std::pair<std::string, uint64_t> extract_member(const std::string& cache_dir, const std::string& artifact,
                                                const std::string& url, const std::string& member) {
  std::unique_ptr<archive, ReadFree> a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), artifact.c_str(), 1 << 16) != ARCHIVE_OK)
    throw Error(url + ": not a readable archive (" + artifact + "): " + archive_error_string(a.get()));
  const std::string want = normalize_member(member);
  archive_entry* e = nullptr;
  int rc;
  while ((rc = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
    const char* raw = archive_entry_pathname(e);
    if (!raw || normalize_member(raw) != want) continue;
    if (archive_entry_filetype(e) != AE_IFREG) throw Error(url + ": " + member + ": not a regular file in the archive");
    HashingTemp out(cache_dir + "/blobs/sha256");
    char buf[1 << 16];
    la_ssize_t n;
    while ((n = archive_read_data(a.get(), buf, sizeof buf)) > 0) out.write(buf, static_cast<size_t>(n));
    if (n < 0) throw Error(url + ": " + member + ": " + archive_error_string(a.get()));
    std::string sha = out.finish();
    uint64_t size = out.size();
    out.publish(blob_path(cache_dir, sha));
    fsync_dir(cache_dir + "/blobs/sha256");
    return {sha, size};
  }
  if (rc != ARCHIVE_EOF) throw Error(url + ": " + archive_error_string(a.get()));
  throw Error(url + ": has no member " + member);
}

// Downloads `url` (checksum at `sum_url`, naming `asset`) into the blob store, verified.
// Returns the verified sha256.
std::string fetch_verified(const std::string& cache_dir, const std::string& url, const std::string& sum_url,
                           const std::string& asset, const DownloadOptions& download) {
  std::string sums;
  try {
    sums = download_text(sum_url, download);
  } catch (const Error& e) {
    // Any vX.Y.Z resolves to URLs; only a published release (present on the mirror) has them.
    throw Error(std::string(e.what()) + " (is this a published release, and does the mirror hold it?)");
  }
  std::string expected = published_sha256(sums, asset, sum_url);
  if (blob_ok(cache_dir, expected)) {
    if (download.log) *download.log << "fetch: " << url << ": already cached (sha256 " << expected << ")\n";
    return expected;
  }
  std::string part = cache_dir + "/partial/" + sha256_hex(url) + ".part";
  download_to_file(url, part, download);
  std::string actual = sha256_file(part).sha256;
  if (actual != expected) {
    ::unlink(part.c_str());
    throw Error(url + ": checksum mismatch: " + sum_url + " publishes sha256 " + expected + ", the download has sha256 " + actual +
                "; refused");
  }
  if (::chmod(part.c_str(), 0644) != 0) throw_errno("cannot chmod " + part);
  if (::rename(part.c_str(), blob_path(cache_dir, expected).c_str()) != 0) throw_errno("cannot rename " + part);
  fsync_dir(cache_dir + "/blobs/sha256");
  return expected;
}

const LockEntry* find_entry(const std::vector<LockEntry>& v, const std::string& component) {
  for (const auto& e : v)
    if (e.component == component) return &e;
  return nullptr;
}

// The cache's current lock for this version when it is readable and matches the catalog.
std::optional<LockFile> usable_lock(const std::string& cache_dir, const CatalogEntry& entry) {
  std::string path = lock_path(cache_dir, entry.kubernetes_version);
  if (!exists(path)) return std::nullopt;
  try {
    LockFile lock = parse_lock(read_file(path), path);
    check_lock_matches_catalog(lock, entry, path);
    return lock;
  } catch (const Error&) {
    return std::nullopt;  // damaged or from another catalog: fetch again
  }
}

}  // namespace

LockFile fetch_into_cache(const std::string& cache_dir, const CatalogEntry& entry, const std::string& mirror,
                          const DownloadOptions& download, std::ostream& log) {
  DirLock guard = lock_cache(cache_dir);
  std::optional<LockFile> previous = usable_lock(cache_dir, entry);
  LockFile lock;
  lock.kubernetes_version = entry.kubernetes_version;

  for (const auto& art : entry.artifacts) {
    // Already fetched and verified, and still intact: no network.
    if (previous) {
      std::vector<LockEntry> kept;
      for (const auto& f : art.files) {
        const LockEntry* e = find_entry(previous->binaries, f.component);
        if (e && blob_ok(cache_dir, e->sha256)) kept.push_back(*e);
      }
      if (kept.size() == art.files.size()) {
        log << "fetch: " << base_name(art.url) << ": cached and intact\n";
        lock.binaries.insert(lock.binaries.end(), kept.begin(), kept.end());
        continue;
      }
    }
    std::string url = mirror_url(mirror, art.url);
    std::string artifact_sha = fetch_verified(cache_dir, url, mirror_url(mirror, art.checksum_url), base_name(art.url), download);
    std::string artifact = blob_path(cache_dir, artifact_sha);
    for (const auto& f : art.files) {
      LockEntry e = lock_entry_for(art, f);
      e.artifact_sha256 = artifact_sha;
      if (f.member.empty()) {
        e.sha256 = artifact_sha;
        e.size = file_size(artifact);
      } else {
        std::tie(e.sha256, e.size) = extract_member(cache_dir, artifact, url, f.member);
      }
      lock.binaries.push_back(std::move(e));
    }
  }

  bool images_kept = previous && !previous->images.empty();
  if (images_kept)
    for (const auto& e : previous->images) images_kept = images_kept && blob_ok(cache_dir, e.sha256);
  if (images_kept && mirror.empty()) {
    lock.images = previous->images;
  } else if (mirror.empty()) {
    log << "fetch: images skipped: registries are not plain downloads; give --mirror (docs/fetch.md)\n";
  } else {
    for (const auto& img : entry.images) {
      const LockEntry* old = images_kept ? find_entry(previous->images, img.component) : nullptr;
      LockEntry e = lock_entry_for(img);
      if (old) {
        log << "fetch: " << img.ref << ": cached and intact\n";
        e.url = old->url;
        e.checksum_url = old->checksum_url;
        e.sha256 = old->sha256;
        e.manifest_digest = old->manifest_digest;
        e.artifact_sha256 = old->artifact_sha256;
        e.size = old->size;
      } else {
        std::string url = image_mirror_url(mirror, img.ref);
        e.sha256 = fetch_verified(cache_dir, url, url + ".sha256", base_name(url), download);
        e.url = url;
        e.checksum_url = url + ".sha256";
        e.manifest_digest = verify_oci_archive(blob_path(cache_dir, e.sha256));
        e.artifact_sha256 = e.sha256;
        e.size = file_size(blob_path(cache_dir, e.sha256));
      }
      lock.images.push_back(std::move(e));
    }
  }
  write_lock(cache_dir, lock);
  return lock;
}

void export_kit(const std::string& cache_dir, const std::string& kubernetes_version, const std::string& kit_path) {
  const CatalogEntry& entry = catalog_entry(kubernetes_version);
  std::string lpath = lock_path(cache_dir, kubernetes_version);
  if (!exists(lpath)) throw Error(lpath + ": nothing cached for Kubernetes " + kubernetes_version + ": run `" +
                                  fetch_command(cache_dir, kubernetes_version) + "`");
  std::string lock_text = read_file(lpath);
  LockFile lock = parse_lock(lock_text, lpath);
  check_lock_matches_catalog(lock, entry, lpath);

  AtomicFile kit(kit_path, 0644);
  std::unique_ptr<archive, WriteFree> a(archive_write_new());
  auto check = [&](int rc, const std::string& what) {
    if (rc != ARCHIVE_OK) throw Error(kit_path + ": " + what + ": " + archive_error_string(a.get()));
  };
  check(archive_write_set_format_pax_restricted(a.get()), "tar format");
  check(archive_write_open_fd(a.get(), kit.fd()), "open");
  auto header = [&](const std::string& name, uint64_t size) {
    std::unique_ptr<archive_entry, EntryFree> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0644);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(size));
    archive_entry_set_mtime(e.get(), 0, 0);
    check(archive_write_header(a.get(), e.get()), name);
  };
  auto add_text = [&](const std::string& name, std::string_view text) {
    header(name, text.size());
    if (archive_write_data(a.get(), text.data(), text.size()) != static_cast<la_ssize_t>(text.size())) check(ARCHIVE_FATAL, name);
  };
  add_text("lock-" + kubernetes_version + ".json", lock_text);
  add_text("catalog-" + kubernetes_version + ".json", entry.source);

  std::set<std::string> done;
  std::vector<const LockEntry*> all;
  for (const auto& e : lock.binaries) all.push_back(&e);
  for (const auto& e : lock.images) all.push_back(&e);
  for (const LockEntry* e : all) {
    if (!done.insert(e->sha256).second) continue;
    std::string src = blob_path(cache_dir, e->sha256);
    UniqueFd fd(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) throw_errno("cannot open " + src + " (" + e->component + "; run `" + fetch_command(cache_dir, kubernetes_version) + "`)");
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0) throw_errno("cannot stat " + src);
    header("blobs/sha256/" + e->sha256, static_cast<uint64_t>(st.st_size));
    Sha256 h;
    char buf[1 << 16];
    uint64_t total = 0;
    for (;;) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw_errno("cannot read " + src);
      if (n == 0) break;
      h.update(buf, static_cast<size_t>(n));
      total += static_cast<uint64_t>(n);
      if (archive_write_data(a.get(), buf, static_cast<size_t>(n)) != n) check(ARCHIVE_FATAL, src);
    }
    std::string actual = h.hex_digest();
    if (actual != e->sha256 || total != static_cast<uint64_t>(st.st_size))
      throw Error(src + ": " + e->component + " does not match the lock file (want sha256 " + e->sha256 + ", file has " + actual +
                  "): run `" + fetch_command(cache_dir, kubernetes_version) + "`");
  }
  check(archive_write_close(a.get()), "close");
  kit.commit();
}

std::string import_kit(const std::string& cache_dir, const std::string& kit_path, std::ostream& log) {
  DirLock guard = lock_cache(cache_dir);
  // 1. Stage every file of the kit in the cache (same file system), hashing as it is copied.
  char tmpl_buf[4096];
  std::string tmpl = cache_dir + "/partial/import-XXXXXX";
  if (tmpl.size() >= sizeof tmpl_buf) throw Error(cache_dir + ": path too long");
  std::copy(tmpl.begin(), tmpl.end(), tmpl_buf);
  tmpl_buf[tmpl.size()] = '\0';
  if (!::mkdtemp(tmpl_buf)) throw_errno("cannot create a staging directory in " + cache_dir + "/partial");
  const std::string staging = tmpl_buf;
  std::unique_ptr<const std::string, void (*)(const std::string*)> cleanup(&staging, [](const std::string* p) { remove_tree(*p); });

  struct Staged {
    std::string path, sha256;
    uint64_t size = 0;
  };
  std::map<std::string, Staged> blobs;     // name in the kit (hex) -> staged copy
  std::map<std::string, std::string> docs;  // "lock-v1.32.3.json" -> text
  auto stage = [&](const std::string& name, auto&& read_chunk) {
    std::string hex = name.substr(13);
    if (!is_sha256_hex(hex) || blobs.count(hex)) throw Error(kit_path + ": " + name + ": unexpected or duplicate entry");
    auto tmp = std::make_unique<HashingTemp>(staging);
    char buf[1 << 16];
    for (;;) {
      auto n = read_chunk(buf, sizeof buf);
      if (n == 0) break;
      tmp->write(buf, n);
    }
    Staged s;
    s.sha256 = tmp->finish();
    s.size = tmp->size();
    s.path = staging + "/" + hex;
    tmp->publish(s.path);
    blobs[hex] = s;
  };
  auto is_doc = [](const std::string& n) {
    return n.find('/') == std::string::npos && n.ends_with(".json") && (n.starts_with("lock-") || n.starts_with("catalog-"));
  };

  struct stat kst{};
  if (::stat(kit_path.c_str(), &kst) != 0) throw_errno("cannot read " + kit_path);
  if (S_ISDIR(kst.st_mode)) {
    // An unpacked kit: the lock and catalog at the top, blobs/sha256/<hex> below.
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(kit_path.c_str()), ::closedir);
    if (!d) throw_errno("cannot open " + kit_path);
    while (dirent* de = ::readdir(d.get())) {
      std::string n = de->d_name;
      if (is_doc(n)) docs[n] = read_file(kit_path + "/" + n);
    }
    std::string bdir = kit_path + "/blobs/sha256";
    std::unique_ptr<DIR, int (*)(DIR*)> b(::opendir(bdir.c_str()), ::closedir);
    if (!b) throw_errno("cannot open " + bdir);
    while (dirent* de = ::readdir(b.get())) {
      std::string n = de->d_name;
      if (n == "." || n == "..") continue;
      std::string src = bdir + "/" + n;
      UniqueFd fd(::open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
      if (fd.get() < 0) throw_errno("cannot open " + src);
      struct stat st{};
      if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) throw Error(src + ": not a regular file");
      stage("blobs/sha256/" + n, [&](char* buf, size_t len) -> size_t {
        for (;;) {
          ssize_t r = ::read(fd.get(), buf, len);
          if (r < 0 && errno == EINTR) continue;
          if (r < 0) throw_errno("cannot read " + src);
          return static_cast<size_t>(r);
        }
      });
    }
  } else {
    std::unique_ptr<archive, ReadFree> a(archive_read_new());
    archive_read_support_filter_all(a.get());
    archive_read_support_format_tar(a.get());
    if (archive_read_open_filename(a.get(), kit_path.c_str(), 1 << 16) != ARCHIVE_OK)
      throw Error(kit_path + ": not a readable kit: " + archive_error_string(a.get()));
    archive_entry* e = nullptr;
    int rc;
    while ((rc = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
      std::string n = normalize_member(archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
      if (archive_entry_filetype(e) == AE_IFDIR && (n == "blobs/" || n == "blobs/sha256/")) continue;
      if (archive_entry_filetype(e) != AE_IFREG) throw Error(kit_path + ": " + n + ": not a regular file; refused");
      auto read_chunk = [&](char* buf, size_t len) -> size_t {
        la_ssize_t r = archive_read_data(a.get(), buf, len);
        if (r < 0) throw Error(kit_path + ": " + n + ": " + archive_error_string(a.get()));
        return static_cast<size_t>(r);
      };
      if (is_doc(n)) {
        if (archive_entry_size(e) > (16 << 20) || docs.count(n)) throw Error(kit_path + ": " + n + ": too large or duplicate");
        std::string text;
        char buf[1 << 16];
        while (size_t r = read_chunk(buf, sizeof buf)) text.append(buf, r);
        docs[n] = std::move(text);
      } else if (n.starts_with("blobs/sha256/")) {
        stage(n, read_chunk);
      } else {
        throw Error(kit_path + ": " + n + ": unexpected entry; refused");
      }
    }
    if (rc != ARCHIVE_EOF) throw Error(kit_path + ": " + archive_error_string(a.get()));
  }

  // 2. The lock: exactly one, for a version this kbundle knows, matching the compiled-in catalog.
  std::string lock_name;
  for (const auto& [n, text] : docs)
    if (n.starts_with("lock-")) {
      if (!lock_name.empty()) throw Error(kit_path + ": holds more than one lock file");
      lock_name = n;
    }
  if (lock_name.empty()) throw Error(kit_path + ": no lock-<version>.json; not a kbundle kit");
  LockFile lock = parse_lock(docs[lock_name], kit_path + ": " + lock_name);
  if (lock_name != "lock-" + lock.kubernetes_version + ".json")
    throw Error(kit_path + ": " + lock_name + ": holds Kubernetes " + lock.kubernetes_version);
  const CatalogEntry& entry = catalog_entry(lock.kubernetes_version);
  check_lock_matches_catalog(lock, entry, kit_path + ": " + lock_name);
  std::string catalog_name = "catalog-" + lock.kubernetes_version + ".json";
  if (!docs.count(catalog_name)) throw Error(kit_path + ": no " + catalog_name);
  check_lock_matches_catalog(lock, parse_catalog(kit_path + ": " + catalog_name, docs[catalog_name]),
                             kit_path + ": " + lock_name + " against " + catalog_name);

  // 3. Every file the lock lists is in the kit with exactly its hash; nothing else is.
  std::vector<const LockEntry*> all;
  for (const auto& e : lock.binaries) all.push_back(&e);
  for (const auto& e : lock.images) all.push_back(&e);
  std::set<std::string> listed;
  for (const LockEntry* e : all) {
    listed.insert(e->sha256);
    auto it = blobs.find(e->sha256);
    std::string what = "blobs/sha256/" + e->sha256 + " (" + e->component + ", " + e->node_path + ")";
    if (it == blobs.end()) throw Error(kit_path + ": " + what + ": missing from the kit; refused");
    if (it->second.sha256 != e->sha256)
      throw Error(kit_path + ": " + what + ": checksum mismatch: the lock says sha256 " + e->sha256 + ", the file has sha256 " +
                  it->second.sha256 + "; refused, nothing imported");
    if (it->second.size != e->size)
      throw Error(kit_path + ": " + what + ": size " + std::to_string(it->second.size) + ", the lock says " + std::to_string(e->size));
  }
  for (const auto& [hex, s] : blobs)
    if (!listed.count(hex)) throw Error(kit_path + ": blobs/sha256/" + hex + ": not in the lock file; refused");
  for (const auto& e : lock.images) {
    std::string digest = verify_oci_archive(blobs[e.sha256].path);
    if (digest != e.manifest_digest)
      throw Error(kit_path + ": image " + e.ref + ": manifest " + digest + ", the lock says " + e.manifest_digest);
  }

  // 4. Accept: move the files into the blob store, then publish the lock; undo on failure.
  std::vector<std::string> added;
  try {
    for (const auto& [hex, s] : blobs) {
      if (blob_ok(cache_dir, hex)) continue;
      std::string target = blob_path(cache_dir, hex);
      if (::rename(s.path.c_str(), target.c_str()) != 0) throw_errno("cannot rename " + s.path + " to " + target);
      added.push_back(target);
    }
    fsync_dir(cache_dir + "/blobs/sha256");
    write_lock(cache_dir, lock);
  } catch (...) {
    for (const auto& p : added) ::unlink(p.c_str());
    throw;
  }
  log << "fetch: imported Kubernetes " << lock.kubernetes_version << " from " << kit_path << ": " << lock.binaries.size()
      << " binaries, " << lock.images.size() << " images, every sha256 verified against the lock\n";
  return lock.kubernetes_version;
}

}  // namespace kb
