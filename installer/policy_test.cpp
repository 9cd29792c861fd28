// G21: a validly signed bundle that breaks the path policy (bundles/FORMAT.md 5.3) is refused by
// apply and verify with exit code 3 before anything is written; and the installer never changes
// the mode or owner of a directory it did not create, through apply, rollback and reset.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include "installer/installer_test_util.h"
#include "installer/transaction.h"

using namespace kb;
using namespace kb::installer;
using namespace kb::installer::test;
using kb::test::meta;

namespace {

struct Hostile {
  std::string name;     // what the case is
  std::string path;     // the path (or unit) the refusal must name
  BundleExtras extras;  // what it adds to the good bundle
};

BundleExtras add_file(const std::string& path, unsigned mode, const std::string& owner = "root",
                      const std::string& group = "root", const std::string& content = "hostile\n") {
  return {nullptr, [=](BundleWriter& w) {
            ManifestEntry e = meta(path, mode, EntryClass::Config);
            e.owner = owner;
            e.group = group;
            w.add_file(e, content);
          }};
}

BundleExtras add_dir(const std::string& path, unsigned mode, const std::string& owner = "root",
                     const std::string& group = "root") {
  return {nullptr, [=](BundleWriter& w) { w.add_directory(path, mode, owner, group); }};
}

BundleExtras add_unit(const std::string& unit, unsigned mode = 0644) {
  return {[=](Manifest& m) { m.units.push_back(unit); },
          [=](BundleWriter& w) { w.add_file(meta("/etc/systemd/system/" + unit, mode, EntryClass::Unit), "[Service]\nExecStart=/bin/sh\n"); }};
}

std::vector<Hostile> hostile_cases() {
  return {
      {"sudoers", "/etc/sudoers.d/x", add_file("/etc/sudoers.d/x", 0440)},
      {"authorized_keys", "/root/.ssh/authorized_keys", add_file("/root/.ssh/authorized_keys", 0600)},
      {"ld.so.preload", "/etc/ld.so.preload", add_file("/etc/ld.so.preload", 0644)},
      {"profile.d", "/etc/profile.d/kb.sh", add_file("/etc/profile.d/kb.sh", 0644)},
      {"cron.d", "/etc/cron.d/kb", add_file("/etc/cron.d/kb", 0644)},
      {"the installer binary", "/usr/local/bin/kbundle-installer", add_file("/usr/local/bin/kbundle-installer", 0755)},
      {"an unknown binary", "/usr/local/bin/nc", add_file("/usr/local/bin/nc", 0755)},
      {"a worker binary on a control plane", "/usr/local/bin/kubelet", add_file("/usr/local/bin/kubelet", 0755)},
      {"/usr/bin", "/usr/bin/x", add_file("/usr/bin/x", 0755)},
      {"/lib/systemd/system", "/lib/systemd/system/x.service", add_file("/lib/systemd/system/x.service", 0644)},
      {"a unit file for a unit not in the list", "/etc/systemd/system/kubelet.service",
       add_file("/etc/systemd/system/kubelet.service", 0644)},
      {"a drop-in", "/etc/systemd/system/etcd.service.d/x.conf", add_file("/etc/systemd/system/etcd.service.d/x.conf", 0644)},
      {"ssh.service in the units list with its file", "ssh.service", add_unit("ssh.service")},
      {"the trust store", "/etc/kbundle/trust.pub", add_file("/etc/kbundle/trust.pub", 0644, "root", "root", kb::test::other_key().public_pem)},
      {"the installer's state", "/var/lib/kbundle/current/manifest.json", add_file("/var/lib/kbundle/current/manifest.json", 0600)},
      {"the journal", "/var/lib/kbundle/journal.json", add_file("/var/lib/kbundle/journal.json", 0600)},
      {"a prefix by characters only", "/etc/kubernetesX/a.yaml", add_file("/etc/kubernetesX/a.yaml", 0600)},
      {"a unit 0666", "/etc/systemd/system/kube-scheduler.service", add_unit("kube-scheduler.service", 0666)},
      {"a world-writable file", "/var/lib/kubernetes/x", add_file("/var/lib/kubernetes/x", 0777)},
      {"a group-writable file", "/var/lib/kubernetes/x", add_file("/var/lib/kubernetes/x", 0660)},
      {"a world-writable dir", "/var/lib/kubernetes/d", add_dir("/var/lib/kubernetes/d", 0777)},
      {"a group-writable dir", "/var/lib/kubernetes/d", add_dir("/var/lib/kubernetes/d", 0770)},
      {"owner nobody", "/var/lib/kubernetes/x", add_file("/var/lib/kubernetes/x", 0600, "nobody")},
      {"group nogroup", "/var/lib/kubernetes/x", add_file("/var/lib/kubernetes/x", 0600, "root", "nogroup")},
      {"an unknown user", "/var/lib/kubernetes/x", add_file("/var/lib/kubernetes/x", 0600, "mallory", "mallory")},
      {"/etc as a dir 0777 nobody:nogroup", "/etc", add_dir("/etc", 0777, "nobody", "nogroup")},
      {"/root as a dir 0777", "/root", add_dir("/root", 0777)},
      {"/usr as a dir 0700", "/usr", add_dir("/usr", 0700)},
      {"/etc/systemd/system as a dir", "/etc/systemd/system", add_dir("/etc/systemd/system", 0700)},
  };
}

// Everything under the root, state directory and pinned key included, with inode and times.
std::map<std::string, std::string> everything(const std::string& root) { return snapshot(root, "", true); }

}  // namespace

