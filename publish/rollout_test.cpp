#include "publish/rollout.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "base/error.h"

namespace {

using kb::ExecResult;
using kb::NodeResult;
using Batches = std::vector<std::vector<std::string>>;

std::string apply_json(const std::string& result, int code = 0, const std::string& error = "") {
  nlohmann::json j{{"command", "apply"}, {"exit_code", code}};
  if (!result.empty()) j["result"] = result;
  if (!error.empty()) j["error"] = error;
  return j.dump();
}

// Scripted nodes: every call recorded in order; applies sleep a little so overlap can be seen.
struct FakeNodes : kb::RolloutNodes {
  std::set<std::string> installed_nodes;
  std::map<std::string, ExecResult> apply_results, health_results;
  std::set<std::string> unreachable;  // upload throws
  std::vector<std::string> calls;
  std::mutex mu;
  std::atomic<int> in_flight{0}, max_in_flight{0};

  void record(const std::string& c) {
    std::lock_guard<std::mutex> l(mu);
    calls.push_back(c);
  }
  bool installed(const std::string& n) override {
    record("probe " + n);
    return installed_nodes.count(n) > 0;
  }
  void upload(const std::string& n) override {
    record("upload " + n);
    if (unreachable.count(n)) throw kb::Error("ssh 10.0.0.9:22: connection refused");
  }
  ExecResult apply(const std::string& n) override {
    record("apply " + n);
    int now = ++in_flight;
    for (int m = max_in_flight; now > m && !max_in_flight.compare_exchange_weak(m, now);) {}
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    --in_flight;
    auto it = apply_results.find(n);
    return it != apply_results.end() ? it->second : ExecResult{0, "bundle: OK\n" + apply_json("applied") + "\n"};
  }
  ExecResult health(const std::string& n) override {
    record("health " + n);
    auto it = health_results.find(n);
    return it != health_results.end() ? it->second : ExecResult{0, "all 4 health checks pass\n"};
  }
  size_t count_with(const std::string& node) const {
    size_t c = 0;
    for (const auto& s : calls) c += s.substr(s.find(' ') + 1) == node;
    return c;
  }
};

const Batches kOrder = {{"cp1"}, {"cp2"}, {"cp3"}, {"w1", "w2"}, {"w3"}};
const std::set<std::string> kCps = {"cp1", "cp2", "cp3"};

const kb::NodeRollout& find(const kb::RolloutReport& r, const std::string& n) {
  for (const auto& x : r.nodes)
    if (x.node == n) return x;
  FAIL("no node " << n);
  throw 0;
}

}  // namespace

TEST_CASE("rollout of a running cluster: control plane one at a time, each gated with all before it", "[rollout]") {
  FakeNodes f;
  f.installed_nodes = {"cp1", "cp2", "cp3", "w1"};
  f.apply_results["cp3"] = {0, "already at serial 4; nothing to do\n" + apply_json("unchanged") + "\n"};
  std::ostringstream out;
  kb::RolloutReport r = kb::run_rollout(kOrder, kCps, f, out);
  REQUIRE(r.ok());
  CHECK_FALSE(r.first_install);
  CHECK(r.order == kOrder);
  // Only the first control-plane node is asked whether it is installed; every gate re-asks the earlier ones.
  const std::vector<std::string> cp_calls(f.calls.begin(), f.calls.begin() + 13);
  CHECK(cp_calls == std::vector<std::string>{"probe cp1", "upload cp1", "apply cp1", "health cp1", "upload cp2",
                                             "apply cp2", "health cp2", "health cp1", "upload cp3", "apply cp3",
                                             "health cp3", "health cp1", "health cp2"});
  // Workers: w1 and w2 at once (max-unavailable 2), then w3; never a health call for them.
  CHECK(f.calls.size() == 13 + 6);
  CHECK(f.max_in_flight == 2);
  CHECK(f.calls.back() == "apply w3");
  CHECK(find(r, "cp3").result == NodeResult::Unchanged);  // "nothing to do" counts as done
  CHECK(find(r, "w2").result == NodeResult::Applied);
  CHECK(find(r, "w2").batch == 4);
  CHECK(out.str().find("rollout order: cp1, then cp2, then cp3, then [w1 w2], then w3") == 0);
  nlohmann::json j = r.to_json();
  CHECK(j["ok"] == true);
  CHECK(j["failure"].is_null());
  CHECK(j["nodes"][2]["result"] == "unchanged");
  CHECK(j["nodes"][3]["role"] == "worker");
  // Start offsets follow the order.
  CHECK(find(r, "cp1").start_offset <= find(r, "cp2").start_offset);
  CHECK(find(r, "cp3").start_offset <= find(r, "w3").start_offset);
}

