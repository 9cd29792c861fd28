#include "binaries/binary_cache.h"

#include <cerrno>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/hash.h"
#include "binaries/catalog.h"
#include "binaries/checksums.h"

namespace kb {

namespace {

using nlohmann::json;

std::string mode_string(unsigned mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

json roles_json(const LockEntry& e) {
  json r = json::array();
  if (e.control_plane) r.push_back("control-plane");
  if (e.worker) r.push_back("worker");
  return r;
}

json entry_json(const LockEntry& e, bool image) {
  json j;
  j["component"] = e.component;
  j["nodePath"] = e.node_path;
  j["url"] = e.url;
  j["checksumUrl"] = e.checksum_url.empty() ? json(nullptr) : json(e.checksum_url);
  if (image) {
    j["ref"] = e.ref;
    j["manifestDigest"] = e.manifest_digest;
  } else {
    j["member"] = e.member.empty() ? json(nullptr) : json(e.member);
  }
  j["artifactSha256"] = e.artifact_sha256;
  j["sha256"] = e.sha256;
  j["size"] = e.size;
  j["mode"] = mode_string(e.mode);
  j["roles"] = roles_json(e);
  return j;
}

struct LockReader {
  std::string where;
  [[noreturn]] void fail(const std::string& field, const std::string& why) const { throw Error(where + ": " + field + ": " + why); }
  std::string str(const json& o, const std::string& at, const char* key, bool optional = false) const {
    auto it = o.find(key);
    if (optional && (it == o.end() || it->is_null())) return "";
    if (it == o.end() || !it->is_string() || it->get<std::string>().empty()) fail(at + "." + key, "missing or not a non-empty string");
    return it->get<std::string>();
  }
  std::string hash(const json& o, const std::string& at, const char* key) const {
    std::string h = str(o, at, key);
    if (!is_sha256_hex(h) || h.find_first_of("ABCDEF") != std::string::npos) fail(at + "." + key, "not a lowercase sha256");
    return h;
  }
  LockEntry entry(const json& o, const std::string& at, bool image) const {
    if (!o.is_object()) fail(at, "not an object");
    LockEntry e;
    e.component = str(o, at, "component");
    e.node_path = str(o, at, "nodePath");
    e.url = str(o, at, "url");
    e.checksum_url = str(o, at, "checksumUrl", true);  // absent in locks of older kbundles: they no longer match the catalog
    if (image) {
      e.ref = str(o, at, "ref");
      e.manifest_digest = str(o, at, "manifestDigest");
    } else {
      e.member = str(o, at, "member", true);
    }
    e.artifact_sha256 = hash(o, at, "artifactSha256");
    e.sha256 = hash(o, at, "sha256");
    auto size = o.find("size");
    if (size == o.end() || !size->is_number_unsigned()) fail(at + ".size", "missing or not a size");
    e.size = size->get<uint64_t>();
    std::string m = str(o, at, "mode");
    if (m.size() != 4 || m.find_first_not_of("01234567") != std::string::npos) fail(at + ".mode", "not an octal mode");
    e.mode = static_cast<unsigned>(std::stoul(m, nullptr, 8));
    auto roles = o.find("roles");
    if (roles == o.end() || !roles->is_array()) fail(at + ".roles", "missing");
    for (const auto& r : *roles) {
      if (r == "control-plane") e.control_plane = true;
      else if (r == "worker") e.worker = true;
      else fail(at + ".roles", "unknown role");
    }
    return e;
  }
};

const LockEntry* find_component(const std::vector<LockEntry>& v, const std::string& component) {
  for (const auto& e : v)
    if (e.component == component) return &e;
  return nullptr;
}

LockFile read_lock_for(const std::string& cache_dir, const std::string& version, const std::string& command) {
  std::string path = lock_path(cache_dir, version);
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) throw Error(path + ": nothing cached for Kubernetes " + version + ": run `" + command + "`");
    throw_errno("cannot read " + path);
  }
  LockFile lock = parse_lock(read_file(path), path);
  if (lock.kubernetes_version != version)
    throw Error(path + ": holds Kubernetes " + lock.kubernetes_version + ", not " + version + ": run `" + command + "`");
  return lock;
}

// Re-checks every file the roles need; the first problem names `command`.
std::vector<CachedBinary> verified(const std::string& cache_dir, const std::string& lock_file, const std::vector<LockEntry>& entries,
                                   const std::vector<std::pair<std::string, bool>>& wanted, const std::string& command) {
  std::vector<CachedBinary> out;
  for (const auto& [component, needed] : wanted) {
    if (!needed) continue;
    const LockEntry* e = find_component(entries, component);
    if (!e) throw Error(lock_file + ": " + component + " is not in the cache: run `" + command + "`");
    std::string path = blob_path(cache_dir, e->sha256);
    if (::access(path.c_str(), R_OK) != 0)
      throw Error(path + ": " + component + " (" + e->node_path + ") is missing from the cache: run `" + command + "`");
    std::string actual = sha256_file(path).sha256;
    if (actual != e->sha256)
      throw Error(path + ": " + component + " does not match the lock file (want sha256 " + e->sha256 + ", file has " + actual +
                  "): run `" + command + "`");
    out.push_back({e->component, e->node_path, path, e->url, e->checksum_url, e->sha256, e->mode});
  }
  return out;
}

// What a catalog file and a catalog image say alike: which component goes where, how, for whom.
template <typename CatalogItem>
LockEntry node_file_entry(const CatalogItem& item) {
  LockEntry e;
  e.component = item.component;
  e.node_path = item.node_path;
  e.mode = item.mode;
  e.control_plane = item.control_plane;
  e.worker = item.worker;
  return e;
}

}  // namespace

