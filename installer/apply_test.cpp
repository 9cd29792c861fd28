#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include "installer/installer_test_util.h"
#include "installer/transaction.h"
#include "installer/trust.h"

using namespace kb;
using namespace kb::installer;
using namespace kb::installer::test;

namespace {

const std::string kState = "var/lib/kbundle";

struct Fixture {
  TempDir tmp;
  std::string root = make_root(tmp);
  std::string key = trust_file(tmp);
  std::string b1 = tmp / "b1.kbundle", b2 = tmp / "b2.kbundle";
  Fixture() {
    write_bundle(b1, 1, "a");
    write_bundle(b2, 2, "b", "cp-1", true);
  }
};

}  // namespace

TEST_CASE("G1: no key, a wrong key, a missing signature are refused", "[apply]") {
  Fixture f;
  auto before = snapshot(f.root);
  SECTION("no pinned key and none given") {
    auto r = apply_bundle(options(f.root), f.b1);
    CHECK(r.code == ExitCode::BadBundle);
    CHECK(r.err.find("no pinned signing key") != std::string::npos);
  }
  SECTION("a key that did not sign the bundle") {
    auto r = apply_bundle(options(f.root, trust_file(f.tmp, kb::test::other_key(), "other.pub")), f.b1);
    CHECK(r.code == ExitCode::BadBundle);
    CHECK(r.err.find("bad-signature") != std::string::npos);
  }
  SECTION("a bundle without its signature member") {
    auto members = kb::test::members_of(f.b1);
    members.erase(members.begin() + 1);
    std::string bad = f.tmp / "nosig.kbundle";
    kb::test::write_tar(bad, members);
    auto r = apply_bundle(options(f.root, f.key), bad);
    CHECK(r.code == ExitCode::BadBundle);
    CHECK(r.err.find("missing-signature") != std::string::npos);
  }
  SECTION("not a PEM key") {
    std::string junk = f.tmp / "junk.pub";
    write_file_atomic(junk, "not a key", 0644);
    CHECK(apply_bundle(options(f.root, junk), f.b1).code == ExitCode::BadBundle);
  }
  CHECK(snapshot(f.root) == before);
}

TEST_CASE("G1: the key is pinned on the first apply and only the pinned key is accepted after", "[apply]") {
  Fixture f;
  REQUIRE(apply_bundle(options(f.root, f.key), f.b1).code == ExitCode::Ok);
  CHECK(read_pin(Layout(f.root))->pem == kb::test::test_key().public_pem);
  CHECK(mode_of(f.root + "/etc/kbundle/trust.json") == 0644);
  // Later applies need no flag; a different --trust-key is refused even with a good bundle.
  auto other = trust_file(f.tmp, kb::test::other_key(), "other.pub");
  CHECK(apply_bundle(options(f.root, other), f.b2).code == ExitCode::BadBundle);
  std::string b2other = f.tmp / "b2other.kbundle";
  write_bundle(b2other, 2, "b", "cp-1", true, kb::test::other_key());
  CHECK(apply_bundle(options(f.root), b2other).code == ExitCode::BadBundle);
  CHECK(apply_bundle(options(f.root), f.b2).code == ExitCode::Ok);
}

TEST_CASE("G1: --trust-fingerprint uses the bundle-signing.pub next to the bundle", "[apply]") {
  Fixture f;
  std::string fp = SigningKey(kb::test::test_key().private_pem).fingerprint();
  auto opt = options(f.root);
  opt.trust_fingerprint = "sha256:" + fp;
  SECTION("missing pub file") { CHECK(apply_bundle(opt, f.b1).code == ExitCode::BadBundle); }
  SECTION("pub file with another key") {
    trust_file(f.tmp, kb::test::other_key(), "bundle-signing.pub");
    CHECK(apply_bundle(opt, f.b1).code == ExitCode::BadBundle);
  }
  SECTION("matching pub file") {
    trust_file(f.tmp, kb::test::test_key(), "bundle-signing.pub");
    CHECK(apply_bundle(opt, f.b1).code == ExitCode::Ok);
    CHECK(read_pin(Layout(f.root))->pem == kb::test::test_key().public_pem);
  }
  SECTION("malformed fingerprint") {
    opt.trust_fingerprint = "abc";
    CHECK(apply_bundle(opt, f.b1).code == ExitCode::Usage);
  }
}

