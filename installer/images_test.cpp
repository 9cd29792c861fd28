// Image import planning (which archives, which command line), the command runner, and the
// step inside apply with a fake ctr (a shell script the bundle itself installs) and a real
// listening unix socket standing in for containerd's.
#include "installer/images.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bundles/bundle_writer.h"
#include "bundles/signing.h"
#include "installer/installer_test_util.h"
#include "installer/run.h"

namespace kb::installer {
namespace {

using namespace std::chrono_literals;
using kb::test::meta;
using test::TempDir;

ManifestEntry image_entry(const std::string& path, const std::string& url) {
  ManifestEntry e = meta(path, 0644, EntryClass::Binary);
  e.path = path;
  if (!url.empty()) e.source = EntrySource{url, std::string(64, 'b')};
  return e;
}

TEST_CASE("image_ref_from_url reads the mirror layout", "[images]") {
  CHECK(image_ref_from_url("https://mirror.example/oci/registry.k8s.io/pause/3.10.tar") == "registry.k8s.io/pause:3.10");
  CHECK(image_ref_from_url("http://127.0.0.1:8080/oci/registry.k8s.io/coredns/coredns/v1.11.3.tar") ==
        "registry.k8s.io/coredns/coredns:v1.11.3");
  CHECK(image_ref_from_url("https://mirror.example/base/oci/registry.k8s.io/pause/3.10.tar") == "registry.k8s.io/pause:3.10");
  CHECK(image_ref_from_url("https://dl.k8s.io/release/v1.32.3/bin/linux/amd64/kubelet") == "");
  CHECK(image_ref_from_url("https://mirror.example/oci/pause.tar") == "");             // no repository
  CHECK(image_ref_from_url("https://mirror.example/oci/pause/3.10.tar") == "");        // no registry
  CHECK(image_ref_from_url("https://mirror.example/oci/registry.k8s.io/pa use/3.10.tar") == "");
  CHECK(image_ref_from_url("https://mirror.example/oci/registry.k8s.io/pause/3.10.tar.gz") == "");
}

TEST_CASE("image_archives takes the files directly under /var/lib/kbundle-images named *.tar", "[images]") {
  Manifest m;
  m.entries = {image_entry("/usr/local/bin/ctr", "https://github.com/containerd/x.tar.gz"),
               image_entry("/var/lib/kbundle-images/coredns.tar", "https://m/oci/registry.k8s.io/coredns/coredns/v1.11.3.tar"),
               image_entry("/var/lib/kbundle-images/notes.txt", ""),
               image_entry("/var/lib/kbundle-images/old/x.tar", "https://m/oci/r.example/x/1.tar"),
               image_entry("/var/lib/kbundle-images/pause.tar", "https://m/oci/registry.k8s.io/pause/3.10.tar"),
               image_entry("/var/lib/kbundle-images/local.tar", "")};
  ManifestEntry dir;
  dir.path = "/var/lib/kbundle-images/d.tar";
  dir.type = EntryType::Directory;
  m.entries.push_back(dir);
  auto a = image_archives(m, {"/var/lib/kbundle-images/pause.tar", "/usr/local/bin/ctr"});
  REQUIRE(a.size() == 3);
  CHECK(a[0] == ImageArchive{"/var/lib/kbundle-images/coredns.tar", "registry.k8s.io/coredns/coredns:v1.11.3", false});
  CHECK(a[1] == ImageArchive{"/var/lib/kbundle-images/pause.tar", "registry.k8s.io/pause:3.10", true});
  CHECK(a[2] == ImageArchive{"/var/lib/kbundle-images/local.tar", "", false});
  CHECK(needs_listing(a));
  CHECK_FALSE(needs_listing({a[1], a[2]}));  // changed, or no ref to look for: nothing to ask containerd
  CHECK(image_archives(Manifest{}, {}).empty());
}

TEST_CASE("images_to_import: changed ones, and unchanged ones containerd lacks", "[images]") {
  std::vector<ImageArchive> a = {{"/var/lib/kbundle-images/pause.tar", "registry.k8s.io/pause:3.10", false},
                                 {"/var/lib/kbundle-images/coredns.tar", "registry.k8s.io/coredns/coredns:v1.11.3", false},
                                 {"/var/lib/kbundle-images/local.tar", "", false}};
  // Re-apply of unchanged archives that containerd has: nothing.
  CHECK(images_to_import(a, {"registry.k8s.io/pause:3.10", "registry.k8s.io/coredns/coredns:v1.11.3", "other:1"}).empty());
  // containerd lost one (its state was wiped): that one only.
  auto todo = images_to_import(a, {"registry.k8s.io/pause:3.10"});
  REQUIRE(todo.size() == 1);
  CHECK(todo[0].path == "/var/lib/kbundle-images/coredns.tar");
  // A changed archive is imported even when an image of that name exists (its content is new).
  a[0].changed = a[2].changed = true;
  todo = images_to_import(a, {"registry.k8s.io/pause:3.10", "registry.k8s.io/coredns/coredns:v1.11.3"});
  REQUIRE(todo.size() == 2);
  CHECK(todo[0].path == "/var/lib/kbundle-images/pause.tar");
  CHECK(todo[1].path == "/var/lib/kbundle-images/local.tar");
}

TEST_CASE("ctr command lines: k8s.io namespace, containerd's socket, --base-name from the ref", "[images]") {
  ImageArchive pause{"/var/lib/kbundle-images/pause.tar", "registry.k8s.io/pause:3.10", true};
  CHECK(ctr_import_command("/", pause) ==
        std::vector<std::string>{"/usr/local/bin/ctr", "--address", "/run/containerd/containerd.sock", "-n", "k8s.io", "images",
                                 "import", "--base-name", "registry.k8s.io/pause", "/var/lib/kbundle-images/pause.tar"});
  ImageArchive local{"/var/lib/kbundle-images/local.tar", "", true};
  TempDir tmp;
  std::string root = test::make_root(tmp);  // another root (--root): every path under it
  CHECK(ctr_import_command(root, local) ==
        std::vector<std::string>{root + "/usr/local/bin/ctr", "--address", root + "/run/containerd/containerd.sock", "-n",
                                 "k8s.io", "images", "import", root + "/var/lib/kbundle-images/local.tar"});
  CHECK(ctr_list_command("/") == std::vector<std::string>{"/usr/local/bin/ctr", "--address", "/run/containerd/containerd.sock",
                                                          "-n", "k8s.io", "images", "ls", "-q"});
}

// A fake containerd socket: bound and listening until destroyed.
class FakeSocket {
 public:
  explicit FakeSocket(const std::string& path) {
    make_dirs(path.substr(0, path.rfind('/')), 0755);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof addr.sun_path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
  }
  ~FakeSocket() { ::close(fd_); }

