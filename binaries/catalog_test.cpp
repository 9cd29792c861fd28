#include "binaries/catalog.h"

#include <catch2/catch.hpp>
#include <set>

#include "base/error.h"

using namespace kb;

namespace {

const CatalogFile* find_file(const CatalogEntry& e, const std::string& component, const CatalogArtifact** art = nullptr) {
  for (const auto& a : e.artifacts)
    for (const auto& f : a.files)
      if (f.component == component) {
        if (art) *art = &a;
        return &f;
      }
  return nullptr;
}

}  // namespace

TEST_CASE("the compiled-in catalog has a template per minor: v1.32 first, then v1.33", "[catalog]") {
  const auto& entries = catalog_entries();
  REQUIRE(entries.size() >= 2);
  CHECK(entries[0].kubernetes_version == "v1.32.0");
  CHECK(entries[1].kubernetes_version == "v1.33.0");
  CHECK(catalog_versions().starts_with("v1.32.x, v1.33.x"));
  for (const auto& e : entries) CHECK(e.etcd_version == "v3.5.21");
}

TEST_CASE("any patch release of a supported minor resolves; the Kubernetes files carry the version", "[catalog]") {
  for (const char* version : {"v1.32.3", "v1.32.4", "v1.32.9", "v1.32.10", "v1.33.0", "v1.33.7"}) {
    INFO(version);
    CatalogEntry e = catalog_entry(version);
    CHECK(e.kubernetes_version == version);
    size_t kube = 0;
    for (const auto& a : e.artifacts) {
      if (a.url.starts_with("https://dl.k8s.io/")) {
        ++kube;
        CHECK(a.url.starts_with(std::string("https://dl.k8s.io/release/") + version + "/bin/linux/amd64/"));
        CHECK(a.checksum_url == a.url + ".sha256");  // the per-file sha256 published beside it
      } else {
        // etcd, containerd...: fixed per minor, the same URL for every patch release.
        bool same = false;
        for (const auto& other : catalog_entry(e.kubernetes_version.substr(0, e.kubernetes_version.rfind('.')) + ".77").artifacts)
          same = same || other.url == a.url;
        CHECK(same);
      }
    }
    CHECK(kube == 6);
    // What a kit carries is the resolved entry: it parses alone, to the same thing.
    CHECK(e.source.find("{version}") == std::string::npos);
    CatalogEntry again = parse_catalog("kit", e.source);
    CHECK(again.kubernetes_version == version);
    CHECK(again.artifacts.size() == e.artifacts.size());
    CHECK(again.artifacts[0].url == e.artifacts[0].url);
  }
  // Components fixed per minor differ between minors.
  const CatalogArtifact* a32 = nullptr;
  const CatalogArtifact* a33 = nullptr;
  CatalogEntry e32 = catalog_entry("v1.32.4"), e33 = catalog_entry("v1.33.3");
  find_file(e32, "containerd", &a32);
  find_file(e33, "containerd", &a33);
  CHECK(a32->url.find("/v2.0.4/") != std::string::npos);
  CHECK(a33->url.find("/v2.1.4/") != std::string::npos);
}

TEST_CASE("every catalog entry lists every node component with its place and roles", "[catalog]") {
  const std::vector<std::tuple<std::string, std::string, bool, bool>> want = {
      {"kube-apiserver", "/usr/local/bin/kube-apiserver", true, false},
      {"kube-controller-manager", "/usr/local/bin/kube-controller-manager", true, false},
      {"kube-scheduler", "/usr/local/bin/kube-scheduler", true, false},
      {"etcd", "/usr/local/bin/etcd", true, false},
      {"etcdctl", "/usr/local/bin/etcdctl", true, false},
      {"kubectl", "/usr/local/bin/kubectl", true, true},
      {"kubelet", "/usr/local/bin/kubelet", false, true},
      {"kube-proxy", "/usr/local/bin/kube-proxy", false, true},
      {"containerd", "/usr/local/bin/containerd", false, true},
      {"containerd-shim-runc-v2", "/usr/local/bin/containerd-shim-runc-v2", false, true},
      {"ctr", "/usr/local/bin/ctr", false, true},
      {"runc", "/usr/local/bin/runc", false, true},
      {"crictl", "/usr/local/bin/crictl", false, true},
      {"cni-bridge", "/opt/cni/bin/bridge", false, true},
      {"cni-host-local", "/opt/cni/bin/host-local", false, true},
      {"cni-loopback", "/opt/cni/bin/loopback", false, true},
  };
  for (const auto& e : catalog_entries()) {
    INFO(e.kubernetes_version);
    for (const auto& [component, path, cp, worker] : want) {
      INFO(component);
      const CatalogArtifact* art = nullptr;
      const CatalogFile* f = find_file(e, component, &art);
      REQUIRE(f);
      CHECK(f->node_path == path);
      CHECK(f->mode == 0755);
      CHECK(f->control_plane == cp);
      CHECK(f->worker == worker);
      CHECK(art->url.starts_with("https://"));
      CHECK(!art->checksum_url.empty());
    }
    const CatalogArtifact* art = nullptr;
    find_file(e, "kubelet", &art);
    CHECK(art->url == "https://dl.k8s.io/release/" + e.kubernetes_version + "/bin/linux/amd64/kubelet");
    CHECK(art->checksum_url == art->url + ".sha256");
    CHECK(find_file(e, "etcd", &art)->member.ends_with("-linux-amd64/etcd"));
    CHECK(art->checksum_url.ends_with("/SHA256SUMS"));
    CHECK(find_file(e, "containerd", &art)->member == "bin/containerd");
    CHECK(art->checksum_url == art->url + ".sha256sum");
    const CatalogArtifact* ctr_art = nullptr;
    CHECK(find_file(e, "ctr", &ctr_art)->member == "bin/ctr");
    CHECK(ctr_art == art);  // the containerd release tarball
    CHECK(find_file(e, "runc", &art)->member.empty());
    CHECK(art->url.ends_with("/runc.amd64"));
    CHECK(art->checksum_url.ends_with("/runc.sha256sum"));
    REQUIRE(e.images.size() == 2);
    CHECK(e.images[0].ref == "registry.k8s.io/pause:3.10");
    CHECK(e.images[0].node_path == "/var/lib/kbundle-images/pause.tar");
    CHECK(e.images[1].ref.starts_with("registry.k8s.io/coredns/coredns:v1."));
  }
}