LockEntry lock_entry_for(const CatalogArtifact& artifact, const CatalogFile& file) {
  LockEntry e = node_file_entry(file);
  e.url = artifact.url;
  e.checksum_url = artifact.checksum_url;
  e.member = file.member;
  return e;
}

LockEntry lock_entry_for(const CatalogImage& image) {
  LockEntry e = node_file_entry(image);
  e.ref = image.ref;
  return e;
}

std::string lock_path(const std::string& cache_dir, const std::string& kubernetes_version) {
  return cache_dir + "/lock-" + kubernetes_version + ".json";
}

std::string blob_path(const std::string& cache_dir, const std::string& sha256) { return cache_dir + "/blobs/sha256/" + sha256; }

std::string lock_to_json(const LockFile& lock) {
  json doc;
  doc["kubernetesVersion"] = lock.kubernetes_version;
  doc["binaries"] = json::array();
  for (const auto& e : lock.binaries) doc["binaries"].push_back(entry_json(e, false));
  doc["images"] = json::array();
  for (const auto& e : lock.images) doc["images"].push_back(entry_json(e, true));
  return doc.dump(2) + "\n";
}

LockFile parse_lock(std::string_view json_text, const std::string& where) {
  LockReader r{where};
  json doc = json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) r.fail("(file)", "not a JSON object");
  LockFile lock;
  lock.kubernetes_version = r.str(doc, "(file)", "kubernetesVersion");
  for (const char* key : {"binaries", "images"}) {
    auto it = doc.find(key);
    if (it == doc.end() || !it->is_array()) r.fail(key, "missing or not a list");
    bool image = std::string_view(key) == "images";
    for (size_t i = 0; i < it->size(); ++i)
      (image ? lock.images : lock.binaries).push_back(r.entry((*it)[i], std::string(key) + "[" + std::to_string(i) + "]", image));
  }
  return lock;
}

void write_lock(const std::string& cache_dir, const LockFile& lock) {
  write_file_atomic(lock_path(cache_dir, lock.kubernetes_version), lock_to_json(lock), 0644);
}