 private:
  int fd_ = -1;
};

// The fake ctr logs its arguments to <root>/ctr.log, answers `images ls -q` with <root>/present,
// and fails an import when <root>/fail-import exists.
const char* kFakeCtr = R"(#!/bin/sh
root=${0%/usr/local/bin/ctr}
echo "$*" >> "$root/ctr.log"
case "$*" in
  *" images ls -q") cat "$root/present" 2>/dev/null; exit 0 ;;
  *" images import "*) if [ -e "$root/fail-import" ]; then echo "ctr: failed to extract layer: no space left on device" >&2; exit 1; fi
                       echo "unpacking ...done" ;;
esac
)";

void write_worker_bundle(const std::string& path, uint64_t serial, const std::string& pause_content, bool with_ctr = true) {
  Manifest h = test::header(serial);
  h.role = "worker";  // the path policy: images, ctr and containerd are a worker's
  h.units = {"containerd.service"};
  BundleWriter w(h);
  w.add_file(meta("/etc/systemd/system/containerd.service", 0644, EntryClass::Unit), "[Unit]\nDescription=containerd\n");
  if (with_ctr) {
    ManifestEntry ctr = meta("/usr/local/bin/ctr", 0755, EntryClass::Binary);
    w.add_file(ctr, kFakeCtr);
  }
  ManifestEntry pause = meta("/var/lib/kbundle-images/pause.tar", 0644, EntryClass::Binary);
  pause.source = EntrySource{"http://127.0.0.1:1/oci/registry.k8s.io/pause/3.10.tar", std::string(64, 'c')};
  w.add_file(pause, pause_content);
  SigningKey k(kb::test::test_key().private_pem);
  w.write(path, k);
}

HealthFn healthy() {
  return [](const nlohmann::json&, const std::string&, ServiceManager&) { return HealthResult{true, "fake"}; };
}

std::string read_or_empty(const std::string& path) { return ::access(path.c_str(), F_OK) == 0 ? read_file(path) : ""; }