TEST_CASE("G4: lower serial refused, same serial same bytes no-op, same serial other content refused", "[apply]") {
  Fixture f;
  REQUIRE(apply_bundle(options(f.root, f.key), f.b2).code == ExitCode::Ok);
  auto installed = snapshot(f.root, "", true);
  auto r1 = apply_bundle(options(f.root), f.b1);
  CHECK(r1.code == ExitCode::Refused);
  CHECK(r1.err.find("lower than the installed 2") != std::string::npos);
  std::string other2 = f.tmp / "other2.kbundle";
  write_bundle(other2, 2, "zzz");
  auto r2 = apply_bundle(options(f.root), other2);
  CHECK(r2.code == ExitCode::Refused);
  CHECK(r2.err.find("other content") != std::string::npos);
  auto r3 = apply_bundle(options(f.root), f.b2);
  CHECK(r3.code == ExitCode::Ok);
  CHECK(r3.out.find("already at serial 2") != std::string::npos);
  CHECK(snapshot(f.root, "", true) == installed);
}

TEST_CASE("G5: a bundle for another node is refused", "[apply]") {
  Fixture f;
  auto before = snapshot(f.root);
  SECTION("--node names another node") {
    auto opt = options(f.root, f.key);
    opt.node = "cp-2";
    CHECK(apply_bundle(opt, f.b1).code == ExitCode::Refused);
  }
  SECTION("no --node: this machine is not cp-9 at 10.0.1.10") {
    std::string b = f.tmp / "cp9.kbundle";
    write_bundle(b, 1, "a", "cp-9");
    auto opt = options(f.root, f.key);
    opt.node.clear();
    auto r = apply_bundle(opt, b);
    CHECK(r.code == ExitCode::Refused);
    CHECK(r.err.find("cp-9") != std::string::npos);
  }
  CHECK(snapshot(f.root) == before);
}

TEST_CASE("G12: re-applying the same bundle changes no inode or mtime and restarts nothing", "[apply]") {
  Fixture f;
  auto first = apply_bundle(options(f.root, f.key), f.b1);
  REQUIRE(first.code == ExitCode::Ok);
  CHECK(first.calls == std::vector<std::string>{"daemon-reload", "enable etcd.service", "enable kube-apiserver.service",
                                                "restart --no-block etcd.service", "restart kube-apiserver.service"});
  auto before = snapshot(f.root, "", true);
  struct stat st_state;
  REQUIRE(::stat((f.root + "/" + kState).c_str(), &st_state) == 0);
  auto again = apply_bundle(options(f.root), f.b1);
  CHECK(again.code == ExitCode::Ok);
  CHECK(again.calls.empty());
  CHECK(snapshot(f.root, "", true) == before);
  struct stat st_after;
  REQUIRE(::stat((f.root + "/" + kState).c_str(), &st_after) == 0);
  CHECK(st_after.st_mtim.tv_nsec == st_state.st_mtim.tv_nsec);
  CHECK(st_after.st_mtim.tv_sec == st_state.st_mtim.tv_sec);
}

TEST_CASE("G9: only units whose files changed restart; a failed health check restores the old generation", "[apply]") {
  Fixture f;
  REQUIRE(apply_bundle(options(f.root, f.key), f.b1).code == ExitCode::Ok);
  auto old_state = snapshot(f.root, kState);
  auto opt = options(f.root);
  opt.no_systemd = false;  // the null manager still, but health checks run
  int checks = 0;
  auto failing = [&](const nlohmann::json&, const std::string&, ServiceManager&) {
    ++checks;
    return HealthResult{false, "connection refused (after 60 s)"};
  };
  auto r = apply_bundle(opt, f.b2, failing);
  CHECK(r.code == ExitCode::HealthRolledBack);
  CHECK(checks == 1);
  CHECK(r.err.find("rolled back to serial 1") != std::string::npos);
  CHECK(snapshot(f.root, kState) == old_state);
  // b2 changes kube-apiserver's unit, binary, /var/lib/kubernetes and /etc/kubernetes, none of etcd's paths.
  CHECK(std::count(r.calls.begin(), r.calls.end(), "restart kube-apiserver.service") == 1);
  CHECK(std::count(r.calls.begin(), r.calls.end(), "restart --no-block kube-apiserver.service") == 1);  // back to old
  CHECK(std::find_if(r.calls.begin(), r.calls.end(), [](const std::string& c) { return c.find("restart") == 0 && c.find("etcd") != std::string::npos; }) == r.calls.end());
  CHECK(std::count(r.calls.begin(), r.calls.end(), "daemon-reload") == 2);
  auto st = run([](const Options& o, const Hooks& h, Io io) { return status(o, h, io); }, options(f.root));
  CHECK(st.out.find("serial 1") != std::string::npos);
  // A passing check commits.
  auto ok = apply_bundle(opt, f.b2, [](const nlohmann::json&, const std::string&, ServiceManager&) { return HealthResult{true, "200 OK"}; });
  CHECK(ok.code == ExitCode::Ok);
  CHECK(inspect(f.root + "/etc/kubernetes/config/extra.yaml", false).kind == LiveState::Kind::Absent);
}