TEST_CASE("G21: every validly signed bundle outside the path policy is refused before any write", "[policy]") {
  TempDir tmp;
  std::string key = trust_file(tmp);
  std::string fresh = make_root(tmp, "fresh"), applied = make_root(tmp, "applied");
  // nobody/nogroup exist on the node: the refusal is the policy's, not an unknown name.
  for (const auto& r : {fresh, applied}) {
    write_file_atomic(r + "/etc/passwd", read_file(r + "/etc/passwd") + "nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n", 0644);
    write_file_atomic(r + "/etc/group", read_file(r + "/etc/group") + "nogroup:x:65534:\n", 0644);
  }
  std::string b1 = tmp / "b1.kbundle";
  write_bundle(b1, 1);
  REQUIRE(apply_bundle(options(applied, key), b1).code == ExitCode::Ok);
  const auto fresh_before = everything(fresh), applied_before = everything(applied);

  for (const auto& c : hostile_cases()) {
    INFO(c.name);
    std::string bad = tmp / "bad.kbundle";
    write_bundle(bad, 2, "b", "cp-1", false, kb::test::test_key(), c.extras);
    for (const auto& [root, trust] : {std::pair{fresh, key}, std::pair{applied, std::string()}}) {
      auto r = apply_bundle(options(root, trust), bad);
      CHECK(r.code == ExitCode::BadBundle);
      CHECK(r.err.find("kbundle-installer: error: " + bad + ": " + c.path + ": ") != std::string::npos);
      CHECK(r.err.find("(rule: ") != std::string::npos);
      CHECK(r.err.find("(policy-violation); refused") != std::string::npos);
      auto v = run([&](const Options& o, const Hooks& h, Io io) { return verify(o, h, io, bad); }, options(root, trust));
      CHECK(v.code == ExitCode::BadBundle);
      CHECK(v.err.find(c.path + ": ") != std::string::npos);
      auto dry = options(root, trust);
      dry.dry_run = true;
      CHECK(apply_bundle(dry, bad).code == ExitCode::BadBundle);
    }
    // Nothing changed: no staging dir, no journal, no pinned key, not a byte or a mode.
    CHECK(everything(fresh) == fresh_before);
    CHECK(everything(applied) == applied_before);
  }
  // The node still takes a good bundle.
  std::string b2 = tmp / "b2.kbundle";
  write_bundle(b2, 2, "b");
  CHECK(apply_bundle(options(applied), b2).code == ExitCode::Ok);
}

TEST_CASE("G21: the format layer refuses setuid/setgid/sticky modes and unit names like ../x outright", "[policy]") {
  TempDir tmp;
  for (unsigned mode : {04755u, 02755u, 01777u}) {
    INFO(std::oct << mode);
    CHECK_THROWS_AS(write_bundle(tmp / "x.kbundle", 2, "b", "cp-1", false, kb::test::test_key(),
                                 add_file("/var/lib/kubernetes/x", mode)),
                    BundleError);
    CHECK_THROWS_AS(write_bundle(tmp / "x.kbundle", 2, "b", "cp-1", false, kb::test::test_key(),
                                 add_dir("/var/lib/kubernetes/d", mode)),
                    BundleError);
  }
  CHECK_THROWS_AS(write_bundle(tmp / "x.kbundle", 2, "b", "cp-1", false, kb::test::test_key(), add_unit("../x.service")),
                  BundleError);
}

