#include "base/temp_dir.h"
#include "binaries/binary_cache.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <set>
#include <stdlib.h>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/hash.h"
#include "binaries/catalog.h"

using namespace kb;

namespace {

using kb::TempDir;

// A cache as `kbundle fetch` leaves it, with stand-in contents, for `version`.
LockFile fill_cache(const std::string& cache, const std::string& version, bool images) {
  const CatalogEntry& entry = catalog_entry(version);
  make_dirs(cache + "/blobs/sha256", 0755);
  auto put = [&](const std::string& content) {
    std::string sha = sha256_hex(content);
    write_file_atomic(blob_path(cache, sha), content, 0644);
    return sha;
  };
  LockFile lock;
  lock.kubernetes_version = version;
  for (const auto& art : entry.artifacts) {
    std::string artifact_sha = put("artifact " + art.url);
    for (const auto& f : art.files) {
      LockEntry e = lock_entry_for(art, f);
      e.artifact_sha256 = artifact_sha;
      std::string content = "#!/bin/sh\necho kbundle test stand-in " + f.component + "\n";
      e.sha256 = put(content);
      e.size = content.size();
      lock.binaries.push_back(e);
    }
  }
  if (images) {
    for (const auto& img : entry.images) {
      LockEntry e = lock_entry_for(img);
      e.url = image_mirror_url("http://127.0.0.1:1", img.ref);
      std::string content = "oci archive " + img.ref;
      e.sha256 = e.artifact_sha256 = put(content);
      e.manifest_digest = "sha256:" + std::string(64, '0');
      e.size = content.size();
      lock.images.push_back(e);
    }
  }
  write_lock(cache, lock);
  return lock;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::set<std::string> components(const std::vector<CachedBinary>& v) {
  std::set<std::string> s;
  for (const auto& b : v) s.insert(b.component);
  return s;
}

}  // namespace

TEST_CASE("a lock file survives a round trip byte for byte", "[binary_cache]") {
  TempDir tmp;
  LockFile lock = fill_cache(tmp.path, "v1.32.3", true);
  std::string text = lock_to_json(lock);
  LockFile back = parse_lock(text, "lock");
  CHECK(lock_to_json(back) == text);
  REQUIRE(back.binaries.size() == lock.binaries.size());
  REQUIRE(back.images.size() == 2);
  for (size_t i = 0; i < back.binaries.size(); ++i) {
    const auto &a = lock.binaries[i], &b = back.binaries[i];
    CHECK(a.component == b.component);
    CHECK(a.node_path == b.node_path);
    CHECK(a.url == b.url);
    CHECK(a.member == b.member);
    CHECK(a.sha256 == b.sha256);
    CHECK(a.artifact_sha256 == b.artifact_sha256);
    CHECK(a.size == b.size);
    CHECK(a.mode == b.mode);
    CHECK(a.control_plane == b.control_plane);
    CHECK(a.worker == b.worker);
  }
  CHECK(back.images[0].ref == "registry.k8s.io/pause:3.10");
  CHECK(back.images[0].manifest_digest == lock.images[0].manifest_digest);
  CHECK(read_file(lock_path(tmp.path, "v1.32.3")) == text);
  CHECK_NOTHROW(check_lock_matches_catalog(back, catalog_entry("v1.32.3"), "lock"));
}

TEST_CASE("damaged lock files are refused with the field", "[binary_cache]") {
  TempDir tmp;
  std::string good = lock_to_json(fill_cache(tmp.path, "v1.32.3", false));
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    auto at = s.find(from);
    REQUIRE(at != std::string::npos);
    return s.replace(at, from.size(), to);
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", "not a JSON object"},
      {replaced("\"binaries\"", "\"bins\""), "binaries: missing"},
      {replaced("\"sha256\": \"", "\"sha256\": \"x"), "binaries[0].sha256: not a lowercase sha256"},
      {replaced("\"mode\": \"0755\"", "\"mode\": \"rwx\""), "binaries[0].mode"},
      {replaced("\"control-plane\"", "\"master\""), "binaries[0].roles"},
  };
  for (const auto& [text, want] : cases) {
    INFO(want);
    CHECK_THAT(error_of([&] { parse_lock(text, "L"); }), Catch::StartsWith("L: ") && Catch::Contains(want));
  }
}

