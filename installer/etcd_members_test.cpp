// etcd membership on the node (installer/etcd_members.h, docs/etcd.md): the join (learner add,
// promote retried, already a member, replacement, failure removes the learner), the removals
// after commit (quorum, epoch guard, idempotence) and hostile membership.json, against a fake
// JSON gateway behind Hooks::api_client: no socket, no waiting.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "base/atomic_file.h"
#include "base/hash.h"
#include "bundles/path_policy.h"
#include "installer/etcd_members.h"
#include "installer/installer_test_util.h"

using namespace kb;
using namespace kb::installer;
using namespace kb::installer::test;
using kb::test::meta;
using json = nlohmann::json;

namespace {

const std::string kSelfPeer = "https://10.0.0.4:2380";

// A cluster as the gateway shows it, answering the requests the installer sends.
struct FakeEtcd {
  struct Member {
    std::string id, name, peer, client;
    bool learner = false;
  };
  std::vector<Member> members;
  uint64_t epoch = 0;
  int promote_refusals = 0;   // "not in sync" this many times
  bool add_fails = false;
  int add_unhealthy = 0;      // "etcdserver: unhealthy cluster" (a member connected < 5 s ago) this many times
  std::set<std::string> down;  // client URLs that do not answer
  std::vector<std::string> log;  // "URL PATH BODY"
  std::vector<std::chrono::milliseconds> sleeps;
  std::chrono::steady_clock::time_point now{};
  uint64_t next_id = 900;

  static Member voter(const std::string& id, const std::string& name, const std::string& ip) {
    return {id, name, "https://" + ip + ":2380", "https://" + ip + ":2379", false};
  }
  static FakeEtcd three() {
    FakeEtcd f;
    f.members = {voter("101", "cp-0", "10.0.0.1"), voter("102", "cp-1", "10.0.0.2"), voter("103", "cp-2", "10.0.0.3")};
    return f;
  }

  json list_json() const {
    json ms = json::array();
    for (const auto& m : members) {
      json j = {{"ID", m.id}, {"peerURLs", {m.peer}}};
      if (!m.name.empty()) j["name"] = m.name, j["clientURLs"] = {m.client};
      if (m.learner) j["isLearner"] = true;
      ms.push_back(j);
    }
    return {{"header", {{"cluster_id", "1"}}}, {"members", ms}};
  }
  static HttpResult ok(const json& j) {
    HttpResponse r;
    r.status = 200;
    r.body = j.dump();
    return r;
  }
  static HttpResult grpc_error(int http, int code, const std::string& message) {
    HttpResponse r;
    r.status = http;
    r.body = json{{"error", message}, {"message", message}, {"code", code}}.dump();
    return r;
  }

  HttpResult handle(const std::string& url, const HttpRequest& q) {
    log.push_back(url + " " + q.target + " " + q.body);
    if (down.count(url)) return HttpFailure{HttpFailure::Step::Connect, false, ECONNREFUSED, "Connection refused", 0};
    json b = json::parse(q.body);
    if (q.target == "/v3/cluster/member/list") return ok(list_json());
    if (q.target == "/v3/cluster/member/add") {
      if (add_fails) return grpc_error(412, 9, "etcdserver: too many learner members in cluster");
      if (add_unhealthy-- > 0) return grpc_error(503, 14, "etcdserver: unhealthy cluster");
      Member m{std::to_string(next_id++), "", b["peerURLs"][0], "", b.value("isLearner", false)};
      members.push_back(m);
      return ok({{"member", {{"ID", m.id}, {"peerURLs", {m.peer}}, {"isLearner", m.learner}}}, {"members", list_json()["members"]}});
    }
    auto find = [&](const std::string& id) {
      return std::find_if(members.begin(), members.end(), [&](const Member& m) { return m.id == id; });
    };
    if (q.target == "/v3/cluster/member/promote") {
      auto it = find(b["ID"]);
      if (it == members.end()) return grpc_error(404, 5, "etcdserver: member not found");
      if (promote_refusals-- > 0) return grpc_error(412, 9, "etcdserver: can only promote a learner member which is in sync with leader");
      it->learner = false;
      it->name = "cp-3";  // it started
      return ok({{"members", list_json()["members"]}});
    }
    if (q.target == "/v3/cluster/member/remove") {
      auto it = find(b["ID"]);
      if (it == members.end()) return grpc_error(404, 5, "etcdserver: member not found");
      members.erase(it);
      return ok({{"members", list_json()["members"]}});
    }
    if (q.target == "/v3/kv/range") {
      CHECK(*base64_decode(b["key"].get<std::string>()) == kEtcdEpochKey);
      if (epoch == 0) return ok({{"header", json::object()}});
      return ok({{"kvs", {{{"key", b["key"]}, {"value", base64_encode(std::to_string(epoch))}}}}});
    }
    if (q.target == "/v3/kv/put") {
      epoch = std::stoull(*base64_decode(b["value"].get<std::string>()));
      return ok({{"header", json::object()}});
    }
    return grpc_error(404, 12, "unknown path");
  }