TEST_CASE("G10: keys end 0600 over a 0644 file, under umask 000 and 077", "[apply]") {
  for (mode_t mask : {mode_t{0}, mode_t{077}, mode_t{022}}) {
    Fixture f;
    make_dirs(f.root + "/var/lib/kubernetes", 0755);
    write_file_atomic(f.root + "/var/lib/kubernetes/ca.key", "old world-readable key", 0644);
    mode_t saved = ::umask(mask);
    auto r = apply_bundle(options(f.root, f.key), f.b1);
    ::umask(saved);
    REQUIRE(r.code == ExitCode::Ok);
    CHECK(mode_of(f.root + "/var/lib/kubernetes/ca.key") == 0600);
    CHECK(mode_of(f.root + "/var/lib/kubernetes/admin.kubeconfig") == 0600);
    CHECK(mode_of(f.root + "/var/lib/kubernetes") == 0755);  // it existed before: never chmod'ed
    CHECK(mode_of(f.root + "/etc/etcd") == 0700);
    CHECK(mode_of(f.root + "/etc/etcd/ca.crt") == 0644);
    CHECK(mode_of(f.root + "/usr/local/bin/etcd") == 0755);
    CHECK(mode_of(f.root + "/etc/kubernetes") == 0755);  // a parent the manifest does not list
    CHECK(mode_of(f.root + "/etc") == 0755);             // system directories are never chmod'ed
    CHECK(mode_of(f.root + "/var/lib/etcd") == 0700);  // created by the apply: the entry's mode
  }
}

TEST_CASE("rollback returns to the previous generation; the first generation cannot be rolled back", "[apply]") {
  Fixture f;
  // A file that was there before kbundle: the first apply's backup keeps it.
  make_dirs(f.root + "/etc/kubernetes/config", 0755);
  write_file_atomic(f.root + "/etc/kubernetes/config/extra.yaml", "hand-made", 0644);
  REQUIRE(apply_bundle(options(f.root, f.key), f.b1).code == ExitCode::Ok);
  auto gen1 = snapshot(f.root, kState);
  REQUIRE(apply_bundle(options(f.root), f.b2).code == ExitCode::Ok);
  CHECK(snapshot(f.root, kState) != gen1);
  auto rb = run([](const Options& o, const Hooks& h, Io io) { return rollback(o, h, io); }, options(f.root));
  CHECK(rb.code == ExitCode::Ok);
  CHECK(snapshot(f.root, kState) == gen1);
  auto rb2 = run([](const Options& o, const Hooks& h, Io io) { return rollback(o, h, io); }, options(f.root));
  CHECK(rb2.code == ExitCode::Failure);
  CHECK(rb2.err.find("use reset") != std::string::npos);
  // And forward again.
  CHECK(apply_bundle(options(f.root), f.b2).code == ExitCode::Ok);
}

TEST_CASE("rollback runs the restored generation's health checks and reports a failure", "[apply]") {
  Fixture f;
  REQUIRE(apply_bundle(options(f.root, f.key), f.b1).code == ExitCode::Ok);
  auto gen1 = snapshot(f.root, kState);
  REQUIRE(apply_bundle(options(f.root), f.b2).code == ExitCode::Ok);
  auto opt = options(f.root);
  opt.no_systemd = false;  // the null manager still, but health checks run
  int checks = 0;
  auto rb = run([](const Options& o, const Hooks& h, Io io) { return rollback(o, h, io); }, opt,
                [&](const nlohmann::json&, const std::string&, ServiceManager&) {
                  ++checks;
                  return HealthResult{false, "connection refused (after 60 s)"};
                });
  CHECK(checks == 1);
  CHECK(rb.code == ExitCode::Failure);
  CHECK(rb.err.find("rolled back to serial 1, but health check") != std::string::npos);
  CHECK(rb.err.find("connection refused") != std::string::npos);
  CHECK(snapshot(f.root, kState) == gen1);  // the rollback itself stands
}