TEST_CASE("a lock that moves or adds a file does not match the catalog", "[binary_cache]") {
  TempDir tmp;
  LockFile lock = fill_cache(tmp.path, "v1.32.3", true);
  const CatalogEntry& entry = catalog_entry("v1.32.3");
  LockFile moved = lock;
  moved.binaries[0].node_path = "/etc/shadow";
  CHECK_THAT(error_of([&] { check_lock_matches_catalog(moved, entry, "L"); }),
             Catch::Contains("kube-apiserver: does not match the release catalog"));
  LockFile extra = lock;
  extra.binaries.push_back(lock.binaries[0]);
  extra.binaries.back().component = "evil";
  CHECK_THAT(error_of([&] { check_lock_matches_catalog(extra, entry, "L"); }), Catch::Contains("not in the release catalog"));
  LockFile dropped = lock;
  dropped.binaries.pop_back();
  CHECK_THAT(error_of([&] { check_lock_matches_catalog(dropped, entry, "L"); }), Catch::Contains("missing"));
  LockFile image = lock;
  image.images[0].ref = "evil.example/pause:3.10";
  CHECK_THAT(error_of([&] { check_lock_matches_catalog(image, entry, "L"); }), Catch::Contains("image pause"));
}

TEST_CASE("binaries_for returns what each role needs, re-verified", "[binary_cache]") {
  TempDir tmp;
  fill_cache(tmp.path, "v1.32.3", true);
  auto cp = binaries_for(tmp.path, "v1.32.3", true, false);
  CHECK(components(cp) == std::set<std::string>{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd",
                                                "etcdctl"});
  auto worker = binaries_for(tmp.path, "v1.32.3", false, true);
  CHECK(components(worker) == std::set<std::string>{"kubelet", "kube-proxy", "kubectl", "containerd", "containerd-shim-runc-v2",
                                                    "ctr", "runc", "crictl", "cni-bridge", "cni-host-local", "cni-loopback"});
  CHECK(binaries_for(tmp.path, "v1.32.3", true, true).size() == 16);
  for (const auto& b : worker) {
    CHECK(b.mode == 0755);
    CHECK(b.cache_path == blob_path(tmp.path, b.sha256));
    CHECK(sha256_hex(read_file(b.cache_path)) == b.sha256);
    if (b.component == "cni-bridge") CHECK(b.node_path == "/opt/cni/bin/bridge");
    if (b.component == "kubelet") CHECK(b.url == "https://dl.k8s.io/release/v1.32.3/bin/linux/amd64/kubelet");
  }
  auto images = images_for(tmp.path, "v1.32.3", false, true);
  REQUIRE(images.size() == 2);
  CHECK(images[0].node_path == "/var/lib/kbundle-images/pause.tar");
  CHECK(images[0].mode == 0644);
  CHECK(images_for(tmp.path, "v1.32.3", true, false).empty());
}