TEST_CASE("rollout stops at a failed apply; later nodes are never contacted", "[rollout]") {
  FakeNodes f;
  f.installed_nodes = {"cp1", "cp2", "cp3"};
  std::string out_text = "control-1.kbundle: OK\nhealth etcd: FAILED (connection refused (after 10.0 s))\n";
  for (int i = 0; i < 20; ++i) out_text += "line " + std::to_string(i) + "\n";
  out_text += "evil \x1b]0;owned\x07 title\n";
  f.apply_results["cp2"] = {4, out_text + apply_json("", 4, "health check etcd failed: connection refused; rolled back to serial 3") + "\n"};
  std::ostringstream out;
  kb::RolloutReport r = kb::run_rollout(kOrder, kCps, f, out);
  CHECK_FALSE(r.ok());
  CHECK(f.count_with("cp3") == 0);
  CHECK(f.count_with("w1") == 0);
  CHECK(f.count_with("w3") == 0);
  CHECK(f.calls.back() == "apply cp2");  // no gate after a failed apply
  const auto& cp2 = find(r, "cp2");
  CHECK(cp2.result == NodeResult::Failed);
  CHECK(cp2.step == "apply");
  CHECK(cp2.exit_code == 4);
  CHECK(cp2.error.find("exited 4: health check etcd failed") != std::string::npos);
  REQUIRE(cp2.last_lines.size() == 8);
  CHECK(cp2.last_lines.back().find('\x1b') == std::string::npos);  // escaped
  CHECK(cp2.last_lines.back().find("\\x1b") != std::string::npos);
  CHECK(find(r, "cp1").result == NodeResult::Applied);
  CHECK(find(r, "cp3").result == NodeResult::NotStarted);
  CHECK(find(r, "w3").result == NodeResult::NotStarted);
  CHECK(r.failure.find("cp2: apply: kbundle-installer apply exited 4") == 0);

  nlohmann::json j = r.to_json();
  CHECK(j["ok"] == false);
  CHECK(j["nodes"][1]["exitCode"] == 4);
  CHECK(j["nodes"][1]["lastLines"].size() == 8);
  CHECK(j["nodes"][2]["result"] == "not-started");
  CHECK_FALSE(j["nodes"][2].contains("startedAt"));

  std::ostringstream printed;
  r.print(printed);
  CHECK(printed.str().find("rollout: 1 of 6 nodes done; stopped: cp2: apply") != std::string::npos);
  CHECK(printed.str().find("not started") != std::string::npos);
  CHECK(printed.str().find('\x1b') == std::string::npos);
}

TEST_CASE("a control-plane node whose apply passed but that breaks an earlier one's health fails", "[rollout]") {
  FakeNodes f;
  f.installed_nodes = {"cp1"};
  SECTION("its own health") {
    f.health_results["cp2"] = {1, "health etcd: FAILED (HTTP 503)\n"};
    std::ostringstream sink;
    kb::RolloutReport r = kb::run_rollout(kOrder, kCps, f, sink);
    CHECK(find(r, "cp2").step == "health");
    CHECK(find(r, "cp2").exit_code == 1);
    CHECK(f.count_with("cp1") == 4);  // probe, upload, apply, health: not asked again after cp2 failed
  }
  SECTION("the first node's own gate") {
    f.health_results["cp1"] = {1, "health etcd: FAILED (etcd says {\"health\":\"false\"})\n"};
    std::ostringstream sink;
    kb::RolloutReport r = kb::run_rollout({{"cp1"}, {"cp2"}, {"cp3"}}, kCps, f, sink);
    // cp1's own gate fails first: it is cp1 that failed.
    CHECK(find(r, "cp1").step == "health");
    CHECK(find(r, "cp2").result == NodeResult::NotStarted);
  }
  SECTION("an earlier node's health, after it had passed") {
    int asked = 0;
    struct Flaky : FakeNodes {
      int* asked;
      ExecResult health(const std::string& n) override {
        record("health " + n);
        if (n == "cp1" && ++*asked > 1) return {1, "health etcd: FAILED (no leader)\n"};
        return {0, ""};
      }
    } fl;
    fl.asked = &asked;
    fl.installed_nodes = {"cp1"};
    std::ostringstream sink;
    kb::RolloutReport r = kb::run_rollout(kOrder, kCps, fl, sink);
    CHECK(find(r, "cp1").result == NodeResult::Applied);
    CHECK(find(r, "cp2").result == NodeResult::Failed);
    CHECK(find(r, "cp2").step == "health of cp1");
    CHECK(r.failure.find("cp2: health of cp1: kbundle-installer health on cp1 exited 1") == 0);
    CHECK(fl.count_with("cp3") == 0);
  }
}