TEST_CASE("dry run writes nothing; reset removes what kbundle installed and keeps etcd data", "[apply]") {
  Fixture f;
  auto empty = snapshot(f.root, "", true);
  auto opt = options(f.root, f.key);
  opt.dry_run = true;
  auto dry = apply_bundle(opt, f.b1);
  CHECK(dry.code == ExitCode::Ok);
  CHECK(dry.out.find("would write  /var/lib/kubernetes/ca.key") != std::string::npos);
  CHECK(snapshot(f.root, "", true) == empty);
  REQUIRE(apply_bundle(options(f.root, f.key), f.b1).code == ExitCode::Ok);
  write_file_atomic(f.root + "/var/lib/etcd/member", "data", 0600);
  auto no = run([](const Options& o, const Hooks& h, Io io) { return reset(o, h, io); }, options(f.root));
  CHECK(no.code == ExitCode::Usage);
  auto o = options(f.root);
  o.yes = true;
  auto r = run([](const Options& op, const Hooks& h, Io io) { return reset(op, h, io); }, o);
  CHECK(r.code == ExitCode::Ok);
  CHECK(r.calls.front() == "stop kube-apiserver.service");
  auto after = snapshot(f.root);
  CHECK(after.count("/var/lib/etcd/member") == 1);
  CHECK(after.count("/var/lib/kubernetes/ca.key") == 0);
  CHECK(after.count("/etc/kbundle/trust.pub") == 0);
  CHECK(after.count("/etc/kbundle/trust.json") == 0);
  CHECK(after.count("/var/lib/kbundle") == 0);
  o.purge = true;
  CHECK(run([](const Options& op, const Hooks& h, Io io) { return reset(op, h, io); }, o).code == ExitCode::Ok);
}

TEST_CASE("units restart by the paths they use", "[apply]") {
  CHECK(units_to_restart({"etcd.service", "kube-apiserver.service", "kubelet.service"}, {"/etc/etcd/server.key"}) ==
        std::vector<std::string>{"etcd.service"});
  CHECK(units_to_restart({"etcd.service", "kube-apiserver.service", "kubelet.service"}, {"/var/lib/kubernetes/ca.crt"}) ==
        std::vector<std::string>{"kube-apiserver.service", "kubelet.service"});
  CHECK(units_to_restart({"kubelet.service", "kube-proxy.service"}, {"/usr/local/bin/kube-proxy"}) ==
        std::vector<std::string>{"kube-proxy.service"});
  CHECK(units_to_restart({"etcd.service"}, {"/etc/etcdx/a", "/etc/systemd/system/etcd.service.d/x.conf"}) ==
        std::vector<std::string>{"etcd.service"});
  CHECK(units_to_restart({"etcd.service"}, {"/etc/etcdx/a"}).empty());
  // The bootstrap objects and their identity are the installer's, no unit reads them.
  CHECK(units_to_restart({"kube-apiserver.service", "kube-controller-manager.service", "kube-scheduler.service"},
                         {"/var/lib/kubernetes/bootstrap/objects.json", "/var/lib/kubernetes/bootstrap/kbundle-bootstrap.key"})
            .empty());
  CHECK(units_to_restart({"kube-apiserver.service"}, {"/var/lib/kubernetes/bootstrap/objects.json", "/var/lib/kubernetes/ca.crt"}) ==
        std::vector<std::string>{"kube-apiserver.service"});
  // The snapshot policy and a restore bundle's files are the installer's: etcd does not restart for
  // them (a restore restarts it itself, once); the timer restarts when its own file changes.
  CHECK(units_to_restart({"etcd.service", "etcd-snapshot.timer"},
                         {"/etc/etcd/backup.json", "/var/lib/etcd-restore/snapshot.db", "/etc/systemd/system/etcd-snapshot.service"})
            .empty());
  CHECK(units_to_restart({"etcd.service", "etcd-snapshot.timer"}, {"/etc/systemd/system/etcd-snapshot.timer"}) ==
        std::vector<std::string>{"etcd-snapshot.timer"});
}