TEST_CASE("a missing or changed binary names the fetch command", "[binary_cache]") {
  TempDir tmp;
  const std::string command = "kbundle fetch --version v1.32.3 --cache " + tmp.path;
  CHECK_THAT(error_of([&] { binaries_for(tmp.path, "v1.32.3", false, true); }),
             Catch::StartsWith(tmp.path + "/lock-v1.32.3.json: ") && Catch::Contains("`" + command + "`"));

  LockFile lock = fill_cache(tmp.path, "v1.32.3", false);
  // No images fetched (no mirror): the command asks for one.
  CHECK_THAT(error_of([&] { images_for(tmp.path, "v1.32.3", false, true); }),
             Catch::Contains("pause is not in the cache") && Catch::Contains("`" + command + " --mirror URL`"));

  const LockEntry* kubelet = nullptr;
  for (const auto& e : lock.binaries)
    if (e.component == "kubelet") kubelet = &e;
  REQUIRE(kubelet);
  std::string blob = blob_path(tmp.path, kubelet->sha256);
  write_file_atomic(blob, "tampered", 0644);
  std::string err = error_of([&] { binaries_for(tmp.path, "v1.32.3", false, true); });
  CHECK_THAT(err, Catch::StartsWith(blob + ": kubelet does not match") && Catch::Contains(kubelet->sha256) &&
                      Catch::Contains(sha256_hex("tampered")) && Catch::Contains("`" + command + "`"));
  // The control plane does not need kubelet: still fine.
  CHECK(binaries_for(tmp.path, "v1.32.3", true, false).size() == 6);

  std::filesystem::remove(blob);
  CHECK_THAT(error_of([&] { binaries_for(tmp.path, "v1.32.3", false, true); }),
             Catch::Contains("kubelet (/usr/local/bin/kubelet) is missing from the cache") && Catch::Contains("`" + command + "`"));

  // A lock without kubelet (e.g. from an older catalog).
  LockFile partial = lock;
  std::erase_if(partial.binaries, [](const LockEntry& e) { return e.component == "kubelet"; });
  write_lock(tmp.path, partial);
  CHECK_THAT(error_of([&] { binaries_for(tmp.path, "v1.32.3", false, true); }),
             Catch::Contains("kubelet is not in the cache") && Catch::Contains("`" + command + "`"));

  // Another version than the one cached.
  CHECK_THAT(error_of([&] { binaries_for(tmp.path, "v1.33.3", false, true); }),
             Catch::Contains("`kbundle fetch --version v1.33.3 --cache " + tmp.path + "`"));
}

TEST_CASE("the lock records where each file's sha256 was published; a lock without it is fetched again", "[binary_cache]") {
  TempDir tmp;
  LockFile lock = fill_cache(tmp.path, "v1.32.4", false);
  for (const auto& e : lock.binaries) {
    INFO(e.component);
    if (e.url.starts_with("https://dl.k8s.io/")) {
      CHECK(e.url.find("/v1.32.4/") != std::string::npos);
      CHECK(e.checksum_url == e.url + ".sha256");
    }
  }
  LockFile back = parse_lock(lock_to_json(lock), "lock");
  CHECK(back.binaries[0].checksum_url == lock.binaries[0].checksum_url);
  CHECK(lock_to_json(lock).find("\"checksumUrl\": \"https://dl.k8s.io/release/v1.32.4/bin/linux/amd64/kubelet.sha256\"") !=
        std::string::npos);
  CHECK(binaries_for(tmp.path, "v1.32.4", false, true).size() == 11);
  // Another patch of the same minor is another lock: named with its own fetch command.
  CHECK_THAT(error_of([&] { binaries_for(tmp.path, "v1.32.5", false, true); }),
             Catch::Contains("`kbundle fetch --version v1.32.5 --cache " + tmp.path + "`"));
  // A lock written before checksum URLs were recorded (or naming another one) does not match the catalog.
  for (const std::string& sum : {std::string(), std::string("https://evil.example/kubelet.sha256")}) {
    LockFile old = lock;
    for (auto& e : old.binaries)
      if (e.component == "kubelet") e.checksum_url = sum;
    write_lock(tmp.path, old);
    std::string text = read_file(lock_path(tmp.path, "v1.32.4"));
    CHECK_NOTHROW(parse_lock(text, "lock"));
    CHECK_THROWS_WITH(check_lock_matches_catalog(parse_lock(text, "lock"), catalog_entry("v1.32.4"), "lock"),
                      Catch::Contains("kubelet: does not match the release catalog"));
    CHECK_THAT(error_of([&] { binaries_for(tmp.path, "v1.32.4", false, true); }),
               Catch::Contains("fetched for another catalog") && Catch::Contains("`kbundle fetch --version v1.32.4"));
  }
}