TEST_CASE("apply imports changed images once containerd is up, and not again", "[images]") {
  TempDir tmp;
  std::string root = test::make_root(tmp);
  Options opt = test::options(root, test::trust_file(tmp));
  opt.no_systemd = false;
  FakeSocket sock(root + "/run/containerd/containerd.sock");
  const std::string ctr_log = root + "/ctr.log";

  write_worker_bundle(tmp / "w1.kbundle", 1, "pause archive v1");
  auto r = test::apply_bundle(opt, tmp / "w1.kbundle", healthy());
  INFO(r.out << r.err);
  REQUIRE(r.code == ExitCode::Ok);
  CHECK(read_or_empty(ctr_log) == "--address " + root + "/run/containerd/containerd.sock -n k8s.io images import --base-name " +
                                  "registry.k8s.io/pause " + root + "/var/lib/kbundle-images/pause.tar\n");
  CHECK_THAT(r.out, Catch::Contains("imported /var/lib/kbundle-images/pause.tar as registry.k8s.io/pause:3.10 into containerd"));

  // Re-applying the installed bundle: nothing runs at all.
  ::unlink(ctr_log.c_str());
  r = test::apply_bundle(opt, tmp / "w1.kbundle", healthy());
  REQUIRE(r.code == ExitCode::Ok);
  CHECK(read_or_empty(ctr_log).empty());

  // A new serial with the same archive: containerd is asked, has it, nothing is imported.
  write_file_atomic(root + "/present", "registry.k8s.io/pause:3.10\n", 0644);
  opt.trust_key_file.clear();
  write_worker_bundle(tmp / "w2.kbundle", 2, "pause archive v1");
  r = test::apply_bundle(opt, tmp / "w2.kbundle", healthy());
  REQUIRE(r.code == ExitCode::Ok);
  CHECK(read_or_empty(ctr_log) == "--address " + root + "/run/containerd/containerd.sock -n k8s.io images ls -q\n");
  CHECK_THAT(r.out, Catch::Contains("already in containerd"));

  // ... unless containerd lost it: then it is imported although the file did not change.
  ::unlink(ctr_log.c_str());
  write_file_atomic(root + "/present", "something.else/x:1\n", 0644);
  write_worker_bundle(tmp / "w3.kbundle", 3, "pause archive v1");
  r = test::apply_bundle(opt, tmp / "w3.kbundle", healthy());
  REQUIRE(r.code == ExitCode::Ok);
  CHECK_THAT(read_or_empty(ctr_log), Catch::Contains("images ls -q\n") && Catch::Contains("images import --base-name registry.k8s.io/pause"));
  CHECK_THAT(r.out, Catch::Contains("it was missing"));
}

TEST_CASE("a failed import is a failed health check: rolled back, exit 4, the reason named", "[images]") {
  TempDir tmp;
  std::string root = test::make_root(tmp);
  Options opt = test::options(root, test::trust_file(tmp));
  opt.no_systemd = false;
  FakeSocket sock(root + "/run/containerd/containerd.sock");
  write_worker_bundle(tmp / "w1.kbundle", 1, "pause archive v1");
  REQUIRE(test::apply_bundle(opt, tmp / "w1.kbundle", healthy()).code == ExitCode::Ok);
  std::string before = read_file(root + "/var/lib/kbundle-images/pause.tar");

  write_file_atomic(root + "/fail-import", "", 0644);
  opt.trust_key_file.clear();
  write_worker_bundle(tmp / "w2.kbundle", 2, "pause archive v2");
  auto r = test::apply_bundle(opt, tmp / "w2.kbundle", healthy());
  INFO(r.out << r.err);
  CHECK(r.code == ExitCode::HealthRolledBack);
  CHECK_THAT(r.err, Catch::Contains("health check images failed: importing /var/lib/kbundle-images/pause.tar into containerd failed") &&
                        Catch::Contains("exit status 1: ctr: failed to extract layer: no space left on device") &&
                        Catch::Contains("rolled back to serial 1"));
  CHECK(read_file(root + "/var/lib/kbundle-images/pause.tar") == before);
  CHECK(read_installed(Layout(root))->manifest.serial == 1);
}

TEST_CASE("no ctr in the bundle, or no containerd, is a health failure; --no-systemd skips it", "[images]") {
  TempDir tmp;
  std::string root = test::make_root(tmp);
  Options opt = test::options(root, test::trust_file(tmp));
  write_worker_bundle(tmp / "noctr.kbundle", 1, "pause", false);
  opt.no_systemd = false;
  auto r = test::apply_bundle(opt, tmp / "noctr.kbundle", healthy());
  CHECK(r.code == ExitCode::HealthRolledBack);
  CHECK_THAT(r.err, Catch::Contains(root + "/usr/local/bin/ctr: not found or not executable"));

  opt.no_systemd = true;
  r = test::apply_bundle(opt, tmp / "noctr.kbundle", healthy());
  CHECK(r.code == ExitCode::Ok);
  CHECK_THAT(r.out, Catch::Contains("image import skipped (--no-systemd): 1 archives"));
}

TEST_CASE("containerd not accepting connections in time is named with its socket", "[images]") {
  TempDir tmp;
  std::string root = test::make_root(tmp);
  write_file_atomic(root + "/usr/local/bin/ctr", kFakeCtr, 0755);
  Manifest m;
  m.entries = {image_entry("/var/lib/kbundle-images/pause.tar", "https://m/oci/registry.k8s.io/pause/3.10.tar")};
  Options o;
  o.root = root;
  Hooks hooks;
  std::ostringstream out, err;
  Run run(o, hooks, Io{out, err});
  ImageLimits limits;
  limits.socket_wait = 300ms;
  auto t0 = std::chrono::steady_clock::now();
  CHECK(import_images(run, m, {"/var/lib/kbundle-images/pause.tar"}, limits) ==
        root + "/run/containerd/containerd.sock: containerd does not accept connections after 0.3 s "
               "(is containerd.service running? see journalctl -u containerd)");
  CHECK(std::chrono::steady_clock::now() - t0 < 3s);
  CHECK(::access((root + "/ctr.log").c_str(), F_OK) != 0);  // ctr never ran
}

}  // namespace
}  // namespace kb::installer