TEST_CASE("an unknown minor names the ones the catalog has; a malformed version never reaches a URL", "[catalog]") {
  for (const char* v : {"v1.31.0", "v1.34.0", "v2.32.0"}) {
    INFO(v);
    try {
      catalog_entry(v);
      FAIL("no error");
    } catch (const Error& e) {
      CHECK_THAT(e.what(), Catch::Contains(v) && Catch::Contains("v1.32.x, v1.33.x"));
    }
  }
  for (const char* v : {"", "1.32.4", "v1.32", "v1.32.4-rc.1", "v1.32.4/../../evil", "v1.32.4?x=1", "v1.32.4\"", "v1.32.04",
                        "v1.32.{version}", "v1.32.4 "}) {
    INFO(v);
    try {
      catalog_entry(v);
      FAIL("no error");
    } catch (const Error& e) {
      CHECK_THAT(e.what(), Catch::Contains("not a release version (want vX.Y.Z"));
    }
  }
}

TEST_CASE("templates: a Kubernetes file must use the checksum beside it; the minor must match", "[catalog]") {
  const std::string good = R"({"kubernetesMinor":"v1.32","kubernetesVersion":"{version}","versions":{"etcd":"v3.5.21"},
    "artifacts":[{"url":"https://dl.k8s.io/release/{version}/kubelet","checksumUrl":"https://dl.k8s.io/release/{version}/kubelet.sha256",
    "files":[{"component":"kubelet","nodePath":"/usr/local/bin/kubelet","roles":["worker"]}]}]})";
  CatalogEntry e = resolve_catalog("t.json", good, "v1.32.9");
  CHECK(e.artifacts[0].url == "https://dl.k8s.io/release/v1.32.9/kubelet");
  auto refused = [&](std::string text, const std::string& version, const std::string& want) {
    INFO(text);
    try {
      resolve_catalog("t.json", text, version);
      FAIL("accepted");
    } catch (const Error& err) {
      CHECK_THAT(err.what(), Catch::Contains(want));
    }
  };
  refused(good, "v1.33.0", "is for Kubernetes v1.32, not v1.33.0");
  std::string other_sum = good;
  other_sum.replace(other_sum.find("kubelet.sha256"), 14, "SHA256SUMS");
  refused(other_sum, "v1.32.4", "artifacts[0].checksumUrl: want the per-file checksum beside the file");
  std::string fixed = good;
  fixed.replace(fixed.find("\"kubernetesVersion\":\"{version}\""), 31, "\"kubernetesVersion\":\"v1.32.3\"");
  refused(fixed, "v1.32.4", "kubernetesVersion");
  std::string no_etcd = good;
  no_etcd.replace(no_etcd.find("\"etcd\""), 6, "\"etc\"");
  refused(no_etcd, "v1.32.4", "versions.etcd");
  // A resolved entry with a placeholder left, or of another minor than it says, is refused.
  CHECK_THROWS_WITH(parse_catalog("kit", good), Catch::Contains("kubernetesVersion"));
  std::string half = good;
  half.replace(half.find("{version}\""), 10, "v1.32.4\"");
  CHECK_THROWS_WITH(parse_catalog("kit", half), Catch::Contains("placeholder"));
  std::string wrong_minor = half;
  for (size_t at; (at = wrong_minor.find("{version}")) != std::string::npos;) wrong_minor.replace(at, 9, "v1.32.4");
  wrong_minor.replace(wrong_minor.find("\"v1.32\""), 7, "\"v1.33\"");
  CHECK_THROWS_WITH(parse_catalog("kit", wrong_minor), Catch::Contains("not a release of kubernetesMinor"));
}

