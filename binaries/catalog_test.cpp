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

TEST_CASE("the compiled-in catalog has v1.32.3 first and a v1.33 entry", "[catalog]") {
  const auto& entries = catalog_entries();
  REQUIRE(entries.size() >= 2);
  CHECK(entries[0].kubernetes_version == "v1.32.3");
  CHECK(entries[1].kubernetes_version.starts_with("v1.33."));
  CHECK(catalog_versions().starts_with("v1.32.3, v1.33."));
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

TEST_CASE("an unknown version names the ones the catalog has", "[catalog]") {
  try {
    catalog_entry("v1.31.0");
    FAIL("no error");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("v1.31.0") && Catch::Contains("v1.32.3"));
  }
}

TEST_CASE("broken catalog files are refused with the file and the field", "[catalog]") {
  const std::string art = R"({"url":"https://x.example/a","checksumUrl":"https://x.example/a.sha256","files":[FILES]})";
  const std::string file = R"({"component":"a","nodePath":"/usr/local/bin/a","mode":"0755","roles":["worker"]})";
  auto doc = [&](const std::string& arts, const std::string& images = "[]") {
    return R"({"kubernetesVersion":"v1.32.3","artifacts":[)" + arts + R"(],"images":)" + images + "}";
  };
  auto with = [&](std::string a, const std::string& files) { return a.replace(a.find("FILES"), 5, files); };
  CHECK_NOTHROW(parse_catalog("t.json", doc(with(art, file))));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "not a JSON object"},
      {R"({"artifacts":[]})", "kubernetesVersion"},
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