TEST_CASE("a crashed apply's journal is rolled back by the next command", "[apply]") {
  // In-process stand-in for kill -9 (the integration test does the real thing): leave a
  // journal in phase "switch" with half the files switched, then recover.
  Fixture f;
  REQUIRE(apply_bundle(options(f.root, f.key), f.b1).code == ExitCode::Ok);
  auto gen1 = snapshot(f.root, kState);
  Layout L(f.root);
  BundleReader reader(f.b2, kb::test::test_key().public_pem);
  auto installed = parse_manifest(read_file(L.current() + "/manifest.json"));
  // Stage with the real reader, then switch the first half of the transaction by hand.
  extract_bundle(f.b2, kb::test::test_key().public_pem, L.staging(2) + "/files");
  Transaction tx = make_transaction(L, reader.manifest(), &installed);
  Journal j;
  j.serial = 2;
  j.old_serial = 1;
  j.phase = "backup";
  write_journal(L, j);
  take_backups(L, L.generation(1), tx, FaultPoints{});
  j.phase = "switch";
  write_journal(L, j);
  for (size_t i = 0; i < tx.ops.size() / 2; ++i) run_op(L, tx.ops[i], L.staging(2));
  CHECK(snapshot(f.root, kState) != gen1);
  auto r = run([](const Options& o, const Hooks& h, Io io) { return recover(o, h, io); }, options(f.root));
  CHECK(r.code == ExitCode::Ok);
  CHECK(r.out.find("rolled back to serial 1") != std::string::npos);
  CHECK(snapshot(f.root, kState) == gen1);
  CHECK(inspect(L.journal(), false).kind == LiveState::Kind::Absent);
  CHECK(apply_bundle(options(f.root), f.b2).code == ExitCode::Ok);
}