TEST_CASE("broken catalog files are refused with the file and the field", "[catalog]") {
  const std::string art = R"({"url":"https://x.example/a","checksumUrl":"https://x.example/a.sha256","files":[FILES]})";
  const std::string file = R"({"component":"a","nodePath":"/usr/local/bin/a","mode":"0755","roles":["worker"]})";
  auto doc = [&](const std::string& arts, const std::string& images = "[]") {
    return R"({"kubernetesVersion":"v1.32.3","versions":{"etcd":"v3.5.21"},"artifacts":[)" + arts + R"(],"images":)" + images + "}";
  };
  auto with = [&](std::string a, const std::string& files) { return a.replace(a.find("FILES"), 5, files); };
  CHECK_NOTHROW(parse_catalog("t.json", doc(with(art, file))));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "not a JSON object"},
      {R"({"artifacts":[]})", "kubernetesVersion"},
      {R"({"kubernetesVersion":"v1.32.3","artifacts":[]})", "versions"},
      {R"({"kubernetesVersion":"1.32.3","versions":{"etcd":"v3.5.21"}})", "kubernetesVersion: '1.32.3' is not a release version"},
      {doc(""), "artifacts: missing or empty"},
      {doc(R"({"url":"ftp://x/a","checksumUrl":"https://x/a.sha256","files":[)" + file + "]}"), "artifacts[0].url"},
      {doc(with(art, "")), "files: missing or empty"},
      {doc(with(art, R"({"component":"a","nodePath":"usr/bin/a","roles":["worker"]})")), "nodePath"},
      {doc(with(art, R"({"component":"a","nodePath":"/a/../b","roles":["worker"]})")), "nodePath"},
      {doc(with(art, R"({"component":"a","nodePath":"/a","mode":"755","roles":["worker"]})")), "mode"},
      {doc(with(art, R"({"component":"a","nodePath":"/a","roles":["master"]})")), "unknown role 'master'"},
      {doc(with(art, R"({"component":"a","nodePath":"/a","roles":[]})")), "roles"},
      {doc(with(art, file) + "," + with(art, file)), "'a' appears twice"},
      {doc(with(art, file + "," + R"({"component":"b","nodePath":"/b","roles":["worker"]})")), "name the archive member"},
      {doc(with(art, file), R"([{"component":"p","ref":"registry.k8s.io/pause","nodePath":"/p.tar","roles":["worker"]}])"), "repository:tag"},
      {doc(with(art, file), R"([{"component":"p","ref":"pause@sha256:00","nodePath":"/p.tar","roles":["worker"]}])"), "repository:tag"},
  };
  for (const auto& [text, want] : cases) {
    INFO(text);
    try {
      parse_catalog("t.json", text);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK_THAT(e.what(), Catch::StartsWith("t.json: ") && Catch::Contains(want));
    }
  }
}

TEST_CASE("the mirror rule keeps host and path under the mirror", "[catalog]") {
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"", "https://dl.k8s.io/release/v1.32.3/bin/linux/amd64/kubelet", "https://dl.k8s.io/release/v1.32.3/bin/linux/amd64/kubelet"},
      {"https://mirror.corp/k8s", "https://dl.k8s.io/release/v1.32.3/bin/linux/amd64/kubelet",
       "https://mirror.corp/k8s/dl.k8s.io/release/v1.32.3/bin/linux/amd64/kubelet"},
      {"https://mirror.corp/k8s/", "https://github.com/etcd-io/etcd/releases/download/v3.5.21/SHA256SUMS",
       "https://mirror.corp/k8s/github.com/etcd-io/etcd/releases/download/v3.5.21/SHA256SUMS"},
      {"http://127.0.0.1:8080", "http://example.org/a/b", "http://127.0.0.1:8080/example.org/a/b"},
  };
  for (const auto& [mirror, url, want] : cases) CHECK(mirror_url(mirror, url) == want);
  CHECK_THROWS_AS(mirror_url("https://m", "ftp://x/y"), Error);
  CHECK(image_mirror_url("https://m/", "registry.k8s.io/pause:3.10") == "https://m/oci/registry.k8s.io/pause/3.10.tar");
  CHECK(image_mirror_url("https://m", "registry.k8s.io/coredns/coredns:v1.11.3") ==
        "https://m/oci/registry.k8s.io/coredns/coredns/v1.11.3.tar");
  CHECK(image_mirror_url("http://h:5000", "localhost:5000/busybox:1") == "http://h:5000/oci/localhost:5000/busybox/1.tar");
  for (const char* bad : {"pause:3.10", "registry.k8s.io/pause", "registry.k8s.io/pause:", "r.io/../x:1", "r.io/p@sha256:ab"})
    CHECK_THROWS_AS(image_mirror_url("https://m", bad), Error);
}