  Hooks hooks(std::vector<std::string>* calls, bool healthy = true) {
    Hooks h;
    h.make_services = [calls](bool) { return make_null_manager(calls); };
    h.health = [healthy](const json&, const std::string&, ServiceManager&) {
      return healthy ? HealthResult{true, "ok"} : HealthResult{false, "etcd says {\"health\":\"false\"}"};
    };
    h.monotonic = [this] { return now; };
    h.sleep = [this](std::chrono::milliseconds d) {
      sleeps.push_back(d);
      now += d;
    };
    h.api_client = [this](const ApiEndpoint& ep) -> ApiSend {
      CHECK(ep.cert_file.size() >= std::string(kEtcdPeerCertFile).size());
      CHECK(ep.cert_file.compare(ep.cert_file.size() - std::string(kEtcdPeerCertFile).size(), std::string::npos, kEtcdPeerCertFile) == 0);
      std::string url = "https://" + ep.url.host + ":" + std::to_string(ep.url.port);
      return [this, url](const HttpRequest& q, const HttpLimits&) { return handle(url, q); };
    };
    return h;
  }

  size_t count(const std::string& path) const {
    return std::count_if(log.begin(), log.end(), [&](const std::string& l) { return l.find(" " + path + " ") != std::string::npos; });
  }
  // The first logged request to `path` ("" when none).
  std::string first(const std::string& path) const {
    for (const auto& l : log)
      if (l.find(" " + path + " ") != std::string::npos) return l;
    return "";
  }
  size_t index_of(const std::string& path) const {
    for (size_t i = 0; i < log.size(); ++i)
      if (log[i].find(" " + path + " ") != std::string::npos) return i;
    return log.size();
  }
  bool has(const std::string& peer) const {
    return std::any_of(members.begin(), members.end(), [&](const Member& m) { return m.peer == peer; });
  }
};

json membership(const std::string& state, const std::vector<std::pair<std::string, std::string>>& remove = {}, uint64_t epoch = 2) {
  json members = json::array();
  std::string ic;
  for (auto [n, ip] : std::vector<std::pair<std::string, std::string>>{{"cp-0", "10.0.0.1"}, {"cp-1", "10.0.0.2"},
                                                                       {"cp-2", "10.0.0.3"}, {"cp-3", "10.0.0.4"}}) {
    members.push_back({{"name", n}, {"peer_url", "https://" + ip + ":2380"}, {"client_url", "https://" + ip + ":2379"}});
    ic += (ic.empty() ? "" : ",") + n + "=https://" + ip + ":2380";
  }
  json rm = json::array();
  for (auto [n, peer] : remove) rm.push_back({{"name", n}, {"peer_url", peer}});
  return {{"version", 1},        {"epoch", epoch},     {"name", "cp-3"}, {"peer_url", kSelfPeer}, {"initial_cluster", ic},
          {"initial_cluster_state", state}, {"members", members}, {"remove", rm}};
}

// cp-3's control-plane bundle carrying `file` as membership.json, with the etcd TLS files.
void etcd_bundle(const std::string& path, uint64_t serial, const std::string& file) {
  BundleExtras x;
  x.entries = [&](BundleWriter& w) {
    w.add_file(meta(kEtcdMembershipFile, 0600, EntryClass::Config), file);
    w.add_file(meta(kEtcdPeerCertFile, 0644, EntryClass::Config), kb::test::pem_like("CERTIFICATE", 11));
    w.add_file(meta(kEtcdPeerKeyFile, 0600, EntryClass::Secret), "peer-key");
  };
  write_bundle(path, serial, "a", "cp-3", false, kb::test::test_key(), x);
}

struct Applied {
  ExitCode code;
  std::string out, err;
};

Applied apply_with(const std::string& root, const std::string& trust, const Hooks& hooks, const std::string& bundle) {
  Options o = options(root, trust);
  o.no_systemd = false;
  o.node = "cp-3";
  std::ostringstream out, err;
  ExitCode code = apply(o, hooks, Io{out, err}, bundle);
  return {code, out.str(), err.str()};
}

}  // namespace

