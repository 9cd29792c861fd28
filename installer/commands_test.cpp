// `kbundle-installer health`: the installed generation's checks, every one, nothing written.
#include <catch2/catch.hpp>

#include "installer/installer_test_util.h"
#include "installer/run.h"
#include "installer/transaction.h"

using namespace kb;
using namespace kb::installer;
using namespace kb::installer::test;

namespace {

// A bundle with three checks: the rollout gate must see every result, not just the first failure.
void write_checked_bundle(const std::string& path, uint64_t serial) {
  BundleExtras extras;
  extras.header = [](Manifest& m) {
    m.health_checks = {nlohmann::json{{"name", "etcd"}, {"kind", "etcd"}, {"target", "https://127.0.0.1:2379/health"}},
                       nlohmann::json{{"name", "apiserver"}, {"kind", "https"}, {"target", "https://127.0.0.1:6443/livez"}},
                       nlohmann::json{{"name", "unit"}, {"kind", "unit"}, {"target", "etcd.service"}}};
  };
  write_bundle(path, serial, "a", "cp-1", false, kb::test::test_key(), extras);
}

Result health_run(const Options& opt, HealthFn fn) {
  return run([](const Options& o, const Hooks& h, Io io) { return health(o, h, io); }, opt, std::move(fn));
}

Options live(const std::string& root, bool json = false) {
  Options o = options(root);
  o.no_systemd = false;  // the null manager still, but the checks run
  o.json = json;
  return o;
}

}  // namespace

TEST_CASE("health runs every installed check, writes nothing, exit 0 only when all pass", "[health-command]") {
  TempDir tmp;
  std::string root = make_root(tmp), bundle = tmp / "b.kbundle";
  write_checked_bundle(bundle, 3);
  REQUIRE(apply_bundle(options(root, trust_file(tmp)), bundle).code == ExitCode::Ok);
  const auto before = snapshot(root, "", true);

  std::vector<std::string> asked;
  auto all_ok = [&](const nlohmann::json& c, const std::string&, ServiceManager&) {
    asked.push_back(c.value("name", ""));
    return HealthResult{true, "200 OK in 0.0 s"};
  };
  Result ok = health_run(live(root), all_ok);
  CHECK(ok.code == ExitCode::Ok);
  CHECK(asked == std::vector<std::string>{"etcd", "apiserver", "unit"});
  CHECK(ok.out.find("node cp-1, serial 3: all 3 health checks pass") != std::string::npos);
  CHECK(ok.calls.empty());  // no restart, no start, no daemon-reload
  CHECK(snapshot(root, "", true) == before);

  SECTION("a failing check fails it, and the later checks still run and are reported (--json)") {
    asked.clear();
    auto etcd_down = [&](const nlohmann::json& c, const std::string&, ServiceManager&) {
      asked.push_back(c.value("name", ""));
      return c.value("name", "") == "etcd" ? HealthResult{false, "HTTP 503, etcd says {\"health\":\"false\"} (after 1.0 s)"}
                                           : HealthResult{true, "200 OK"};
    };
    Result bad = health_run(live(root, true), etcd_down);
    CHECK(bad.code == ExitCode::Failure);
    CHECK(asked.size() == 3);
    nlohmann::json j = nlohmann::json::parse(bad.out);
    CHECK(j["command"] == "health");
    CHECK(j["healthy"] == false);
    CHECK(j["serial"] == 3);
    CHECK(j["exit_code"] == 1);
    REQUIRE(j["checks"].size() == 3);
    CHECK(j["checks"][0]["ok"] == false);
    CHECK(j["checks"][0]["kind"] == "etcd");
    CHECK(j["checks"][1]["ok"] == true);
    CHECK(j["error"].get<std::string>().find("health check etcd failed: HTTP 503") != std::string::npos);
    CHECK(snapshot(root, "", true) == before);
  }
  SECTION("--no-systemd skips the checks and says so, as apply's gate does") {
    asked.clear();
    Options o = options(root);
    o.json = true;
    Result r = health_run(o, all_ok);
    CHECK(r.code == ExitCode::Ok);
    CHECK(asked.empty());
    CHECK(r.err.find("health checks skipped (--no-systemd)") != std::string::npos);
    CHECK(nlohmann::json::parse(r.out)["skipped"] == true);
  }
  SECTION("an interrupted apply is reported, not recovered (health writes nothing)") {
    Journal jn;
    jn.op = "apply";
    jn.serial = 4;
    jn.old_serial = 3;
    jn.phase = "switch";
    write_journal(Layout(root), jn);
    const auto with_journal = snapshot(root, "", true);
    Result r = health_run(live(root), all_ok);
    CHECK(r.code == ExitCode::Failure);
    CHECK(r.err.find("interrupted apply of serial 4") != std::string::npos);
    CHECK(snapshot(root, "", true) == with_journal);
  }
}

TEST_CASE("health on a node with nothing installed fails and says so", "[health-command]") {
  TempDir tmp;
  std::string root = make_root(tmp);
  const auto before = snapshot(root, "", true);
  Result r = health_run(live(root), [](const nlohmann::json&, const std::string&, ServiceManager&) {
    return HealthResult{true, ""};
  });
  CHECK(r.code == ExitCode::Failure);
  CHECK(r.err.find("nothing is installed") != std::string::npos);
  CHECK(snapshot(root, "", true) == before);
}

TEST_CASE("health is a command of the CLI; extra arguments are refused", "[health-command]") {
  TempDir tmp;
  std::string root = make_root(tmp);
  Hooks hooks;
  std::ostringstream out, err;
  std::vector<std::string> args = {"kbundle-installer", "--root", root, "health", "extra"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  CHECK(run_cli(static_cast<int>(argv.size()), argv.data(), hooks, out, err) == 2);
  CHECK(err.str().find("unexpected argument extra") != std::string::npos);
  std::ostringstream out2, err2;
  argv.pop_back();
  CHECK(run_cli(static_cast<int>(argv.size()), argv.data(), hooks, out2, err2) == 1);
  CHECK(err2.str().find("nothing is installed") != std::string::npos);
}