TEST_CASE("G30: applying the installed serial again repairs drift, restarts only the units it touches", "[apply]") {
  Fixture f;
  REQUIRE(apply_bundle(options(f.root, f.key), f.b1).code == ExitCode::Ok);
  auto clean = snapshot(f.root, kState);  // everything but the installer's own state
  const std::string manifest_before = read_file(f.root + "/" + kState + "/current/manifest.json");
  // Drift in etcd's files only: content, mode, a missing file.
  write_file_atomic(f.root + "/etc/etcd/ca.crt", "edited by hand\n", 0644);
  REQUIRE(::chmod((f.root + "/etc/etcd/server.key").c_str(), 0644) == 0);
  REQUIRE(::unlink((f.root + "/usr/local/bin/etcd").c_str()) == 0);

  auto verify_all = [&] { return run([](const Options& o, const Hooks& h, Io io) { return verify(o, h, io, std::nullopt); }, options(f.root)); };
  auto v = verify_all();
  CHECK(v.code == ExitCode::Failure);
  CHECK(v.out.find("3 of ") != std::string::npos);
  auto st_opt = options(f.root);
  st_opt.json = true;
  auto st = run([](const Options& o, const Hooks& h, Io io) { return status(o, h, io); }, st_opt);
  auto report = nlohmann::json::parse(st.out);
  REQUIRE(report["drift"].size() == 3);
  CHECK(report["drift"][0]["path"] == "/etc/etcd/ca.crt");
  CHECK(report["drift"][0]["why"][0] == "content");
  CHECK(report["drift"][1]["why"][0] == "mode 0644 (want 0600)");
  CHECK(report["drift"][2]["why"][0] == "missing");

  SECTION("a dry run says what it would repair and writes nothing") {
    auto opt = options(f.root);
    opt.dry_run = true;
    auto before = snapshot(f.root, "", true);
    auto d = apply_bundle(opt, f.b1);
    CHECK(d.code == ExitCode::Ok);
    CHECK(d.out.find("would write  /etc/etcd/ca.crt") != std::string::npos);
    CHECK(d.out.find("would restart etcd.service") != std::string::npos);
    CHECK(d.out.find("kube-apiserver") == std::string::npos);
    CHECK(snapshot(f.root, "", true) == before);
  }
  SECTION("apply repairs exactly the drifted paths and restarts etcd only") {
    auto r = apply_bundle(options(f.root), f.b1);
    CHECK(r.code == ExitCode::Ok);
    CHECK(r.out.find("drifted: /etc/etcd/server.key: mode 0644 (want 0600)") != std::string::npos);
    CHECK(r.out.find("repaired 3 drifted paths of serial 1") != std::string::npos);
    CHECK(r.calls == std::vector<std::string>{"daemon-reload", "enable etcd.service", "enable kube-apiserver.service",
                                              "restart --no-block etcd.service"});
    CHECK(snapshot(f.root, kState) == clean);
    CHECK(verify_all().code == ExitCode::Ok);
    // Nothing left to repair: the next apply is a no-op again (G12).
    auto again = apply_bundle(options(f.root), f.b1);
    CHECK(again.out.find("already at serial 1; nothing to do") != std::string::npos);
    CHECK(again.calls.empty());
    // The installed generation and the rollback target are those of before.
    CHECK(read_file(f.root + "/" + kState + "/current/manifest.json") == manifest_before);
  }
  SECTION("a file replaced by a directory is named, and nothing is changed") {
    REQUIRE(::unlink((f.root + "/etc/etcd/ca.crt").c_str()) == 0);
    REQUIRE(::mkdir((f.root + "/etc/etcd/ca.crt").c_str(), 0700) == 0);
    CHECK(verify_all().out.find("/etc/etcd/ca.crt: is a directory") != std::string::npos);
    auto before = snapshot(f.root, "", true);
    auto r = apply_bundle(options(f.root), f.b1);
    CHECK(r.code == ExitCode::Failure);
    CHECK(r.err.find("/etc/etcd/ca.crt: is a directory where the bundle has a file") != std::string::npos);
    CHECK(r.calls.empty());
    CHECK(snapshot(f.root, "", true) == before);
  }
  SECTION("a repair whose health check fails puts the drifted files back and says so") {
    auto opt = options(f.root);
    opt.no_systemd = false;
    auto drifted = snapshot(f.root, kState);
    auto r = apply_bundle(opt, f.b1, [](const nlohmann::json&, const std::string&, ServiceManager&) {
      return HealthResult{false, "connection refused"};
    });
    CHECK(r.code == ExitCode::HealthRolledBack);
    CHECK(snapshot(f.root, kState) == drifted);
    CHECK(verify_all().code == ExitCode::Failure);
  }
}

TEST_CASE("G9: a failed first apply sets aside a directory it made that a service filled", "[apply]") {
  // etcd's first start writes its member data into /var/lib/etcd, which the bundle made: the rollback
  // cannot rmdir it, and must neither fail nor delete that data nor leave it for the next start.
  Fixture f;
  auto opt = options(f.root, f.key);
  opt.no_systemd = false;
  auto filling = [&](const nlohmann::json&, const std::string&, ServiceManager&) {
    make_dirs(f.root + "/var/lib/etcd/member/wal", 0700);
    write_file_atomic(f.root + "/var/lib/etcd/member/wal/0.wal", "wal", 0600);
    return HealthResult{false, "no leader (after 120 s)"};
  };
  auto r = apply_bundle(opt, f.b1, filling);
  INFO(r.err);
  CHECK(r.code == ExitCode::HealthRolledBack);
  CHECK(inspect(f.root + "/var/lib/etcd", false).kind == LiveState::Kind::Absent);
  CHECK(inspect(f.root + "/etc/etcd", false).kind == LiveState::Kind::Absent);
  std::vector<std::string> kept;
  for (const auto& e : std::filesystem::directory_iterator(f.root + "/" + kState + "/discarded")) kept.push_back(e.path());
  REQUIRE(kept.size() == 1);
  CHECK(kept[0].find("-var_lib_etcd") != std::string::npos);
  CHECK(read_file(kept[0] + "/member/wal/0.wal") == "wal");
  // The next apply starts from an empty /var/lib/etcd again.
  auto ok = apply_bundle(opt, f.b1, [](const nlohmann::json&, const std::string&, ServiceManager&) { return HealthResult{true, "ok"}; });
  CHECK(ok.code == ExitCode::Ok);
  CHECK(std::filesystem::is_empty(f.root + "/var/lib/etcd"));
}