TEST_CASE("etcd join: a new member is added as a learner, started, promoted once caught up (retried), epoch recorded", "[etcd]") {
  TempDir tmp;
  std::string root = make_root(tmp), b = tmp / "b.kbundle";
  etcd_bundle(b, 1, membership("existing").dump());
  FakeEtcd etcd = FakeEtcd::three();
  etcd.promote_refusals = 3;
  etcd.add_unhealthy = 4;  // etcd 3.4 refuses an add while a member connected less than 5 s ago
  std::vector<std::string> calls;
  Applied a = apply_with(root, trust_file(tmp), etcd.hooks(&calls), b);
  INFO(a.out << a.err);
  REQUIRE(a.code == ExitCode::Ok);
  // The unhealthy answer went to every member in turn, then the add was retried after a pause.
  CHECK(etcd.count("/v3/cluster/member/add") == 5);
  CHECK(etcd.first("/v3/cluster/member/add").find("\"isLearner\":true") != std::string::npos);
  CHECK(etcd.first("/v3/cluster/member/add").find(kSelfPeer) != std::string::npos);
  CHECK(etcd.count("/v3/cluster/member/promote") == 4);
  using ms = std::chrono::milliseconds;
  CHECK(etcd.sleeps == std::vector<ms>{ms(250), ms(250), ms(500), ms(1000)});
  REQUIRE(etcd.members.size() == 4);
  CHECK_FALSE(etcd.members[3].learner);
  CHECK(etcd.epoch == 2);
  // Added before etcd was started: the add precedes the restart in the log and the calls.
  CHECK(a.out.find("added cp-3") < a.out.find("restarted etcd.service"));
  CHECK(a.out.find("promoted cp-3") < a.out.find("health etcd:"));
  // The joiner never asks itself.
  for (const auto& l : etcd.log) CHECK(l.rfind("https://10.0.0.4:2379", 0) != 0);
}

TEST_CASE("etcd join: already a member with this peer URL: nothing is added", "[etcd]") {
  TempDir tmp;
  std::string root = make_root(tmp), b = tmp / "b.kbundle";
  etcd_bundle(b, 1, membership("existing").dump());
  FakeEtcd etcd = FakeEtcd::three();
  SECTION("a voting member") {
    etcd.members.push_back(FakeEtcd::voter("104", "cp-3", "10.0.0.4"));
    std::vector<std::string> calls;
    Applied a = apply_with(root, trust_file(tmp), etcd.hooks(&calls), b);
    INFO(a.out << a.err);
    REQUIRE(a.code == ExitCode::Ok);
    CHECK(etcd.count("/v3/cluster/member/add") == 0);
    CHECK(etcd.count("/v3/cluster/member/promote") == 0);
    CHECK(a.out.find("is already a member") != std::string::npos);
  }
  SECTION("a learner an earlier apply added (no name yet): promoted, not added") {
    etcd.members.push_back({"104", "", kSelfPeer, "", true});
    std::vector<std::string> calls;
    Applied a = apply_with(root, trust_file(tmp), etcd.hooks(&calls), b);
    INFO(a.out << a.err);
    REQUIRE(a.code == ExitCode::Ok);
    CHECK(etcd.count("/v3/cluster/member/add") == 0);
    CHECK(etcd.count("/v3/cluster/member/promote") == 1);
    CHECK_FALSE(etcd.members.back().learner);
  }
  SECTION("a data directory with data: no join at all") {
    make_dirs(root + "/var/lib/etcd/member", 0700);
    std::vector<std::string> calls;
    Applied a = apply_with(root, trust_file(tmp), etcd.hooks(&calls), b);
    REQUIRE(a.code == ExitCode::Ok);
    CHECK(etcd.log.empty());
  }
  SECTION("a member started with state new never joins") {
    etcd_bundle(b, 1, membership("new").dump());
    std::vector<std::string> calls;
    Applied a = apply_with(root, trust_file(tmp), etcd.hooks(&calls), b);
    REQUIRE(a.code == ExitCode::Ok);
    CHECK(etcd.log.empty());
  }
}

