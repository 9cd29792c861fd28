// Phase 3 of an encryption-key rotation on the node (installer/reencrypt.h, docs/rotation.md): every
// Secret listed and PUT back once, a conflict re-read and retried, a Secret deleted meanwhile
// skipped, pages followed, the API down -> exit 8 without rollback, done once per request file,
// hostile request files refused at staging. Through the HTTP and clock seams: no socket, no waiting.
#include <catch2/catch.hpp>

#include <deque>
#include <filesystem>
#include <map>

#include "base/atomic_file.h"
#include "bundles/path_policy.h"
#include "bundles/unit_restart.h"
#include "installer/reencrypt.h"
#include "installer/installer_test_util.h"

using namespace kb;
using namespace kb::installer;
using namespace kb::installer::test;
using kb::test::meta;

namespace {

nlohmann::json good_request() {
  return {{"version", 1},
          {"api_server", "https://127.0.0.1:6443"},
          {"ca_file", "/var/lib/kubernetes/ca.crt"},
          {"cert_file", "/var/lib/kubernetes/bootstrap/kbundle-bootstrap.crt"},
          {"key_file", "/var/lib/kubernetes/bootstrap/kbundle-bootstrap.key"},
          {"write_key", "secretbox:key2"},
          {"rotation_started", "2026-12-03T10:00:00Z"}};
}

void reencrypt_bundle(const std::string& path, uint64_t serial, const std::string& request) {
  BundleExtras x;
  x.entries = [&](BundleWriter& w) {
    w.add_file(meta("/var/lib/kubernetes/ca.crt", 0644, EntryClass::Config), kb::test::pem_like("CERTIFICATE", 7));
    w.add_file(meta(kReencryptRequestFile, 0600, EntryClass::Config), request);
    w.add_file(meta("/var/lib/kubernetes/bootstrap/kbundle-bootstrap.crt", 0644, EntryClass::Config), kb::test::pem_like("CERTIFICATE", 9));
    w.add_file(meta("/var/lib/kubernetes/bootstrap/kbundle-bootstrap.key", 0600, EntryClass::Secret), "-----BEGIN PRIVATE KEY-----\nK\n-----END PRIVATE KEY-----\n");
  };
  write_bundle(path, serial, "a", "cp-1", false, kb::test::test_key(), x);
}

HttpResult json_answer(int status, const nlohmann::json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}
HttpResult status_answer(int code, const std::string& message) {
  return json_answer(code, {{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"}, {"message", message}, {"code", code}});
}
HttpResult refused() { return HttpFailure{HttpFailure::Step::Connect, false, ECONNREFUSED, "Connection refused", 0}; }

// An API server holding Secrets, as the real one answers: list pages with a continue token, PUT
// with a resourceVersion that must match (else 409), 404 for a missing Secret. `before` may
// answer instead (faults) or change the store (a concurrent writer).
struct SecretApi {
  std::map<std::string, nlohmann::json> store;  // "ns/name" -> object
  int rv = 100;
  std::vector<HttpRequest> requests;
  std::function<std::optional<HttpResult>(const HttpRequest&, size_t)> before;
  std::chrono::steady_clock::time_point now{};

  void add(const std::string& ns, const std::string& name) {
    store[ns + "/" + name] = {{"metadata", {{"namespace", ns}, {"name", name}, {"resourceVersion", std::to_string(++rv)}}},
                              {"type", "Opaque"}, {"data", {{"k", "dmFsdWU="}}}};
  }

  HttpResult serve(const HttpRequest& q) {
    if (q.method == "GET" && q.target.rfind("/api/v1/secrets?limit=", 0) == 0) {
      size_t limit = std::stoul(q.target.substr(22));
      std::string after;
      if (auto c = q.target.find("&continue="); c != std::string::npos) {
        for (size_t i = c + 10; i < q.target.size(); ++i) {
          if (q.target[i] == '%') {
            after += static_cast<char>(std::stoi(q.target.substr(i + 1, 2), nullptr, 16));
            i += 2;
          } else {
            after += q.target[i];
          }
        }
      }
      nlohmann::json list = {{"kind", "SecretList"}, {"apiVersion", "v1"}, {"metadata", nlohmann::json::object()}, {"items", nlohmann::json::array()}};
      for (auto it = after.empty() ? store.begin() : store.upper_bound(after); it != store.end(); ++it) {
        if (list["items"].size() == limit) {
          list["metadata"]["continue"] = std::prev(it)->first;
          break;
        }
        list["items"].push_back(it->second);
      }
      return json_answer(200, list);
    }
    const std::string prefix = "/api/v1/namespaces/";
    if (q.target.rfind(prefix, 0) != 0) return status_answer(404, "no such path");
    std::string rest = q.target.substr(prefix.size());
    std::string ns = rest.substr(0, rest.find('/')), name = rest.substr(rest.rfind('/') + 1);
    auto it = store.find(ns + "/" + name);
    if (it == store.end()) return status_answer(404, "secrets \"" + name + "\" not found");
    if (q.method == "GET") return json_answer(200, it->second);
    if (q.method != "PUT") return status_answer(405, "no");
    nlohmann::json body = nlohmann::json::parse(q.body);
    if (body["kind"] != "Secret" || body["apiVersion"] != "v1") return status_answer(400, "kind/apiVersion");
    if (body["metadata"]["resourceVersion"] != it->second["metadata"]["resourceVersion"])
      return status_answer(409, "Operation cannot be fulfilled on secrets \"" + name + "\": the object has been modified");
    if (body["data"] != it->second["data"]) return status_answer(400, "the test expects the Secret back unchanged");
    body["metadata"]["resourceVersion"] = std::to_string(++rv);
    body.erase("kind");
    body.erase("apiVersion");
    it->second = body;
    return json_answer(200, body);
  }

  Hooks hooks() {
    Hooks h;
    h.make_services = [](bool) { return make_null_manager(nullptr); };
    h.health = [](const nlohmann::json&, const std::string&, ServiceManager&) { return HealthResult{true, "ok"}; };
    h.now = [] { return int64_t{1796000000}; };
    h.monotonic = [this] { return now; };
    h.sleep = [this](std::chrono::milliseconds d) { now += d; };
    h.api_client = [this](const ApiEndpoint&) -> ApiSend {
      return [this](const HttpRequest& q, const HttpLimits&) {
        requests.push_back(q);
        if (before)
          if (auto r = before(q, requests.size() - 1)) return *r;
        return serve(q);
      };
    };
    return h;
  }

  size_t puts_of(const std::string& target) const {
    return std::count_if(requests.begin(), requests.end(), [&](const HttpRequest& q) { return q.method == "PUT" && q.target == target; });
  }
};

struct Out {
  ExitCode code;
  std::string out, err;
};
Out do_apply(const Options& opt, const Hooks& hooks, const std::string& bundle) {
  std::ostringstream out, err;
  ExitCode code = apply(opt, hooks, Io{out, err}, bundle);
  return {code, out.str(), err.str()};
}
Options healthy(const std::string& root, const std::string& trust) {
  Options o = options(root, trust);
  o.no_systemd = false;
  o.bootstrap_deadline = 5;
  return o;
}
nlohmann::json record(const std::string& root) { return nlohmann::json::parse(read_file(root + "/var/lib/kbundle/reencrypt.json")); }

}  // namespace

TEST_CASE("re-encrypt: every Secret in every namespace is PUT back once, unchanged, across pages", "[reencrypt]") {
  TempDir tmp;
  std::string root = make_root(tmp), bundle = tmp / "b.kbundle";
  reencrypt_bundle(bundle, 1, good_request().dump());
  SecretApi api;
  for (int i = 0; i < 250; ++i) api.add(i % 3 == 0 ? "kube-system" : "ns-" + std::to_string(i % 7), "s-" + std::to_string(i));
  Out a = do_apply(healthy(root, trust_file(tmp)), api.hooks(), bundle);
  INFO(a.out << a.err);
  REQUIRE(a.code == ExitCode::Ok);
  size_t lists = 0;
  for (const auto& q : api.requests) lists += q.method == "GET" && q.target.rfind("/api/v1/secrets?", 0) == 0;
  CHECK(lists == 3);  // 100 + 100 + 50
  for (const auto& [key, obj] : api.store) {
    INFO(key);
    CHECK(api.puts_of("/api/v1/namespaces/" + key.substr(0, key.find('/')) + "/secrets/" + key.substr(key.find('/') + 1)) == 1);
  }
  nlohmann::json rec = record(root);
  CHECK(rec["status"] == "done");
  CHECK(rec["secrets"] == 250);
  CHECK(rec["rewritten"] == 250);
  CHECK(rec["write_key"] == "secretbox:key2");
  CHECK(mode_of(root + "/var/lib/kbundle/reencrypt.json") == 0600);
  CHECK_THAT(a.out, Catch::Contains("re-encrypt: rewrote 250 Secrets with secretbox:key2"));

  // The same bundle again: nothing sent.
  size_t n = api.requests.size();
  Out again = do_apply(healthy(root, ""), api.hooks(), bundle);
  CHECK(again.code == ExitCode::Ok);
  CHECK(api.requests.size() == n);
  CHECK_THAT(again.out, Catch::Contains("already rewritten"));
}

TEST_CASE("re-encrypt: a conflict re-reads the Secret and puts it again; one deleted meanwhile is skipped", "[reencrypt]") {
  TempDir tmp;
  std::string root = make_root(tmp), bundle = tmp / "b.kbundle";
  reencrypt_bundle(bundle, 1, good_request().dump());
  SecretApi api;
  api.add("default", "a");
  api.add("default", "b");
  api.add("default", "c");
  bool changed = false, deleted = false;
  // A concurrent writer changes "a" after the list; "c" is deleted after the list.
  api.before = [&](const HttpRequest& q, size_t) -> std::optional<HttpResult> {
    if (q.method == "PUT" && q.target.ends_with("/a") && !changed) {
      changed = true;
      api.store["default/a"]["metadata"]["resourceVersion"] = std::to_string(++api.rv);
    }
    if (q.method == "PUT" && q.target.ends_with("/c") && !deleted) {
      deleted = true;
      api.store.erase("default/c");
    }
    return std::nullopt;
  };
  Out a = do_apply(healthy(root, trust_file(tmp)), api.hooks(), bundle);
  INFO(a.out << a.err);
  REQUIRE(a.code == ExitCode::Ok);
  CHECK(api.puts_of("/api/v1/namespaces/default/secrets/a") == 2);  // 409, then the re-read one
  CHECK(api.puts_of("/api/v1/namespaces/default/secrets/b") == 1);
  CHECK(api.puts_of("/api/v1/namespaces/default/secrets/c") == 1);  // 404: gone
  nlohmann::json rec = record(root);
  CHECK(rec["rewritten"] == 2);
  CHECK(rec["gone"] == 1);
  CHECK(rec["conflicts"] == 1);
}

TEST_CASE("re-encrypt: 500 and 429 are retried; the API down is exit 8, nothing rolled back, the next apply retries",
          "[reencrypt]") {
  TempDir tmp;
  std::string root = make_root(tmp), bundle = tmp / "b.kbundle";
  reencrypt_bundle(bundle, 1, good_request().dump());
  SecretApi api;
  api.add("default", "a");
  bool down = true;
  api.before = [&](const HttpRequest& q, size_t) -> std::optional<HttpResult> {
    if (q.target.rfind("/healthz", 0) == 0) return std::nullopt;
    if (down) return refused();
    return std::nullopt;
  };
  Out a = do_apply(healthy(root, trust_file(tmp)), api.hooks(), bundle);
  INFO(a.out << a.err);
  CHECK(a.code == ExitCode::ReencryptFailed);
  CHECK(static_cast<int>(a.code) == 8);
  CHECK_THAT(a.err, Catch::Contains("did not answer within 5 s (last: connection refused)"));
  CHECK_THAT(a.err, Catch::Contains("nothing was rolled back"));
  CHECK_THAT(a.err, Catch::Contains("do not remove the old key"));
  CHECK(record(root)["status"] == "failed");
  CHECK(std::filesystem::exists(root + "/var/lib/kbundle/current/manifest.json"));  // committed, not rolled back
  {
    std::ostringstream out, err;
    CHECK(status(healthy(root, ""), api.hooks(), Io{out, err}) == ExitCode::Ok);
    CHECK_THAT(out.str(), Catch::Contains("re-encrypt of every Secret (encryption-key rotation): failed") &&
                              Catch::Contains("apply the same bundle again"));
  }

  // Up again, with a 500 and a 429 on the way: the same bundle finishes it.
  down = false;
  int faults = 0;
  api.before = [&](const HttpRequest& q, size_t) -> std::optional<HttpResult> {
    if (q.method == "PUT" && faults < 2) return ++faults == 1 ? status_answer(500, "etcd") : status_answer(429, "slow down");
    return std::nullopt;
  };
  Out b = do_apply(healthy(root, ""), api.hooks(), bundle);
  INFO(b.out << b.err);
  CHECK(b.code == ExitCode::Ok);
  CHECK(api.puts_of("/api/v1/namespaces/default/secrets/a") == 3);
  CHECK(record(root)["status"] == "done");
  std::ostringstream out, err;
  CHECK(status(healthy(root, ""), api.hooks(), Io{out, err}) == ExitCode::Ok);
  CHECK_THAT(out.str(), Catch::Contains("re-encrypt of every Secret (encryption-key rotation): done, 1 rewritten at"));
}

TEST_CASE("re-encrypt: a Secret that keeps changing gives up after 5 conflicts; a 403 is final", "[reencrypt]") {
  TempDir tmp;
  std::string root = make_root(tmp), bundle = tmp / "b.kbundle";
  reencrypt_bundle(bundle, 1, good_request().dump());
  SecretApi api;
  api.add("default", "hot");
  api.before = [&](const HttpRequest& q, size_t) -> std::optional<HttpResult> {
    if (q.method == "PUT") api.store["default/hot"]["metadata"]["resourceVersion"] = std::to_string(++api.rv);
    return std::nullopt;
  };
  Out a = do_apply(healthy(root, trust_file(tmp)), api.hooks(), bundle);
  CHECK(a.code == ExitCode::ReencryptFailed);
  CHECK_THAT(a.err, Catch::Contains("5 conflicts in a row"));

  TempDir tmp2;
  std::string root2 = make_root(tmp2);
  SecretApi api2;
  api2.add("default", "a");
  api2.before = [&](const HttpRequest& q, size_t) -> std::optional<HttpResult> {
    if (q.method == "GET" && q.target.rfind("/api/v1/secrets", 0) == 0) return status_answer(403, "secrets is forbidden");
    return std::nullopt;
  };
  Out b = do_apply(healthy(root2, trust_file(tmp2)), api2.hooks(), bundle);
  CHECK(b.code == ExitCode::ReencryptFailed);
  CHECK_THAT(b.err, Catch::Contains("HTTP 403: secrets is forbidden"));
  CHECK(api2.requests.size() == 1 + 0);  // not retried
}

TEST_CASE("re-encrypt: hostile list answers never reach a path", "[reencrypt]") {
  for (const std::string& name : {std::string("../../etc"), std::string("a/b"), std::string("a?x=1"), std::string("A b"), std::string("")}) {
    INFO(name);
    TempDir tmp;
    std::string root = make_root(tmp), bundle = tmp / "b.kbundle";
    reencrypt_bundle(bundle, 1, good_request().dump());
    SecretApi api;
    api.add("default", "x");
    api.store["default/x"]["metadata"]["name"] = name;
    Out a = do_apply(healthy(root, trust_file(tmp)), api.hooks(), bundle);
    CHECK(a.code == ExitCode::ReencryptFailed);
    CHECK(api.puts_of("/api/v1/namespaces/default/secrets/" + name) == 0);
    for (const auto& q : api.requests) CHECK(q.method != "PUT");
  }
}

TEST_CASE("re-encrypt: a list that does not advance fails instead of looping", "[reencrypt]") {
  TempDir tmp;
  std::string root = make_root(tmp), bundle = tmp / "b.kbundle";
  reencrypt_bundle(bundle, 1, good_request().dump());
  SecretApi api;
  api.add("default", "a");
  int lists = 0;
  api.before = [&](const HttpRequest& q, size_t) -> std::optional<HttpResult> {
    if (q.method != "GET" || q.target.rfind("/api/v1/secrets?", 0) != 0) return std::nullopt;
    ++lists;
    return json_answer(200, {{"kind", "SecretList"}, {"metadata", {{"continue", "same"}}}, {"items", nlohmann::json::array()}});
  };
  Out a = do_apply(healthy(root, trust_file(tmp)), api.hooks(), bundle);
  CHECK(a.code == ExitCode::ReencryptFailed);
  CHECK_THAT(a.err, Catch::Contains("the list does not advance"));
  CHECK(lists == 1);
}

TEST_CASE("re-encrypt: a hostile request file is refused at staging, nothing changed, nothing sent", "[reencrypt]") {
  struct Case {
    const char* name;
    std::function<std::string()> bytes;
    const char* want;
  };
  auto with = [](const char* key, nlohmann::json v) {
    return [key, v] {
      nlohmann::json j = good_request();
      j[key] = v;
      return j.dump();
    };
  };
  std::vector<Case> cases = {
      {"not JSON", [] { return std::string("{\"version\": 1,"); }, "not valid JSON"},
      {"not an object", [] { return std::string("[1]"); }, "not a JSON object"},
      {"version 2", with("version", 2), "must be 1"},
      {"another server", with("api_server", "https://10.0.0.5:6443"), "is not this node"},
      {"plain http", with("api_server", "http://127.0.0.1:6443"), "is not https://"},
      {"a key the bundle does not carry", with("key_file", "/etc/shadow"), "is not a file this bundle installs"},
      {"path traversal", with("ca_file", "/var/lib/kubernetes/../../etc/passwd"), "clean absolute path"},
      {"write_key injection", with("write_key", "aescbc:key1\r\nX: y"), "write_key"},
      {"write_key not a string", with("write_key", 7), "write_key"},
      {"unknown field", with("proxy", "http://x"), "unknown field"},
      {"huge", [] { return std::string(kMaxReencryptFile + 1, ' '); }, "larger than"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    TempDir tmp;
    std::string root = make_root(tmp), bundle = tmp / "b.kbundle";
    reencrypt_bundle(bundle, 1, c.bytes());
    SecretApi api;
    auto before = snapshot(root);
    Out a = do_apply(healthy(root, trust_file(tmp)), api.hooks(), bundle);
    CHECK(a.code == ExitCode::BadBundle);
    CHECK_THAT(a.err, Catch::Contains(c.want));
    CHECK_THAT(a.err, Catch::Contains("reencrypt-secrets.json"));
    CHECK(api.requests.empty());
    CHECK(snapshot(root) == before);
    // verify refuses it the same way.
    std::ostringstream out, err;
    CHECK(verify(healthy(root, trust_file(tmp)), api.hooks(), Io{out, err}, bundle) == ExitCode::BadBundle);
    CHECK_THAT(err.str(), Catch::Contains(c.want) && Catch::Contains("reencrypt-secrets.json"));
  }
}

TEST_CASE("re-encrypt: the request alone restarts nothing (only the installer reads it)", "[reencrypt]") {
  const std::vector<std::string> cp = {"etcd.service", "kube-apiserver.service", "kube-controller-manager.service", "kube-scheduler.service"};
  CHECK(units_to_restart(cp, {kReencryptRequestFile}).empty());
  CHECK(units_to_restart(cp, {kReencryptRequestFile, "/var/lib/kubernetes/encryption-config.yaml"}) ==
        std::vector<std::string>{"kube-apiserver.service", "kube-controller-manager.service", "kube-scheduler.service"});
}
