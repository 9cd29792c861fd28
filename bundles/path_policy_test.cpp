// The path policy (FORMAT.md 5.3) on manifests: what gen writes passes, every hostile entry is
// named with the rule it breaks. The installer, inspect and gen tests check that it is enforced.
#include <catch2/catch.hpp>

#include "bundles/bundle_error.h"
#include "bundles/bundle_test_util.h"
#include "bundles/path_policy.h"

using namespace kb;
using kb::test::meta;

namespace {

ManifestEntry dir(const std::string& path, unsigned mode = 0700) {
  ManifestEntry e;
  e.path = path;
  e.type = EntryType::Directory;
  e.mode = mode;
  return e;
}

ManifestEntry file(const std::string& path, unsigned mode = 0600, EntryClass cls = EntryClass::Config) {
  return meta(path, mode, cls);
}

Manifest manifest(const std::string& role, std::vector<ManifestEntry> entries, std::vector<std::string> units = {}) {
  Manifest m = kb::test::sample_header();
  m.role = role;
  m.units = std::move(units);
  m.entries = std::move(entries);
  return m;
}

// A control-plane and a worker manifest shaped like gen's (every kind of path it writes).
Manifest control_plane() {
  return manifest("control-plane",
                  {dir("/etc/etcd"), file("/etc/etcd/server.key"), dir("/etc/kubernetes/config"),
                   file("/etc/kubernetes/config/kube-scheduler.yaml"), file("/etc/systemd/system/etcd.service"),
                   file("/etc/systemd/system/kbundle-recover.service"), file("/etc/systemd/system/kube-apiserver.service"),
                   file("/usr/local/bin/etcd", 0755, EntryClass::Binary), file("/usr/local/bin/kubectl", 0755, EntryClass::Binary),
                   dir("/var/lib/etcd"), dir("/var/lib/kubernetes"), file("/var/lib/kubernetes/audit-policy.yaml"),
                   // the AuthenticationConfiguration lands next to the audit policy
                   file("/var/lib/kubernetes/authentication-config.yaml"), dir("/var/lib/kubernetes/bootstrap"),
                   file("/var/lib/kubernetes/bootstrap/kbundle-bootstrap.crt"),
                   file("/var/lib/kubernetes/bootstrap/kbundle-bootstrap.key", 0600, EntryClass::Secret),
                   file("/var/lib/kubernetes/bootstrap/objects.json"), dir("/var/log/kubernetes")},
                  {"etcd.service", "kube-apiserver.service"});
}

Manifest worker() {
  return manifest("worker",
                  {dir("/etc/cni/net.d"), file("/etc/cni/net.d/10-bridge.conf"), dir("/etc/containerd"),
                   file("/etc/containerd/config.toml"), file("/etc/modules-load.d/kubernetes.conf"),
                   file("/etc/sysctl.d/99-kubernetes.conf"), file("/etc/systemd/system/kubelet.service"),
                   file("/opt/cni/bin/bridge", 0755, EntryClass::Binary), file("/usr/local/bin/kubelet", 0755, EntryClass::Binary),
                   file("/usr/local/bin/runc", 0755, EntryClass::Binary),
                   file("/var/lib/kbundle-images/pause.tar", 0644, EntryClass::Binary), dir("/var/lib/kubelet"),
                   file("/var/lib/kubelet/kubeconfig"), dir("/var/lib/kubernetes"), file("/var/lib/kubernetes/ca.crt")},
                  {"kubelet.service"});
}

// The manifest with one more entry; the entries stay sorted as the format requires.
Manifest with(Manifest m, ManifestEntry e) {
  m.entries.push_back(std::move(e));
  std::sort(m.entries.begin(), m.entries.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  return m;
}

std::string refusal(const Manifest& m) {
  try {
    check_path_policy(m, "b.kbundle");
  } catch (const BundleError& e) {
    CHECK(e.code() == BundleErrc::PolicyViolation);
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("policy: gen-shaped manifests of every role pass", "[policy]") {
  CHECK(path_policy_violations(control_plane()).empty());
  CHECK(path_policy_violations(worker()).empty());
  Manifest both = control_plane();
  for (const auto& e : worker().entries)
    if (std::none_of(both.entries.begin(), both.entries.end(), [&](const auto& x) { return x.path == e.path; }))
      both = with(both, e);
  both.role = "both";
  both.units.push_back("kubelet.service");
  CHECK(path_policy_violations(both).empty());
  CHECK_NOTHROW(check_path_policy(worker(), "b.kbundle"));
}

TEST_CASE("policy: the bootstrap rule matches by path component too", "[policy]") {
  // A sibling that merely starts with "bootstrap" is an ordinary file of the control plane's tree.
  CHECK(path_policy_violations(with(control_plane(), file("/var/lib/kubernetes/bootstrap.json"))).empty());
  CHECK(path_policy_violations(with(control_plane(), file("/var/lib/kubernetes/bootstrapX/a"))).empty());
}

TEST_CASE("policy: prefixes match by path component", "[policy]") {
  CHECK(path_is_under("/etc/kubernetes/config/x", "/etc/kubernetes/config"));
  CHECK(path_is_under("/etc/kubernetes", "/etc/kubernetes"));
  CHECK_FALSE(path_is_under("/etc/kubernetesX", "/etc/kubernetes"));
  CHECK_FALSE(path_is_under("/etc/kubernetes/configX/a", "/etc/kubernetes/config"));
  CHECK_FALSE(path_is_under("/etc", "/etc/kubernetes"));
}

TEST_CASE("policy: every hostile path is refused, naming the path and the rule", "[policy]") {
  struct Case {
    std::string role;
    ManifestEntry entry;
    std::string message;  // the start of the refusal after "b.kbundle: "
  };
  const std::vector<Case> cases = {
      {"worker", file("/etc/sudoers.d/x", 0440), "/etc/sudoers.d/x: outside the paths a bundle may manage (rule: allowed paths for role worker: below /var/lib/kubelet"},
      {"control-plane", file("/root/.ssh/authorized_keys"), "/root/.ssh/authorized_keys: outside the paths"},
      {"worker", file("/etc/ld.so.preload", 0644), "/etc/ld.so.preload: outside the paths"},
      {"worker", file("/etc/profile.d/x.sh", 0644), "/etc/profile.d/x.sh: outside the paths"},
      {"control-plane", file("/etc/cron.d/x", 0644), "/etc/cron.d/x: outside the paths"},
      {"both", file("/usr/local/bin/kbundle-installer", 0755, EntryClass::Binary), "/usr/local/bin/kbundle-installer: not a binary kbundle installs (rule: in /usr/local/bin only the binaries of role both: "},
      {"worker", file("/usr/local/bin/nc", 0755, EntryClass::Binary), "/usr/local/bin/nc: not a binary kbundle installs"},
      {"worker", file("/usr/local/bin/etcd", 0755, EntryClass::Binary), "/usr/local/bin/etcd: not a binary kbundle installs"},  // another role's
      {"worker", file("/usr/bin/x", 0755, EntryClass::Binary), "/usr/bin/x: outside the paths"},
      {"worker", file("/lib/systemd/system/x.service", 0644, EntryClass::Unit), "/lib/systemd/system/x.service: outside the paths"},
      {"worker", file("/etc/systemd/system/ssh.service", 0644, EntryClass::Unit), "/etc/systemd/system/ssh.service: not the unit file of a unit in this manifest's units list"},
      {"control-plane", file("/etc/systemd/system/kubelet.service", 0644, EntryClass::Unit), "/etc/systemd/system/kubelet.service: not the unit file"},  // not in units
      {"worker", file("/etc/systemd/system/kubelet.service.d/10-x.conf", 0644, EntryClass::Unit), "/etc/systemd/system/kubelet.service.d/10-x.conf: not the unit file"},
      {"worker", file("/etc/systemd/system/multi-user.target.wants/x.service", 0644), "/etc/systemd/system/multi-user.target.wants/x.service: not the unit file"},
      {"worker", file("/etc/kbundle/trust.pub", 0644), "/etc/kbundle/trust.pub: in the installer's trust store (rule: never /etc/kbundle or below)"},
      {"worker", dir("/etc/kbundle"), "/etc/kbundle: in the installer's trust store"},
      {"worker", file("/var/lib/kbundle/current/manifest.json"), "/var/lib/kbundle/current/manifest.json: in the installer's state (rule: never /var/lib/kbundle or below"},
      {"worker", file("/var/lib/kbundle/journal.json"), "/var/lib/kbundle/journal.json: in the installer's state"},
      {"worker", file("/var/lib/kbundle/images/pause.tar", 0644), "/var/lib/kbundle/images/pause.tar: in the installer's state"},
      {"worker", file("/var/lib/kbundle-images/evil.tar", 0644), "/var/lib/kbundle-images/evil.tar: outside the paths"},
      {"control-plane", file("/var/lib/kbundle-images/pause.tar", 0644), "/var/lib/kbundle-images/pause.tar: outside the paths"},  // workers only
      {"control-plane", file("/etc/kubernetesX/a.yaml"), "/etc/kubernetesX/a.yaml: outside the paths"},
      {"control-plane", file("/etc/kubernetes/admin.conf"), "/etc/kubernetes/admin.conf: outside the paths"},
      {"worker", file("/var/lib/kubernetes/ca.key"), "/var/lib/kubernetes/ca.key: outside the paths"},  // workers get ca.crt only
      {"control-plane", file("/var/lib/etcd/member/snap/db"), "/var/lib/etcd/member/snap/db: outside the paths"},
      {"control-plane", file("/etc/etcd"), "/etc/etcd: outside the paths"},  // a tree's root is a directory
      {"worker", dir("/etc", 0777), "/etc: a directory outside the paths a bundle may manage"},
      {"worker", dir("/root", 0700), "/root: a directory outside the paths"},
      {"worker", dir("/usr", 0755), "/usr: a directory outside the paths"},
      {"worker", dir("/etc/systemd/system", 0755), "/etc/systemd/system: not the unit file"},
      {"worker", dir("/usr/local/bin", 0755), "/usr/local/bin: not a binary kbundle installs"},
      {"worker", file("/var/lib/kubelet/x", 04755), "/var/lib/kubelet/x: mode 4755 is setuid (rule: no setuid, setgid, sticky, group- or world-writable bit (07022))"},
      {"worker", file("/var/lib/kubelet/x", 02755), "/var/lib/kubelet/x: mode 2755 is setgid"},
      {"worker", dir("/var/lib/kubelet/x", 01777), "/var/lib/kubelet/x: mode 1777 is sticky, group-writable, world-writable"},
      {"worker", file("/etc/systemd/system/kubelet.service", 0666, EntryClass::Unit), "/etc/systemd/system/kubelet.service: mode 0666"},
      {"worker", file("/var/lib/kubelet/x", 0620), "/var/lib/kubelet/x: mode 0620"},
      {"worker", dir("/var/lib/kubelet/d", 0777), "/var/lib/kubelet/d: mode 0777 is group-writable, world-writable"},
      {"worker", dir("/var/lib/kubelet/d", 0770), "/var/lib/kubelet/d: mode 0770"},
      // The bootstrap directory holds a system:masters key: only its three files, only on a control plane.
      {"control-plane", file("/var/lib/kubernetes/bootstrap/evil.json"), "/var/lib/kubernetes/bootstrap/evil.json: not one of the bootstrap files (rule: in /var/lib/kubernetes/bootstrap only the directory, objects.json, kbundle-bootstrap.crt and kbundle-bootstrap.key, for role control-plane or both)"},
      {"control-plane", file("/var/lib/kubernetes/bootstrap/objects.json.d/x"), "/var/lib/kubernetes/bootstrap/objects.json.d/x: not one of the bootstrap files"},
      {"control-plane", dir("/var/lib/kubernetes/bootstrap/sub"), "/var/lib/kubernetes/bootstrap/sub: not one of the bootstrap files"},
      {"control-plane", dir("/var/lib/kubernetes/bootstrap/objects.json"), "/var/lib/kubernetes/bootstrap/objects.json: not one of the bootstrap files"},
      {"control-plane", file("/var/lib/kubernetes/bootstrap"), "/var/lib/kubernetes/bootstrap: not one of the bootstrap files"},
      {"control-plane", file("/var/lib/kubernetes/bootstrap/kbundle-bootstrap.key", 0666, EntryClass::Secret), "/var/lib/kubernetes/bootstrap/kbundle-bootstrap.key: mode 0666"},
      {"worker", file("/var/lib/kubernetes/bootstrap/objects.json"), "/var/lib/kubernetes/bootstrap/objects.json: not one of the bootstrap files"},
      {"worker", file("/var/lib/kubernetes/bootstrap/kbundle-bootstrap.key", 0600, EntryClass::Secret), "/var/lib/kubernetes/bootstrap/kbundle-bootstrap.key: not one of the bootstrap files"},
      {"worker", dir("/var/lib/kubernetes/bootstrap"), "/var/lib/kubernetes/bootstrap: not one of the bootstrap files"},
      // etcd snapshots (docs/backup.md): a restore's files and the snapshot unit, on a control plane only.
      {"worker", file("/var/lib/etcd-restore/snapshot.db", 0600, EntryClass::Secret), "/var/lib/etcd-restore/snapshot.db: outside the paths"},
      {"worker", file("/etc/systemd/system/etcd-snapshot.service", 0600, EntryClass::Unit), "/etc/systemd/system/etcd-snapshot.service: not the unit file"},
      {"control-plane", file("/var/lib/etcd-restorex/snapshot.db", 0600, EntryClass::Secret), "/var/lib/etcd-restorex/snapshot.db: outside the paths"},
      {"control-plane", file("/var/lib/etcd-restore/snapshot.db", 0666, EntryClass::Secret), "/var/lib/etcd-restore/snapshot.db: mode 0666"},
      {"control-plane", file("/etc/systemd/system/etcd-snapshot.service.d/x.conf", 0600, EntryClass::Unit), "/etc/systemd/system/etcd-snapshot.service.d/x.conf: not the unit file"},
      {"control-plane", file("/etc/systemd/system/etcd-snapshot.timer", 0600, EntryClass::Unit), "/etc/systemd/system/etcd-snapshot.timer: not the unit file"},  // not in units
  };
  for (const auto& c : cases) {
    INFO(c.entry.path << " " << std::oct << c.entry.mode);
    Manifest base = c.role == "control-plane" ? control_plane() : worker();
    base.role = c.role;
    // Drop an entry the hostile one replaces (same path), keep the rest.
    std::erase_if(base.entries, [&](const auto& e) { return e.path == c.entry.path; });
    std::string why = refusal(with(base, c.entry));
    CHECK(why.rfind("b.kbundle: " + c.message, 0) == 0);
  }
}

TEST_CASE("policy: owners and groups other than root are refused", "[policy]") {
  for (auto [owner, group] : std::vector<std::pair<std::string, std::string>>{
           {"nobody", "root"}, {"root", "nogroup"}, {"nobody", "nogroup"}, {"etcd", "etcd"}, {"no_such_user", "root"}}) {
    ManifestEntry e = file("/etc/systemd/system/kubelet.service", 0600, EntryClass::Unit);
    e.owner = owner;
    e.group = group;
    Manifest m = worker();
    std::erase_if(m.entries, [&](const auto& x) { return x.path == e.path; });
    CHECK(refusal(with(m, e)) == "b.kbundle: /etc/systemd/system/kubelet.service: owner " + owner + ":" + group +
                                     " is not allowed (rule: owner and group are root)");
  }
  ManifestEntry d = dir("/var/lib/kubelet");
  d.owner = "nobody";
  Manifest m = worker();
  std::erase_if(m.entries, [&](const auto& x) { return x.path == d.path; });
  CHECK(refusal(with(m, d)).find("/var/lib/kubelet: owner nobody:root is not allowed") != std::string::npos);
}

TEST_CASE("policy: units are the role's own, and a unit file needs its unit in the list", "[policy]") {
  Manifest m = worker();
  m.units = {"kubelet.service", "ssh.service"};
  m = with(m, file("/etc/systemd/system/ssh.service", 0644, EntryClass::Unit));
  auto v = path_policy_violations(m);
  REQUIRE(v.size() == 1);  // the file is for a listed unit; the unit itself is not allowed
  CHECK(v[0].message() == "ssh.service: not a unit a worker bundle may run (rule: units for role worker: containerd.service, "
                          "kubelet.service, kube-proxy.service, kbundle-cert-metrics.timer)");
  m.units = {"kubelet.service", "etcd.service"};  // another role's unit
  CHECK(refusal(m).find("b.kbundle: etcd.service: not a unit a worker bundle may run") == 0);
  m.units = {"kubelet.service", "kbundle-recover.service"};  // enabled by the installer, never in units
  CHECK(refusal(m).find("kbundle-recover.service: not a unit") != std::string::npos);
  // The certificate metrics timer is every role's; its oneshot service file rides along without being a unit.
  Manifest cp = control_plane();
  cp.units.push_back("kbundle-cert-metrics.timer");
  cp = with(with(cp, file("/etc/systemd/system/kbundle-cert-metrics.timer")), file("/etc/systemd/system/kbundle-cert-metrics.service"));
  CHECK(path_policy_violations(cp).empty());
  Manifest w = worker();
  w.units.push_back("kbundle-cert-metrics.timer");
  w = with(with(w, file("/etc/systemd/system/kbundle-cert-metrics.timer")), file("/etc/systemd/system/kbundle-cert-metrics.service"));
  CHECK(path_policy_violations(w).empty());
  w.units.push_back("kbundle-cert-metrics.service");  // the service is started by the timer, never listed
  CHECK(refusal(w).find("kbundle-cert-metrics.service: not a unit") != std::string::npos);
}

TEST_CASE("policy: the refusal counts the other violations; an unknown role allows nothing", "[policy]") {
  Manifest m = with(with(worker(), file("/etc/ld.so.preload", 0644)), file("/etc/sudoers.d/x"));
  CHECK(path_policy_violations(m).size() == 2);
  CHECK(refusal(m) == "b.kbundle: /etc/ld.so.preload: outside the paths a bundle may manage (rule: " +
                          path_policy_violations(m)[0].rule + ") (and 1 more violation; kbundle inspect lists them all)");
  Manifest odd = worker();
  odd.role = "etcd";
  CHECK(refusal(odd).find("b.kbundle: etcd: unknown role") == 0);
}
