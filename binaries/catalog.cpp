#include "binaries/catalog.h"

#include <nlohmann/json.hpp>
#include <set>

#include "base/error.h"
#include "base/embedded_file.h"
#include "base/release_version.h"
#include "base/text_escape.h"

namespace kb {

namespace {

using nlohmann::json;

struct Reader {
  std::string name;  // "v1.32.json"

  [[noreturn]] void fail(const std::string& where, const std::string& why) const {
    throw Error(name + ": " + where + ": " + why);
  }

  std::string str(const json& obj, const std::string& where, const char* key) const {
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_string() || it->get<std::string>().empty())
      fail(where + "." + key, "missing or not a non-empty string");
    return it->get<std::string>();
  }

  std::string url(const json& obj, const std::string& where, const char* key) const {
    std::string u = str(obj, where, key);
    if (!u.starts_with("https://") && !u.starts_with("http://")) fail(where + "." + key, "'" + u + "' is not an http(s) URL");
    if (u.find_first_of("{}") != std::string::npos) fail(where + "." + key, "'" + u + "' has a placeholder left; not a resolved entry");
    return u;
  }

  ReleaseVersion version(const json& obj, const std::string& where, const char* key) const {
    std::string v = str(obj, where, key);
    auto parsed = parse_release_version(v);
    if (!parsed) fail(where + "." + key, "'" + escape_text(v) + "' is not a release version vX.Y.Z");
    return *parsed;
  }

  unsigned mode(const json& obj, const std::string& where, unsigned fallback) const {
    auto it = obj.find("mode");
    if (it == obj.end()) return fallback;
    std::string m = it->is_string() ? it->get<std::string>() : "";
    if (m.size() != 4 || m[0] != '0' || m.find_first_not_of("01234567") != std::string::npos)
      fail(where + ".mode", "want an octal string such as \"0755\"");
    return static_cast<unsigned>(std::stoul(m, nullptr, 8));
  }

  std::string node_path(const json& obj, const std::string& where) const {
    std::string p = str(obj, where, "nodePath");
    if (p[0] != '/' || p.find("/../") != std::string::npos || p.ends_with("/..") || p.ends_with("/"))
      fail(where + ".nodePath", "'" + p + "' is not an absolute file path");
    return p;
  }

  void roles(const json& obj, const std::string& where, bool& control_plane, bool& worker) const {
    auto it = obj.find("roles");
    if (it == obj.end() || !it->is_array() || it->empty()) fail(where + ".roles", "want a list of control-plane and/or worker");
    for (const auto& r : *it) {
      std::string s = r.is_string() ? r.get<std::string>() : "";
      if (s == "control-plane") control_plane = true;
      else if (s == "worker") worker = true;
      else fail(where + ".roles", "unknown role '" + s + "' (want control-plane or worker)");
    }
  }
};

}  // namespace

CatalogEntry parse_catalog(std::string_view name, std::string_view json_text) {
  Reader r{std::string(name)};
  json doc = json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) r.fail("(file)", "not a JSON object");
  CatalogEntry e;
  e.source = std::string(json_text);
  ReleaseVersion k8s = r.version(doc, "(file)", "kubernetesVersion");
  e.kubernetes_version = k8s.str();
  if (doc.contains("kubernetesMinor") && doc["kubernetesMinor"] != k8s.minor_string())
    r.fail("kubernetesVersion", e.kubernetes_version + " is not a release of kubernetesMinor " + doc["kubernetesMinor"].dump());
  const json& versions = doc.contains("versions") ? doc["versions"] : json();
  if (!versions.is_object()) r.fail("versions", "missing or not an object");
  e.etcd_version = r.version(versions, "versions", "etcd").str();
  std::set<std::string> components, node_paths;
  auto claim = [&](const std::string& where, const std::string& component, const std::string& path) {
    if (!components.insert(component).second) r.fail(where + ".component", "'" + component + "' appears twice");
    if (!node_paths.insert(path).second) r.fail(where + ".nodePath", "'" + path + "' appears twice");
  };

  const json& arts = doc.contains("artifacts") ? doc["artifacts"] : json();
  if (!arts.is_array() || arts.empty()) r.fail("artifacts", "missing or empty");
  for (size_t i = 0; i < arts.size(); ++i) {
    std::string where = "artifacts[" + std::to_string(i) + "]";
    const json& a = arts[i];
    if (!a.is_object()) r.fail(where, "not an object");
    CatalogArtifact art;
    art.url = r.url(a, where, "url");
    art.checksum_url = r.url(a, where, "checksumUrl");
    const json& files = a.contains("files") ? a["files"] : json();
    if (!files.is_array() || files.empty()) r.fail(where + ".files", "missing or empty");
    for (size_t j = 0; j < files.size(); ++j) {
      std::string fw = where + ".files[" + std::to_string(j) + "]";
      const json& f = files[j];
      if (!f.is_object()) r.fail(fw, "not an object");
      CatalogFile cf;
      cf.component = r.str(f, fw, "component");
      if (auto m = f.find("member"); m != f.end() && !m->is_null()) cf.member = r.str(f, fw, "member");
      cf.node_path = r.node_path(f, fw);
      cf.mode = r.mode(f, fw, 0755);
      r.roles(f, fw, cf.control_plane, cf.worker);
      if (cf.member.empty() && files.size() > 1) r.fail(fw + ".member", "a plain download holds one file; name the archive member");
      claim(fw, cf.component, cf.node_path);
      art.files.push_back(std::move(cf));
    }
    e.artifacts.push_back(std::move(art));
  }

  if (doc.contains("images")) {
    const json& imgs = doc["images"];
    if (!imgs.is_array()) r.fail("images", "not a list");
    for (size_t i = 0; i < imgs.size(); ++i) {
      std::string where = "images[" + std::to_string(i) + "]";
      const json& m = imgs[i];
      if (!m.is_object()) r.fail(where, "not an object");
      CatalogImage img;
      img.component = r.str(m, where, "component");
      img.ref = r.str(m, where, "ref");
      img.node_path = r.node_path(m, where);
      img.mode = r.mode(m, where, 0644);
      r.roles(m, where, img.control_plane, img.worker);
      try {
        image_mirror_url("m", img.ref);
      } catch (const Error& err) {
        r.fail(where + ".ref", err.what());
      }
      claim(where, img.component, img.node_path);
      e.images.push_back(std::move(img));
    }
  }
  return e;
}