TEST_CASE("first install: a never-installed control plane is applied together, then every node gated", "[rollout]") {
  FakeNodes f;
  std::ostringstream out;
  kb::RolloutReport r = kb::run_rollout(kOrder, kCps, f, out);
  REQUIRE(r.ok());
  CHECK(r.first_install);
  CHECK(r.order == Batches{{"cp1", "cp2", "cp3"}, {"w1", "w2"}, {"w3"}});
  CHECK(f.max_in_flight == 3);
  CHECK(std::vector<std::string>(f.calls.begin(), f.calls.begin() + 3) ==
        std::vector<std::string>{"probe cp1", "probe cp2", "probe cp3"});
  CHECK(f.count_with("cp1") == 4);  // probe, upload, apply, health
  CHECK(find(r, "cp3").batch == 1);
  CHECK(find(r, "w3").batch == 3);
  CHECK(out.str().find("first install: no control-plane node has anything installed") != std::string::npos);
  CHECK(r.to_json()["firstInstall"] == true);

  SECTION("one installed control-plane node makes it a running cluster: one at a time") {
    FakeNodes g;
    g.installed_nodes = {"cp2"};
    kb::RolloutReport r2 = kb::run_rollout(kOrder, kCps, g, out);
    CHECK_FALSE(r2.first_install);
    CHECK(r2.order == kOrder);
    CHECK(g.count_with("cp3") == 3);  // never probed: cp2 already settled it
  }
  SECTION("a subset of the control plane (--node) is never a first install, and never probed") {
    FakeNodes g;
    kb::RolloutReport r2 = kb::run_rollout({{"cp2"}, {"cp3"}}, kCps, g, out);
    CHECK_FALSE(r2.first_install);
    CHECK(r2.order == Batches{{"cp2"}, {"cp3"}});
    CHECK(g.calls.front() == "upload cp2");
  }
  SECTION("a single control-plane node is never probed") {
    FakeNodes g;
    kb::RolloutReport r2 = kb::run_rollout({{"cp1"}, {"w1"}}, {"cp1"}, g, out);
    CHECK(g.calls.front() == "upload cp1");
  }
}

TEST_CASE("an unreachable node fails at its step; its batch mates finish, later batches do not start", "[rollout]") {
  FakeNodes f;
  f.installed_nodes = {"cp1"};
  f.unreachable = {"w1"};
  std::ostringstream out;
  kb::RolloutReport r = kb::run_rollout(kOrder, kCps, f, out);
  CHECK_FALSE(r.ok());
  CHECK(find(r, "w1").step == "upload");
  CHECK(find(r, "w1").exit_code == -1);
  CHECK(r.to_json()["nodes"][3]["exitCode"].is_null());
  CHECK(find(r, "w2").result == NodeResult::Applied);
  CHECK(find(r, "w3").result == NodeResult::NotStarted);
  CHECK(f.count_with("w3") == 0);

  SECTION("a probe that cannot reach the node stops before anything is uploaded") {
    struct NoProbe : FakeNodes {
      bool installed(const std::string& n) override {
        record("probe " + n);
        throw kb::Error("ssh 10.0.0.1:22: REFUSED: the host key does not match");
      }
    } p;
    kb::RolloutReport r2 = kb::run_rollout(kOrder, kCps, p, out);
    CHECK(p.calls == std::vector<std::string>{"probe cp1"});
    CHECK(find(r2, "cp1").step == "probe");
    CHECK(r2.failure.find("REFUSED") != std::string::npos);
  }
}

TEST_CASE("parse_apply_output: the installer's --json line, or nothing trusted from a line that is not one", "[rollout]") {
  auto a = kb::parse_apply_output("x.kbundle: OK\r\nalready at serial 3; nothing to do\n" + apply_json("unchanged") + "\n\n");
  CHECK(a.result == "unchanged");
  CHECK(a.lines == std::vector<std::string>{"x.kbundle: OK", "already at serial 3; nothing to do"});
  auto usage = kb::parse_apply_output("x.kbundle: OK\nkbundle-installer: error: unknown flag --no-such-flag\nusage: ...\n  a\n  b\n");
  CHECK(usage.result.empty());
  CHECK(usage.error == "unknown flag --no-such-flag");
  CHECK(kb::parse_apply_output("kbundle-installer: error: x\n" + apply_json("", 3, "bad signature") + "\n").error ==
        "bad signature");
  for (const std::string& hostile :
       {std::string(""), std::string("\n\n"), std::string("sh: 1: kbundle-installer: not found\n"), std::string("{"),
        std::string("{\"result\":\"unchanged\"}"),  // not the installer's report: no "command"
        std::string("[\"command\"]"), std::string("{\"command\":\"apply\",\"result\":7,\"error\":[]}"),
        std::string(1 << 16, '{')}) {
    auto p = kb::parse_apply_output(hostile);
    CHECK(p.result.empty());
    CHECK(p.error.empty());
  }
  CHECK(kb::last_lines({"a", "", "b", "c\x07"}, 2) == std::vector<std::string>{"b", "c\\x07"});
}