void check_lock_matches_catalog(const LockFile& lock, const CatalogEntry& entry, const std::string& where) {
  if (lock.kubernetes_version != entry.kubernetes_version)
    throw Error(where + ": is for Kubernetes " + lock.kubernetes_version + ", the catalog entry for " + entry.kubernetes_version);
  size_t wanted = 0;
  for (const auto& art : entry.artifacts) {
    for (const auto& f : art.files) {
      ++wanted;
      const LockEntry* e = find_component(lock.binaries, f.component);
      if (!e) throw Error(where + ": " + f.component + ": missing");
      if (e->node_path != f.node_path || e->url != art.url || e->checksum_url != art.checksum_url || e->member != f.member ||
          e->mode != f.mode || e->control_plane != f.control_plane || e->worker != f.worker)
        throw Error(where + ": " + f.component +
                    ": does not match the release catalog (node path, URL, checksum URL, member, mode or roles)");
    }
  }
  if (lock.binaries.size() != wanted) throw Error(where + ": lists files that are not in the release catalog");
  if (lock.images.empty()) return;
  for (const auto& img : entry.images) {
    const LockEntry* e = find_component(lock.images, img.component);
    if (!e) throw Error(where + ": image " + img.component + ": missing");
    if (e->node_path != img.node_path || e->ref != img.ref || e->mode != img.mode || e->control_plane != img.control_plane ||
        e->worker != img.worker)
      throw Error(where + ": image " + img.component + ": does not match the release catalog (ref, node path, mode or roles)");
  }
  if (lock.images.size() != entry.images.size()) throw Error(where + ": lists images that are not in the release catalog");
}

std::string fetch_command(const std::string& cache_dir, const std::string& kubernetes_version) {
  return "kbundle fetch --version " + kubernetes_version + " --cache " + cache_dir;
}

std::vector<CachedBinary> binaries_for(const std::string& cache_dir, const std::string& kubernetes_version, bool control_plane,
                                       bool worker) {
  const std::string command = fetch_command(cache_dir, kubernetes_version);
  const CatalogEntry& entry = catalog_entry(kubernetes_version);
  LockFile lock = read_lock_for(cache_dir, kubernetes_version, command);
  std::vector<std::pair<std::string, bool>> wanted;
  for (const auto& art : entry.artifacts)
    for (const auto& f : art.files) wanted.emplace_back(f.component, (control_plane && f.control_plane) || (worker && f.worker));
  auto out = verified(cache_dir, lock_path(cache_dir, kubernetes_version), lock.binaries, wanted, command);
  // The lock must still say what the catalog says (a newer kbundle may ship other files).
  for (const auto& b : out) {
    for (const auto& art : entry.artifacts)
      for (const auto& f : art.files)
        if (f.component == b.component &&
            (f.node_path != b.node_path || f.mode != b.mode || art.url != b.url || art.checksum_url != b.checksum_url))
          throw Error(lock_path(cache_dir, kubernetes_version) + ": " + b.component + " was fetched for another catalog: run `" + command + "`");
  }
  return out;
}

std::vector<CachedBinary> images_for(const std::string& cache_dir, const std::string& kubernetes_version, bool control_plane,
                                     bool worker) {
  const std::string command = fetch_command(cache_dir, kubernetes_version) + " --mirror URL";
  const CatalogEntry& entry = catalog_entry(kubernetes_version);
  LockFile lock = read_lock_for(cache_dir, kubernetes_version, command);
  std::vector<std::pair<std::string, bool>> wanted;
  for (const auto& img : entry.images) wanted.emplace_back(img.component, (control_plane && img.control_plane) || (worker && img.worker));
  auto out = verified(cache_dir, lock_path(cache_dir, kubernetes_version), lock.images, wanted, command);
  for (const auto& b : out) {
    for (const auto& img : entry.images)
      if (img.component == b.component && (img.node_path != b.node_path || img.mode != b.mode))
        throw Error(lock_path(cache_dir, kubernetes_version) + ": image " + b.component + " was fetched for another catalog: run `" +
                    command + "`");
  }
  return out;
}

}  // namespace kb