namespace {

ReleaseVersion checked_version(const std::string& kubernetes_version) {
  auto v = parse_release_version(kubernetes_version);
  if (!v) throw Error("Kubernetes '" + escape_text(kubernetes_version) + "': not a release version (want vX.Y.Z, e.g. v1.32.4)");
  return *v;
}

}  // namespace

CatalogEntry resolve_catalog(std::string_view name, std::string_view json_text, const std::string& kubernetes_version) {
  Reader r{std::string(name)};
  const ReleaseVersion v = checked_version(kubernetes_version);  // before it lands in URLs
  json doc = json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) r.fail("(file)", "not a JSON object");
  std::string minor = r.str(doc, "(file)", "kubernetesMinor");
  if (minor != v.minor_string()) throw Error(std::string(name) + ": is for Kubernetes " + minor + ", not " + kubernetes_version);
  if (doc["kubernetesVersion"] != "{version}") r.fail("kubernetesVersion", "a template says \"{version}\"");
  // Every Kubernetes file is checked against the sha256 dl.k8s.io publishes beside it.
  if (doc.contains("artifacts") && doc["artifacts"].is_array())
    for (size_t i = 0; i < doc["artifacts"].size(); ++i) {
      const json& a = doc["artifacts"][i];
      std::string url = a.is_object() && a.contains("url") && a["url"].is_string() ? a["url"].get<std::string>() : "";
      if (url.find("{version}") != std::string::npos && a.value("checksumUrl", json()) != url + ".sha256")
        r.fail("artifacts[" + std::to_string(i) + "].checksumUrl", "want the per-file checksum beside the file: " + url + ".sha256");
    }
  std::string text(json_text);
  for (size_t at = 0; (at = text.find("{version}", at)) != std::string::npos; at += kubernetes_version.size())
    text.replace(at, 9, kubernetes_version);
  return parse_catalog(name, text);
}

namespace {

struct Template {
  std::string name, minor, text;
};

const std::vector<Template>& templates() {
  static const std::vector<Template> all = [] {
    std::vector<Template> v;
    for (const auto& f : embedded_catalog_files()) {
      json doc = json::parse(f.text, nullptr, false);
      std::string minor = doc.is_object() && doc.contains("kubernetesMinor") && doc["kubernetesMinor"].is_string()
                              ? doc["kubernetesMinor"].get<std::string>() : "";
      if (std::string(f.name) != minor + ".json") throw Error(std::string(f.name) + ": kubernetesMinor must name the file (" + minor + ")");
      v.push_back({std::string(f.name), minor, std::string(f.text)});
    }
    return v;
  }();
  return all;
}

}  // namespace

const std::vector<CatalogEntry>& catalog_entries() {
  static const std::vector<CatalogEntry> entries = [] {
    std::vector<CatalogEntry> v;
    for (const auto& t : templates()) v.push_back(resolve_catalog(t.name, t.text, t.minor + ".0"));
    return v;
  }();
  return entries;
}

std::string catalog_versions() {
  std::string s;
  for (const auto& t : templates()) s += (s.empty() ? "" : ", ") + t.minor + ".x";
  return s;
}

CatalogEntry catalog_entry(const std::string& kubernetes_version) {
  const ReleaseVersion v = checked_version(kubernetes_version);
  for (const auto& t : templates())
    if (t.minor == v.minor_string()) return resolve_catalog(t.name, t.text, kubernetes_version);
  throw Error("Kubernetes " + kubernetes_version + ": its minor " + v.minor_string() + " is not in the release catalog (it has " +
              catalog_versions() + ")");
}

std::string mirror_url(const std::string& mirror, const std::string& url) {
  if (mirror.empty()) return url;
  std::string base = mirror;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  for (std::string_view scheme : {"https://", "http://"}) {
    if (url.starts_with(scheme)) return base + "/" + url.substr(scheme.size());
  }
  throw Error(url + ": cannot be mirrored: not an http(s) URL");
}

std::string image_mirror_url(const std::string& mirror, const std::string& ref) {
  // registry/repository:tag; the tag is after the last ':' that follows the last '/'.
  auto slash = ref.find('/');
  auto colon = ref.rfind(':');
  if (ref.find('@') != std::string::npos || slash == std::string::npos || colon == std::string::npos || colon < ref.rfind('/') ||
      colon + 1 == ref.size() || ref.find("..") != std::string::npos)
    throw Error("image '" + ref + "': want registry/repository:tag");
  std::string base = mirror;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  return base + "/oci/" + ref.substr(0, colon) + "/" + ref.substr(colon + 1) + ".tar";
}

}  // namespace kb
