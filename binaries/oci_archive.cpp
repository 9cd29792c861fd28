#include "binaries/oci_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "base/error.h"
#include "base/hash.h"
#include "binaries/checksums.h"

namespace kb {

namespace {

struct ReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};

std::string normalize(std::string name) {
  while (name.starts_with("./")) name.erase(0, 2);
  return name;
}

constexpr size_t kMaxJson = 4 << 20;  // index, manifests and configs are small

}  // namespace

std::string verify_oci_archive(const std::string& path) {
  std::unique_ptr<archive, ReadFree> a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK)
    throw Error(path + ": not a readable OCI archive: " + archive_error_string(a.get()));
  std::set<std::string> blobs;            // hex digests present
  std::map<std::string, std::string> small;  // hex -> content, for JSON blobs
  std::string index_text, layout_text;
  archive_entry* e = nullptr;
  int rc;
  while ((rc = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
    std::string name = normalize(archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
    if (archive_entry_filetype(e) == AE_IFDIR) continue;
    if (archive_entry_filetype(e) != AE_IFREG) throw Error(path + ": " + name + ": not a regular file");
    bool is_blob = name.starts_with("blobs/sha256/");
    if (!is_blob && name != "index.json" && name != "oci-layout") continue;  // e.g. manifest.json of docker-archive hybrids
    Sha256 h;
    std::string content;
    bool keep = !is_blob || archive_entry_size(e) <= static_cast<la_int64_t>(kMaxJson);
    char buf[1 << 16];
    la_ssize_t n;
    while ((n = archive_read_data(a.get(), buf, sizeof buf)) > 0) {
      h.update(buf, static_cast<size_t>(n));
      if (keep) content.append(buf, static_cast<size_t>(n));
    }
    if (n < 0) throw Error(path + ": " + name + ": " + archive_error_string(a.get()));
    if (name == "index.json") index_text = std::move(content);
    else if (name == "oci-layout") layout_text = std::move(content);
    else {
      std::string hex = name.substr(13);
      if (!is_sha256_hex(hex)) throw Error(path + ": " + name + ": not a sha256 blob name");
      std::string actual = h.hex_digest();
      if (actual != hex) throw Error(path + ": " + name + ": content has sha256 " + actual + ", its name says " + hex);
      blobs.insert(hex);
      if (keep) small[hex] = std::move(content);
    }
  }
  if (rc != ARCHIVE_EOF) throw Error(path + ": " + archive_error_string(a.get()));

  using nlohmann::json;
  json layout = json::parse(layout_text, nullptr, false);
  if (layout_text.empty() || layout.is_discarded() || !layout.contains("imageLayoutVersion"))
    throw Error(path + ": oci-layout: missing or without imageLayoutVersion");
  json index = json::parse(index_text, nullptr, false);
  if (index_text.empty() || index.is_discarded() || !index.contains("manifests") || !index["manifests"].is_array() ||
      index["manifests"].empty())
    throw Error(path + ": index.json: missing or lists no manifest");
  auto digest_hex = [&](const json& desc, const std::string& what) {
    std::string d = desc.is_object() && desc.contains("digest") && desc["digest"].is_string() ? desc["digest"].get<std::string>() : "";
    if (!d.starts_with("sha256:") || !is_sha256_hex(d.substr(7))) throw Error(path + ": " + what + ": no sha256 digest");
    std::string hex = d.substr(7);
    if (!blobs.count(hex)) throw Error(path + ": " + what + ": blob " + d + " is not in the archive");
    return hex;
  };
  std::string manifest_hex = digest_hex(index["manifests"][0], "index.json manifests[0]");
  auto m = small.find(manifest_hex);
  json manifest = m == small.end() ? json() : json::parse(m->second, nullptr, false);
  if (manifest.is_discarded() || !manifest.is_object()) throw Error(path + ": manifest sha256:" + manifest_hex + ": not JSON");
  if (manifest.contains("manifests")) {
    // An index of per-platform manifests: check that every listed one is present.
    for (const auto& d : manifest["manifests"]) digest_hex(d, "nested index");
  } else {
    digest_hex(manifest.value("config", json()), "manifest config");
    if (!manifest.contains("layers") || !manifest["layers"].is_array()) throw Error(path + ": manifest: no layers");
    for (const auto& l : manifest["layers"]) digest_hex(l, "manifest layer");
  }
  return "sha256:" + manifest_hex;
}

}  // namespace kb