TEST_CASE("etcd join: a replacement (same name, other peer URL) removes the old member first", "[etcd]") {
  TempDir tmp;
  std::string root = make_root(tmp), b = tmp / "b.kbundle";
  etcd_bundle(b, 1, membership("existing").dump());
  FakeEtcd etcd = FakeEtcd::three();
  etcd.members.push_back(FakeEtcd::voter("104", "cp-3", "10.0.0.9"));  // the old machine
  std::vector<std::string> calls;
  Applied a = apply_with(root, trust_file(tmp), etcd.hooks(&calls), b);
  INFO(a.out << a.err);
  REQUIRE(a.code == ExitCode::Ok);
  CHECK(etcd.first("/v3/cluster/member/remove").find("{\"ID\":\"104\"}") != std::string::npos);
  CHECK(etcd.index_of("/v3/cluster/member/remove") < etcd.index_of("/v3/cluster/member/add"));
  CHECK(etcd.index_of("/v3/cluster/member/add") < etcd.log.size());
  CHECK_FALSE(etcd.has("https://10.0.0.9:2380"));
  CHECK(etcd.has(kSelfPeer));
}

TEST_CASE("etcd join: a failed join rolls back and removes the learner it added", "[etcd]") {
  TempDir tmp;
  std::string root = make_root(tmp), b = tmp / "b.kbundle";
  etcd_bundle(b, 1, membership("existing").dump());
  FakeEtcd etcd = FakeEtcd::three();
  std::vector<std::string> calls;
  Applied a{};
  SECTION("promote never succeeds (bounded back-off)") {
    etcd.promote_refusals = 1000;
    a = apply_with(root, trust_file(tmp), etcd.hooks(&calls), b);
    CHECK(a.err.find("promoting learner cp-3") != std::string::npos);
    CHECK(a.err.find("in sync with leader") != std::string::npos);
    // Back-off doubles up to 5 s and stops at the 120 s deadline.
    CHECK(etcd.sleeps.back() == std::chrono::milliseconds(5000));
    CHECK(etcd.now - std::chrono::steady_clock::time_point{} <= std::chrono::seconds(120));
  }
  SECTION("the health gate fails after the promote") {
    a = apply_with(root, trust_file(tmp), etcd.hooks(&calls, false), b);
    CHECK(a.err.find("health check") != std::string::npos);
  }
  INFO(a.out << a.err);
  CHECK(a.code == ExitCode::HealthRolledBack);
  CHECK(etcd.members.size() == 3);
  CHECK_FALSE(etcd.has(kSelfPeer));
  CHECK(a.out.find("removed the member this apply added") != std::string::npos);
  // Nothing installed stays: not the membership file, and the data directory is gone.
  CHECK_FALSE(std::filesystem::exists(root + kEtcdMembershipFile));
  CHECK_FALSE(std::filesystem::exists(root + "/var/lib/etcd"));
}

TEST_CASE("etcd join: a learner found already there (an earlier apply cut short) is not removed when the promote fails", "[etcd]") {
  TempDir tmp;
  std::string root = make_root(tmp), b = tmp / "b.kbundle";
  etcd_bundle(b, 1, membership("existing").dump());
  FakeEtcd etcd = FakeEtcd::three();
  etcd.members.push_back({"104", "", kSelfPeer, "", true});
  etcd.promote_refusals = 1000;
  std::vector<std::string> calls;
  // etcd wrote its data meanwhile: the rollback must still remove the directory it created.
  auto hooks = etcd.hooks(&calls);
  auto base = hooks.sleep;
  hooks.sleep = [&](std::chrono::milliseconds d) {
    make_dirs(root + "/var/lib/etcd/member/wal", 0700);
    base(d);
  };
  Applied a = apply_with(root, trust_file(tmp), hooks, b);
  INFO(a.out << a.err);
  CHECK(a.code == ExitCode::HealthRolledBack);
  CHECK(etcd.has(kSelfPeer));  // not ours to remove
  CHECK(etcd.count("/v3/cluster/member/remove") == 0);
  CHECK_FALSE(std::filesystem::exists(root + "/var/lib/etcd"));
  CHECK(std::find(calls.begin(), calls.end(), "stop etcd.service") != calls.end());
}