TEST_CASE("G21: a directory the installer did not create keeps its mode and owner through apply, rollback and reset", "[policy]") {
  TempDir tmp;
  std::string root = make_root(tmp);
  std::string key = trust_file(tmp);
  // Already there before kbundle: kbundle's own /var/lib/kubernetes with another mode and owner.
  make_dirs(root + "/var/lib/kubernetes", 0751);
  REQUIRE(::chown((root + "/var/lib/kubernetes").c_str(), 65534, 65534) == 0);
  std::string b1 = tmp / "b1.kbundle", b2 = tmp / "b2.kbundle";
  write_bundle(b1, 1, "a");
  write_bundle(b2, 2, "b", "cp-1", true);
  // The system directories and the pre-existing one, as they are now.
  auto system = [&] {
    std::map<std::string, std::string> s;
    for (const char* d : {"", "/etc", "/etc/systemd", "/etc/systemd/system", "/var", "/var/lib", "/usr", "/usr/local",
                          "/usr/local/bin", "/var/lib/kubernetes"}) {
      struct stat st;
      REQUIRE(::lstat((root + d).c_str(), &st) == 0);
      s[d] = std::to_string(st.st_mode) + " " + std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid);
    }
    return s;
  };
  const auto before = system();
  REQUIRE(apply_bundle(options(root, key), b1).code == ExitCode::Ok);
  CHECK(system() == before);
  CHECK(mode_of(root + "/etc/etcd") == 0700);  // created by the apply: the entry's mode
  Layout L(root);
  CHECK(read_created_dirs(L) == std::set<std::string>{"/etc/etcd", "/etc/kubernetes", "/etc/kubernetes/config", "/var/lib/etcd"});
  // verify does not call the pre-existing directory's own mode drift.
  auto v = run([](const Options& o, const Hooks& h, Io io) { return verify(o, h, io, std::nullopt); }, options(root));
  CHECK(v.code == ExitCode::Ok);
  // A directory kbundle made is still kept at its mode (drift repair), one it did not make is not.
  REQUIRE(::chmod((root + "/etc/etcd").c_str(), 0755) == 0);
  REQUIRE(apply_bundle(options(root), b2).code == ExitCode::Ok);
  CHECK(mode_of(root + "/etc/etcd") == 0700);
  CHECK(system() == before);
  auto rb = run([](const Options& o, const Hooks& h, Io io) { return rollback(o, h, io); }, options(root));
  REQUIRE(rb.code == ExitCode::Ok);
  CHECK(system() == before);
  auto o = options(root);
  o.yes = true;
  auto reset_run = run([](const Options& op, const Hooks& h, Io io) { return reset(op, h, io); }, o);
  REQUIRE(reset_run.code == ExitCode::Ok);
  CHECK(reset_run.out.find("left /var/lib/kubernetes as it was (kbundle-installer did not create it)") != std::string::npos);
  CHECK(system() == before);
  // What it created is gone, parents included; etcd's data stays without --purge.
  for (const char* gone : {"/etc/etcd", "/etc/kubernetes/config", "/etc/kubernetes", "/var/lib/kubernetes/ca.key", "/var/lib/kbundle"})
    CHECK(inspect(root + gone, false).kind == LiveState::Kind::Absent);
  CHECK(inspect(root + "/var/lib/etcd", false).kind == LiveState::Kind::Dir);
}

TEST_CASE("G21: make_transaction leaves an existing directory alone whatever the manifest says", "[policy]") {
  // Below the policy, as a second line: even a manifest that lists /etc 0777 gets no op for it.
  TempDir tmp;
  std::string root = make_root(tmp);
  Manifest m = header(1);
  ManifestEntry etc;
  etc.path = "/etc";
  etc.type = EntryType::Directory;
  etc.mode = 0777;
  ManifestEntry fresh = etc;
  fresh.path = "/etc/etcd";
  fresh.mode = 0700;
  m.entries = {etc, fresh};
  Transaction tx = make_transaction(Layout(root), m, nullptr);
  REQUIRE(tx.ops.size() == 1);
  CHECK(tx.ops[0].path == "/etc/etcd");
}