TEST_CASE("etcd join: refused before any add when the cluster is not what --initial-cluster expects", "[etcd]") {
  TempDir tmp;
  std::string root = make_root(tmp), b = tmp / "b.kbundle";
  etcd_bundle(b, 1, membership("existing").dump());
  FakeEtcd etcd = FakeEtcd::three();
  SECTION("an extra member (a removal not applied yet)") { etcd.members.push_back(FakeEtcd::voter("105", "cp-9", "10.0.0.9")); }
  SECTION("a missing member") { etcd.members.pop_back(); }
  SECTION("too many learners (etcd refuses the add)") { etcd.add_fails = true; }
  SECTION("a stale bundle: etcd's membership epoch is newer") { etcd.epoch = 3; }
  SECTION("no member answers") {
    for (const auto& m : etcd.members) etcd.down.insert(m.client);
  }
  auto before = etcd.members.size();
  std::vector<std::string> calls;
  Applied a = apply_with(root, trust_file(tmp), etcd.hooks(&calls), b);
  INFO(a.out << a.err);
  CHECK(a.code == ExitCode::HealthRolledBack);
  CHECK(a.err.find("etcd join of cp-3") != std::string::npos);
  CHECK(a.err.find("nothing was added") != std::string::npos);
  CHECK(etcd.members.size() == before);
  CHECK(std::find(calls.begin(), calls.end(), "restart etcd.service") == calls.end());
}

TEST_CASE("etcd removal after commit: one at a time, quorum kept, idempotent, stale bundles skipped", "[etcd]") {
  TempDir tmp;
  std::string root = make_root(tmp), b = tmp / "b.kbundle";
  FakeEtcd etcd = FakeEtcd::three();
  etcd.members.push_back(FakeEtcd::voter("104", "cp-3", "10.0.0.4"));
  etcd.members.push_back(FakeEtcd::voter("105", "cp-4", "10.0.0.5"));
  // cp-3 (an existing member, state new) removes cp-4.
  etcd_bundle(b, 1, membership("new", {{"cp-4", "https://10.0.0.5:2380"}}, 3).dump());
  std::vector<std::string> calls;
  SECTION("removed, epoch recorded; applying again is a no-op") {
    Applied a = apply_with(root, trust_file(tmp), etcd.hooks(&calls), b);
    INFO(a.out << a.err);
    REQUIRE(a.code == ExitCode::Ok);
    CHECK_FALSE(etcd.has("https://10.0.0.5:2380"));
    CHECK(etcd.epoch == 3);
    // Its own etcd is asked first.
    REQUIRE_FALSE(etcd.log.empty());
    CHECK(etcd.log[0].rfind("https://10.0.0.4:2379", 0) == 0);
    Applied again = apply_with(root, trust_file(tmp), etcd.hooks(&calls), b);
    REQUIRE(again.code == ExitCode::Ok);
    CHECK(again.out.find("already removed") != std::string::npos);
  }
  SECTION("a stale bundle (etcd's epoch is newer) removes nothing") {
    etcd.epoch = 4;
    Applied a = apply_with(root, trust_file(tmp), etcd.hooks(&calls), b);
    REQUIRE(a.code == ExitCode::Ok);
    CHECK(etcd.has("https://10.0.0.5:2380"));
    CHECK(a.out.find("stale") != std::string::npos);
  }
  SECTION("below quorum: refused, exit 7, nothing rolled back; a later apply retries") {
    etcd.members[0].name = etcd.members[1].name = "";  // two members never started
    Applied a = apply_with(root, trust_file(tmp), etcd.hooks(&calls), b);
    INFO(a.out << a.err);
    CHECK(a.code == ExitCode::EtcdRemoveFailed);
    CHECK(a.err.find("below the quorum of 3") != std::string::npos);
    CHECK(etcd.has("https://10.0.0.5:2380"));
    CHECK(std::filesystem::exists(root + kEtcdMembershipFile));  // committed
    etcd.members[0].name = "cp-0";
    etcd.members[1].name = "cp-1";
    Applied again = apply_with(root, trust_file(tmp), etcd.hooks(&calls), b);
    CHECK(again.code == ExitCode::Ok);
    CHECK_FALSE(etcd.has("https://10.0.0.5:2380"));
  }
  SECTION("no member answers: exit 7") {
    for (const auto& m : etcd.members) etcd.down.insert(m.client);
    Applied a = apply_with(root, trust_file(tmp), etcd.hooks(&calls), b);
    CHECK(a.code == ExitCode::EtcdRemoveFailed);
    CHECK(a.err.find("onnection refused") != std::string::npos);
  }
}

TEST_CASE("etcd membership.json: hostile or malformed files are refused before anything is written", "[etcd]") {
  std::vector<std::pair<std::string, std::function<void(json&)>>> cases = {
      {"another node's name", [](json& j) { j["name"] = "cp-0"; }},
      {"a peer URL that is not https://IPv4:2380", [](json& j) { j["peer_url"] = "http://10.0.0.4:2380"; }},
      {"a host name", [](json& j) { j["peer_url"] = "https://evil.example:2380"; }},
      {"another port", [](json& j) { j["members"][0]["client_url"] = "https://10.0.0.1:443"; }},
      {"a path in a client URL", [](json& j) { j["members"][0]["client_url"] = "https://10.0.0.1:2379/x"; }},
      {"an unknown field", [](json& j) { j["extra"] = 1; }},
      {"an unknown member field", [](json& j) { j["members"][0]["cert"] = "/etc/shadow"; }},
      {"version 2", [](json& j) { j["version"] = 2; }},
      {"epoch 0", [](json& j) { j["epoch"] = 0; }},
      {"a negative epoch", [](json& j) { j["epoch"] = -1; }},
      {"state maybe", [](json& j) { j["initial_cluster_state"] = "maybe"; }},
      {"initial_cluster without this node", [](json& j) { j["initial_cluster"] = "cp-0=https://10.0.0.1:2380"; }},
      {"initial_cluster garbage", [](json& j) { j["initial_cluster"] = "cp-3=https://10.0.0.4:2380,,"; }},
      {"members without this node", [](json& j) { j["members"].erase(3); }},
      {"removing itself", [](json& j) { j["remove"] = {{{"name", "cp-3"}, {"peer_url", kSelfPeer}}}; }},
      {"removing a member it keeps", [](json& j) { j["remove"] = {{{"name", "x"}, {"peer_url", "https://10.0.0.1:2380"}}}; }},
      {"a name with a slash", [](json& j) { j["members"][0]["name"] = "../cp"; }},
      {"not an object", [](json& j) { j = json::array(); }},
  };
  for (auto& [what, edit] : cases) {
    INFO(what);
    TempDir tmp;
    std::string root = make_root(tmp), b = tmp / "b.kbundle";
    json j = membership("existing");
    edit(j);
    etcd_bundle(b, 1, j.dump());
    auto before = snapshot(root);
    FakeEtcd etcd = FakeEtcd::three();
    std::vector<std::string> calls;
    Applied a = apply_with(root, trust_file(tmp), etcd.hooks(&calls), b);
    CHECK(a.code == ExitCode::BadBundle);
    CHECK(a.err.find(std::string(kEtcdMembershipFile) + ": ") != std::string::npos);
    CHECK(a.err.find("refused, nothing was changed") != std::string::npos);
    CHECK(etcd.log.empty());
    CHECK(snapshot(root) == before);
  }
  SECTION("not JSON") {
    TempDir tmp;
    std::string root = make_root(tmp), b = tmp / "b.kbundle";
    etcd_bundle(b, 1, "{\"version\": 1,");
    FakeEtcd etcd;
    std::vector<std::string> calls;
    CHECK(apply_with(root, trust_file(tmp), etcd.hooks(&calls), b).code == ExitCode::BadBundle);
  }
}

TEST_CASE("etcd membership.json restarts nothing: a member coming or going must not restart every etcd", "[etcd]") {
  CHECK(units_to_restart({"etcd.service", "kube-apiserver.service"}, {kEtcdMembershipFile}).empty());
  // Anything else under /etc/etcd still restarts etcd.
  CHECK(units_to_restart({"etcd.service"}, {kEtcdPeerCertFile}) == std::vector<std::string>{"etcd.service"});
}
