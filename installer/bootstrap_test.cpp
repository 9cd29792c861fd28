// The bootstrap objects (installer/bootstrap.h, docs/bootstrap.md): request building, what is
// retried, the record and apply-once, exit 6 without rollback, hostile objects.json, all through
// the HTTP and clock seams (Hooks::api_client, monotonic, sleep): no socket, no waiting.
#include <catch2/catch.hpp>

#include <deque>

#include "base/atomic_file.h"
#include "installer/bootstrap.h"
#include "installer/installer_test_util.h"

using namespace kb;
using namespace kb::installer;
using namespace kb::installer::test;
using kb::test::meta;

namespace {

const std::string kKeyPem = "-----BEGIN PRIVATE KEY-----\nS3CR3T-BOOTSTRAP-KEY-MATERIAL\n-----END PRIVATE KEY-----\n";

nlohmann::json object(const std::string& api_version, const std::string& kind, const std::string& name, const std::string& ns = "") {
  nlohmann::json o = {{"apiVersion", api_version}, {"kind", kind},
                      {"metadata", {{"name", name}, {"labels", {{"app.kubernetes.io/managed-by", "kbundle"}}}}}};
  if (!ns.empty()) o["metadata"]["namespace"] = ns;
  return o;
}

// objects.json as contract A describes it, with three objects in apply order.
nlohmann::json good_objects() {
  return {{"version", 1},
          {"api_server", "https://127.0.0.1:6443"},
          {"ca_file", "/var/lib/kubernetes/ca.crt"},
          {"cert_file", "/var/lib/kubernetes/bootstrap/kbundle-bootstrap.crt"},
          {"key_file", "/var/lib/kubernetes/bootstrap/kbundle-bootstrap.key"},
          {"field_manager", "kbundle"},
          {"objects",
           {{{"api_path", "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:kube-apiserver-to-kubelet"},
             {"object", object("rbac.authorization.k8s.io/v1", "ClusterRole", "system:kube-apiserver-to-kubelet")}},
            {{"api_path", "/api/v1/namespaces/kube-system/serviceaccounts/coredns"},
             {"object", object("v1", "ServiceAccount", "coredns", "kube-system")}},
            {{"api_path", "/apis/apps/v1/namespaces/kube-system/deployments/coredns"},
             {"object", object("apps/v1", "Deployment", "coredns", "kube-system")}}}}};
}

// A control-plane bundle that carries `objects` (raw bytes) and the identity files.
void bootstrap_bundle(const std::string& path, uint64_t serial, const std::string& objects, unsigned key_mode = 0600) {
  BundleExtras x;
  x.entries = [&](BundleWriter& w) {
    w.add_file(meta("/var/lib/kubernetes/ca.crt", 0644, EntryClass::Config), kb::test::pem_like("CERTIFICATE", 7));
    w.add_file(meta(kBootstrapObjects, 0600, EntryClass::Secret), objects);
    w.add_file(meta("/var/lib/kubernetes/bootstrap/kbundle-bootstrap.crt", 0644, EntryClass::Config), kb::test::pem_like("CERTIFICATE", 9));
    w.add_file(meta("/var/lib/kubernetes/bootstrap/kbundle-bootstrap.key", key_mode, EntryClass::Secret), kKeyPem);
  };
  write_bundle(path, serial, "a", "cp-1", false, kb::test::test_key(), x);
}

HttpResult answer(int status, const std::string& body = "{}", std::vector<std::pair<std::string, std::string>> headers = {}) {
  HttpResponse r;
  r.status = status;
  r.reason = status == 201 ? "Created" : status == 200 ? "OK" : "";
  r.body = body;
  r.headers = std::move(headers);
  return r;
}
HttpResult status_answer(int code, const std::string& reason, const std::string& message) {
  return answer(code, nlohmann::json{{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"}, {"message", message},
                                     {"reason", reason}, {"code", code}}.dump());
}
HttpResult timeout() { return HttpFailure{HttpFailure::Step::Receive, true, EAGAIN, "Resource temporarily unavailable", 0}; }
HttpResult refused() { return HttpFailure{HttpFailure::Step::Connect, false, ECONNREFUSED, "Connection refused", 0}; }

// The API as the tests script it: each request is recorded with the limits it got; answers come
// from `script` in order, then `otherwise`. The clock moves only when the installer sleeps or a
// request "takes" its step timeout.
struct FakeApi {
  std::vector<HttpRequest> requests;
  std::vector<std::string> wire;  // format_http_request of each
  std::deque<HttpResult> script;
  std::function<HttpResult(const HttpRequest&)> otherwise = [](const HttpRequest&) { return answer(201); };
  std::vector<ApiEndpoint> endpoints;
  std::vector<std::chrono::milliseconds> sleeps;
  std::chrono::steady_clock::time_point now{};
  std::function<void(size_t)> on_request;  // called with the request's index before answering

  Hooks hooks(std::vector<std::string>* calls = nullptr) {
    Hooks h;
    h.make_services = [calls](bool) { return make_null_manager(calls); };
    h.health = [](const nlohmann::json&, const std::string&, ServiceManager&) { return HealthResult{true, "ok"}; };
    h.now = [] { return int64_t{1796000000}; };
    h.monotonic = [this] { return now; };
    h.sleep = [this](std::chrono::milliseconds d) {
      sleeps.push_back(d);
      now += d;
    };
    h.api_client = [this](const ApiEndpoint& ep) -> ApiSend {
      endpoints.push_back(ep);
      return [this](const HttpRequest& q, const HttpLimits& limits) {
        requests.push_back(q);
        wire.push_back(format_http_request(q));
        if (on_request) on_request(requests.size() - 1);
        HttpResult r = otherwise(q);
        if (!script.empty()) {
          r = script.front();
          script.pop_front();
        }
        if (auto* f = std::get_if<HttpFailure>(&r); f && f->timed_out) now += *limits.step_timeout;
        return r;
      };
    };
    return h;
  }
};

struct Out {
  ExitCode code;
  std::string out, err;
};

Out call(const std::function<ExitCode(const Options&, const Hooks&, Io)>& cmd, const Options& opt, const Hooks& hooks) {
  std::ostringstream out, err;
  ExitCode code = cmd(opt, hooks, Io{out, err});
  return {code, out.str(), err.str()};
}

Out do_apply(const Options& opt, const Hooks& hooks, const std::string& bundle) {
  return call([&](const Options& o, const Hooks& h, Io io) { return apply(o, h, io, bundle); }, opt, hooks);
}
Out do_bootstrap(const Options& opt, const Hooks& hooks) { return call(bootstrap, opt, hooks); }
Out do_status(const Options& opt, const Hooks& hooks) { return call(status, opt, hooks); }

// A node with systemd (null manager) whose health checks pass.
Options healthy(const std::string& root, const std::string& trust) {
  Options o = options(root, trust);
  o.no_systemd = false;
  return o;
}

nlohmann::json record(const std::string& root) { return nlohmann::json::parse(read_file(root + "/var/lib/kbundle/bootstrap.json")); }

}  // namespace

// The manifest entries parse_bootstrap_objects checks the three file fields against.
Manifest manifest_with_files(unsigned key_mode = 0600) {
  Manifest m = header(1);
  for (auto [path, mode] : {std::pair<std::string, unsigned>{"/var/lib/kubernetes/ca.crt", 0644},
                            {"/var/lib/kubernetes/bootstrap/kbundle-bootstrap.crt", 0644},
                            {"/var/lib/kubernetes/bootstrap/kbundle-bootstrap.key", key_mode}}) {
    ManifestEntry e = meta(path, mode, EntryClass::Config);
    e.sha256 = std::string(64, '0');
    m.entries.push_back(e);
  }
  return m;
}

TEST_CASE("bootstrap_request: PATCH of the object's own path with fieldManager and force, apply-patch+yaml, the object as JSON",
          "[bootstrap]") {
  BootstrapSpec spec = parse_bootstrap_objects(good_objects().dump(), "objects.json", manifest_with_files());
  REQUIRE(spec.objects.size() == 3);
  CHECK(spec.url.host == "127.0.0.1");
  CHECK(spec.url.port == 6443);
  std::string wire = format_http_request(bootstrap_request(spec, spec.objects[1]));
  std::string body = spec.objects[1].object.dump();
  CHECK(wire == "PATCH /api/v1/namespaces/kube-system/serviceaccounts/coredns?fieldManager=kbundle&force=true HTTP/1.1\r\n"
                "Host: 127.0.0.1:6443\r\nUser-Agent: kbundle-installer\r\nAccept: application/json\r\n"
                "Content-Type: application/apply-patch+yaml\r\nContent-Length: " + std::to_string(body.size()) +
                "\r\nConnection: close\r\n\r\n" + body);
  CHECK(nlohmann::json::parse(body) == good_objects()["objects"][1]["object"]);
}

TEST_CASE("format_http_request refuses anything that could add a header or a request", "[bootstrap]") {
  HttpRequest q;
  q.host = "127.0.0.1";
  q.target = "/a";
  CHECK_NOTHROW(format_http_request(q));
  for (const std::string& t : {std::string("/a\r\nX-Evil: 1"), std::string("/a b"), std::string("a"), std::string("/a\nb"), std::string("/a\0b", 4)}) {
    HttpRequest bad = q;
    bad.target = t;
    CHECK_THROWS_WITH(format_http_request(bad), Catch::Contains("target"));
  }
  HttpRequest bad = q;
  bad.headers = {{"X-A", "v\r\nX-Evil: 1"}};
  CHECK_THROWS_WITH(format_http_request(bad), Catch::Contains("header"));
  bad = q;
  bad.headers = {{"X A", "v"}};
  CHECK_THROWS(format_http_request(bad));
  bad = q;
  bad.method = "PATCH /x HTTP/1.1\r\n";
  CHECK_THROWS_WITH(format_http_request(bad), Catch::Contains("method"));
  bad = q;
  bad.host = "h\r\nX: y";
  CHECK_THROWS_WITH(format_http_request(bad), Catch::Contains("Host"));
}

TEST_CASE("classify_bootstrap_answer: what is retried and what is final", "[bootstrap]") {
  using Kind = BootstrapVerdict::Kind;
  CHECK(classify_bootstrap_answer(answer(201)).kind == Kind::Done);
  CHECK(classify_bootstrap_answer(answer(200)).kind == Kind::Done);
  for (int code : {409, 429, 500, 502, 503, 504}) {
    INFO(code);
    CHECK(classify_bootstrap_answer(status_answer(code, "X", "m")).kind == Kind::Retry);
  }
  for (int code : {400, 401, 403, 404, 405, 415, 422, 301, 204, 100}) {
    INFO(code);
    CHECK(classify_bootstrap_answer(status_answer(code, "X", "m")).kind == Kind::Final);
  }
  BootstrapVerdict v = classify_bootstrap_answer(status_answer(403, "Forbidden", "clusterroles is forbidden: User \"x\" cannot patch"));
  CHECK(v.detail == "HTTP 403: clusterroles is forbidden: User \"x\" cannot patch");
  // Not a Status: the start of the body, escaped.
  CHECK(classify_bootstrap_answer(answer(400, "plain\x1b[31m text")).detail == "HTTP 400: plain\\x1b[31m text");
  CHECK(classify_bootstrap_answer(refused()).kind == Kind::Retry);
  CHECK(classify_bootstrap_answer(timeout()).kind == Kind::Retry);
  CHECK(classify_bootstrap_answer(HttpFailure{HttpFailure::Step::Receive, false, ECONNRESET, "reset", 0}).kind == Kind::Retry);
  CHECK(classify_bootstrap_answer(HttpFailure{HttpFailure::Step::Tls, false, 0, "TLS handshake failed: reset", 0}).kind == Kind::Retry);
  BootstrapVerdict bad_cert =
      classify_bootstrap_answer(HttpFailure{HttpFailure::Step::Tls, false, 0, "certificate verify failed: self-signed certificate", 0});
  CHECK(bad_cert.kind == Kind::Final);
  CHECK_THAT(bad_cert.detail, Catch::Contains("does not verify against ca_file"));
  CHECK(classify_bootstrap_answer(answer(429, "{}", {{"retry-after", "3"}})).retry_after == std::chrono::seconds(3));
  CHECK(classify_bootstrap_answer(answer(429, "{}", {{"retry-after", "99999"}})).retry_after == std::chrono::milliseconds(0));
  CHECK(classify_bootstrap_answer(answer(503, "{}", {{"retry-after", "600"}})).retry_after == std::chrono::seconds(10));
}

TEST_CASE("a healthy apply applies the objects once, records it, and the same bundle again sends nothing", "[bootstrap]") {
  TempDir tmp;
  std::string root = make_root(tmp), bundle = tmp / "b.kbundle";
  bootstrap_bundle(bundle, 1, good_objects().dump());
  FakeApi api;
  api.script = {answer(201), answer(201), answer(200)};
  Out a = do_apply(healthy(root, trust_file(tmp)), api.hooks(), bundle);
  INFO(a.out << a.err);
  REQUIRE(a.code == ExitCode::Ok);
  REQUIRE(api.requests.size() == 3);
  CHECK(api.requests[0].target == "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:kube-apiserver-to-kubelet?fieldManager=kbundle&force=true");
  CHECK(api.requests[2].target == "/apis/apps/v1/namespaces/kube-system/deployments/coredns?fieldManager=kbundle&force=true");
  REQUIRE(api.endpoints.size() == 1);
  CHECK(api.endpoints[0].key_file == root + "/var/lib/kubernetes/bootstrap/kbundle-bootstrap.key");
  CHECK(api.endpoints[0].ca_file == root + "/var/lib/kubernetes/ca.crt");
  nlohmann::json rec = record(root);
  CHECK(rec["status"] == "applied");
  CHECK(rec["objects_sha256"] == sha256_hex(good_objects().dump()));
  CHECK(rec["objects"][0]["result"] == "created");
  CHECK(rec["objects"][2]["result"] == "configured");
  CHECK(rec["attempts"] == 3);
  CHECK(mode_of(root + "/var/lib/kbundle/bootstrap.json") == 0600);
  CHECK_THAT(a.out, Catch::Contains("bootstrap: applied 3 objects"));
  // The key is passed by path; its content is never printed or recorded.
  CHECK(a.out.find("S3CR3T") == std::string::npos);
  CHECK(read_file(root + "/var/lib/kbundle/bootstrap.json").find("S3CR3T") == std::string::npos);

  Out ver = call([&](const Options& o, const Hooks& h, Io io) { return verify(o, h, io, bundle); }, healthy(root, ""), api.hooks());
  CHECK(ver.code == ExitCode::Ok);
  Out again = do_apply(healthy(root, ""), api.hooks(), bundle);
  CHECK(again.code == ExitCode::Ok);
  CHECK(api.requests.size() == 3);
  CHECK_THAT(again.out, Catch::Contains("bootstrap objects already applied"));
  Out now = do_bootstrap(healthy(root, ""), api.hooks());
  CHECK(now.code == ExitCode::Ok);
  CHECK(api.requests.size() == 3);

  // A new serial with other objects is applied again; one with the same objects.json is not.
  std::string b2 = tmp / "b2.kbundle", b3 = tmp / "b3.kbundle";
  nlohmann::json more = good_objects();
  more["objects"].push_back({{"api_path", "/api/v1/namespaces/kube-system/services/kube-dns"},
                             {"object", object("v1", "Service", "kube-dns", "kube-system")}});
  bootstrap_bundle(b2, 2, good_objects().dump());
  CHECK(do_apply(healthy(root, ""), api.hooks(), b2).code == ExitCode::Ok);
  CHECK(api.requests.size() == 3);
  bootstrap_bundle(b3, 3, more.dump());
  CHECK(do_apply(healthy(root, ""), api.hooks(), b3).code == ExitCode::Ok);
  CHECK(api.requests.size() == 7);
  CHECK(record(root)["serial"] == 3);
}

TEST_CASE("409, 500 and a timeout are retried with growing pauses; 429's Retry-After is honoured", "[bootstrap]") {
  TempDir tmp;
  std::string root = make_root(tmp), bundle = tmp / "b.kbundle";
  bootstrap_bundle(bundle, 1, good_objects().dump());
  FakeApi api;
  api.script = {status_answer(409, "Conflict", "the object has been modified"), status_answer(500, "InternalError", "etcd"),
                timeout(), answer(201), answer(429, "{}", {{"retry-after", "2"}}), refused(), answer(201), answer(201)};
  Out a = do_apply(healthy(root, trust_file(tmp)), api.hooks(), bundle);
  INFO(a.out << a.err);
  REQUIRE(a.code == ExitCode::Ok);
  CHECK(api.requests.size() == 8);
  using ms = std::chrono::milliseconds;
  CHECK(api.sleeps == std::vector<ms>{ms(250), ms(500), ms(1000), ms(2000), ms(500)});
  CHECK_THAT(a.out, Catch::Contains("HTTP 409: the object has been modified; retrying in 0.2 s"));
  CHECK_THAT(a.out, Catch::Contains("no response (timed out); retrying"));
  CHECK(record(root)["status"] == "applied");
  CHECK(record(root)["attempts"] == 8);
}

TEST_CASE("a 403 is final: exit 6, the control plane stays committed, status says why, `bootstrap` later succeeds", "[bootstrap]") {
  TempDir tmp;
  std::string root = make_root(tmp), bundle = tmp / "b.kbundle";
  bootstrap_bundle(bundle, 1, good_objects().dump());
  FakeApi api;
  api.script = {answer(201), status_answer(403, "Forbidden", "serviceaccounts \"coredns\" is forbidden")};
  std::vector<std::string> calls;
  Out a = do_apply(healthy(root, trust_file(tmp)), api.hooks(&calls), bundle);
  INFO(a.out << a.err);
  CHECK(a.code == ExitCode::BootstrapFailed);
  CHECK(api.requests.size() == 2);
  CHECK(api.sleeps.empty());
  CHECK_THAT(a.err, Catch::Contains("kbundle-installer: warning: the bootstrap objects were not applied: ServiceAccount coredns"));
  CHECK_THAT(a.err, Catch::Contains("HTTP 403: serviceaccounts \\\"coredns\\\" is forbidden") ||
                        Catch::Contains("HTTP 403: serviceaccounts \"coredns\" is forbidden"));
  CHECK_THAT(a.err, Catch::Contains("nothing was rolled back"));
  CHECK_THAT(a.err, Catch::Contains("run `kbundle-installer bootstrap`"));
  CHECK(a.err.find("error:") == std::string::npos);
  // Committed: the manifest is current, no journal, the units were never stopped.
  CHECK(read_installed(Layout(root))->manifest.serial == 1);
  CHECK_FALSE(std::filesystem::exists(root + "/var/lib/kbundle/journal.json"));
  CHECK(std::find(calls.begin(), calls.end(), "stop kube-apiserver.service") == calls.end());
  nlohmann::json rec = record(root);
  CHECK(rec["status"] == "failed");
  CHECK(rec["objects"][0]["result"] == "created");
  CHECK(rec["objects"][1]["result"] == "failed");
  CHECK(rec["objects"][1]["http_status"] == 403);
  CHECK(rec["objects"][2]["result"] == "pending");

  Options js = healthy(root, "");
  js.json = true;
  Out st = do_status(js, api.hooks());
  nlohmann::json report = nlohmann::json::parse(st.out);
  CHECK(report["bootstrap"]["status"] == "failed");
  CHECK_THAT(report["bootstrap"]["error"].get<std::string>(), Catch::Contains("is forbidden"));
  CHECK(report["bootstrap"]["run"] == "kbundle-installer bootstrap");
  Out human = do_status(healthy(root, ""), api.hooks());
  CHECK_THAT(human.out, Catch::Contains(": failed at "));
  CHECK_THAT(human.out, Catch::Contains("run `kbundle-installer bootstrap`"));

  Out retry = do_bootstrap(healthy(root, ""), api.hooks());
  INFO(retry.out << retry.err);
  CHECK(retry.code == ExitCode::Ok);
  CHECK(api.requests.size() == 5);
  CHECK(record(root)["status"] == "applied");
  st = do_status(js, api.hooks());
  CHECK(nlohmann::json::parse(st.out)["bootstrap"]["status"] == "applied");
  CHECK(nlohmann::json::parse(st.out)["bootstrap"]["run"].is_null());
}

TEST_CASE("an API that never answers fails at the deadline, on the monotonic clock, with the last error", "[bootstrap]") {
  TempDir tmp;
  std::string root = make_root(tmp), bundle = tmp / "b.kbundle";
  bootstrap_bundle(bundle, 1, good_objects().dump());
  FakeApi api;
  api.otherwise = [](const HttpRequest&) { return refused(); };
  SECTION("refused: the default 300 s") {
    Out a = do_apply(healthy(root, trust_file(tmp)), api.hooks(), bundle);
    CHECK(a.code == ExitCode::BootstrapFailed);
    auto waited = api.now - std::chrono::steady_clock::time_point{};
    CHECK(waited <= std::chrono::seconds(300));
    CHECK(waited >= std::chrono::seconds(280));
    CHECK(api.sleeps.back() == std::chrono::seconds(10));  // the back-off's cap
    CHECK_THAT(a.err, Catch::Contains("did not accept it within 300 s"));
    CHECK_THAT(a.err, Catch::Contains("last: connection refused"));
    CHECK(record(root)["status"] == "failed");
  }
  SECTION("timeouts, with --bootstrap-deadline 20: each step gets 5 s") {
    api.otherwise = [](const HttpRequest&) { return timeout(); };
    Options o = healthy(root, trust_file(tmp));
    o.bootstrap_deadline = 20;
    Out a = do_apply(o, api.hooks(), bundle);
    CHECK(a.code == ExitCode::BootstrapFailed);
    CHECK(api.now - std::chrono::steady_clock::time_point{} <= std::chrono::seconds(20));
    CHECK_THAT(a.err, Catch::Contains("within 20 s"));
  }
}

TEST_CASE("--no-systemd records the bootstrap pending and sends nothing; `bootstrap` sends", "[bootstrap]") {
  TempDir tmp;
  std::string root = make_root(tmp), bundle = tmp / "b.kbundle";
  bootstrap_bundle(bundle, 1, good_objects().dump());
  FakeApi api;
  Out a = do_apply(options(root, trust_file(tmp)), api.hooks(), bundle);
  CHECK(a.code == ExitCode::Ok);
  CHECK(api.requests.empty());
  CHECK(record(root)["status"] == "pending");
  CHECK_THAT(a.out, Catch::Contains("bootstrap: pending: health checks were skipped (--no-systemd)"));
  Options js = options(root);
  js.json = true;
  CHECK(nlohmann::json::parse(do_status(js, api.hooks()).out)["bootstrap"]["status"] == "pending");
  CHECK(do_bootstrap(options(root), api.hooks()).code == ExitCode::Ok);
  CHECK(api.requests.size() == 3);
  CHECK(record(root)["status"] == "applied");
}

TEST_CASE("a bootstrap cut short leaves a pending record that the same apply again finishes", "[bootstrap]") {
  TempDir tmp;
  std::string root = make_root(tmp), bundle = tmp / "b.kbundle";
  bootstrap_bundle(bundle, 1, good_objects().dump());
  FakeApi api;
  // The process "dies" while the second object is in flight (the integration test kills it for real).
  api.on_request = [](size_t i) {
    if (i == 1) throw std::runtime_error("killed");
  };
  Out a = do_apply(healthy(root, trust_file(tmp)), api.hooks(), bundle);
  CHECK(a.code == ExitCode::Failure);
  nlohmann::json rec = record(root);
  CHECK(rec["status"] == "pending");
  CHECK(rec["objects"][0]["result"] == "created");
  CHECK(rec["objects"][1]["result"] == "pending");
  CHECK(read_installed(Layout(root))->manifest.serial == 1);
  api.on_request = nullptr;
  Out b = do_apply(healthy(root, ""), api.hooks(), bundle);
  INFO(b.out << b.err);
  CHECK(b.code == ExitCode::Ok);
  CHECK_THAT(b.out, Catch::Contains("already at serial 1; nothing to do"));
  CHECK(api.requests.size() == 2 + 3);  // server-side apply is idempotent: all three again
  CHECK(record(root)["status"] == "applied");
}

TEST_CASE("the key file must be 0600 on disk; its content is never printed", "[bootstrap]") {
  TempDir tmp;
  std::string root = make_root(tmp), bundle = tmp / "b.kbundle";
  bootstrap_bundle(bundle, 1, good_objects().dump());
  FakeApi api;
  REQUIRE(do_apply(options(root, trust_file(tmp)), api.hooks(), bundle).code == ExitCode::Ok);
  std::string key = root + "/var/lib/kubernetes/bootstrap/kbundle-bootstrap.key";
  REQUIRE(::chmod(key.c_str(), 0644) == 0);
  Out b = do_bootstrap(options(root), api.hooks());
  CHECK(b.code == ExitCode::BootstrapFailed);
  CHECK(api.requests.empty());
  CHECK_THAT(b.err, Catch::Contains(key + ": mode 0644: a private key must be 0600"));
  CHECK((b.out + b.err).find("S3CR3T") == std::string::npos);
  // And a drifted objects.json is not believed.
  REQUIRE(::chmod(key.c_str(), 0600) == 0);
  write_file_atomic(root + kBootstrapObjects, good_objects().dump(1), 0600);
  b = do_bootstrap(options(root), api.hooks());
  CHECK(b.code == ExitCode::BootstrapFailed);
  CHECK_THAT(b.err, Catch::Contains("differs from what serial 1 installed"));
  CHECK(api.requests.empty());
}

TEST_CASE("a node without bootstrap objects: nothing sent, no record, status says nothing of it", "[bootstrap]") {
  TempDir tmp;
  std::string root = make_root(tmp), bundle = tmp / "b.kbundle";
  write_bundle(bundle, 1);
  FakeApi api;
  CHECK(do_apply(healthy(root, trust_file(tmp)), api.hooks(), bundle).code == ExitCode::Ok);
  CHECK_FALSE(std::filesystem::exists(root + "/var/lib/kbundle/bootstrap.json"));
  Out b = do_bootstrap(healthy(root, ""), api.hooks());
  CHECK(b.code == ExitCode::Ok);
  CHECK_THAT(b.out, Catch::Contains("carries no bootstrap objects"));
  CHECK(api.requests.empty());
  Out none = do_bootstrap(options(make_root(tmp, "empty")), api.hooks());
  CHECK(none.code == ExitCode::Failure);
  CHECK_THAT(none.err, Catch::Contains("nothing is installed"));
}

TEST_CASE("a hostile or malformed objects.json is refused before any write, naming the place; nothing is sent", "[bootstrap]") {
  auto with = [](const std::function<void(nlohmann::json&)>& change) {
    nlohmann::json j = good_objects();
    change(j);
    return j.dump();
  };
  auto path_of = [&](const std::string& p) { return with([&](nlohmann::json& j) { j["objects"][0]["api_path"] = p; }); };
  std::string huge(kMaxBootstrapFile + 1, ' ');
  // name | objects.json | what the refusal says
  std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"not JSON", "{\"version\": 1,", "not valid JSON"},
      {"empty file", "", "not valid JSON"},
      {"a list", "[]", "not a JSON object"},
      {"too large", huge, "larger than"},
      {"version 2", with([](auto& j) { j["version"] = 2; }), "version: must be 1"},
      {"unknown field", with([](auto& j) { j["proxy"] = "x"; }), "proxy: unknown field"},
      {"unknown object field", with([](auto& j) { j["objects"][0]["method"] = "DELETE"; }), "objects[0].method: unknown field"},
      {"http", with([](auto& j) { j["api_server"] = "http://127.0.0.1:6443"; }), "is not https://"},
      {"other host", with([](auto& j) { j["api_server"] = "https://10.0.0.5:6443"; }), "is not this node"},
      {"a name", with([](auto& j) { j["api_server"] = "https://evil.example.com:6443"; }), "not an IP address"},
      {"a path", with([](auto& j) { j["api_server"] = "https://127.0.0.1:6443/x"; }), "has a path"},
      {"a user", with([](auto& j) { j["api_server"] = "https://a@127.0.0.1:6443"; }), "has a path, query, user"},
      {"bad port", with([](auto& j) { j["api_server"] = "https://127.0.0.1:99999"; }), "bad port"},
      {"api_server not a string", with([](auto& j) { j["api_server"] = 5; }), "api_server: is not a string"},
      {"key outside the bundle", with([](auto& j) { j["key_file"] = "/etc/shadow"; }), "key_file: /etc/shadow is not a file this bundle installs"},
      {"ca traversal", with([](auto& j) { j["ca_file"] = "/var/lib/kubernetes/../../etc/shadow"; }), "ca_file: '/var/lib/kubernetes/../../etc/shadow' is not a clean absolute path"},
      {"cert relative", with([](auto& j) { j["cert_file"] = "kbundle-bootstrap.crt"; }), "cert_file:"},
      {"key missing", with([](auto& j) { j.erase("key_file"); }), "key_file: missing"},
      {"field manager injection", with([](auto& j) { j["field_manager"] = "kbundle&dryRun=All"; }), "field_manager:"},
      {"field manager empty", with([](auto& j) { j["field_manager"] = ""; }), "field_manager:"},
      {"no objects", with([](auto& j) { j["objects"] = nlohmann::json::array(); }), "objects: empty"},
      {"too many objects", with([](auto& j) { for (int i = 0; i < 300; ++i) j["objects"].push_back(j["objects"][0]); }), "more than 256"},
      {"object not an object", with([](auto& j) { j["objects"][0]["object"] = "x"; }), "objects[0].object: missing or not a JSON object"},
      {"no kind", with([](auto& j) { j["objects"][0]["object"].erase("kind"); }), "objects[0].object.kind: missing"},
      {"no name", with([](auto& j) { j["objects"][0]["object"]["metadata"].erase("name"); }), "objects[0].object.metadata.name: missing"},
      {"not /api", path_of("/healthz"), "does not start with /api/ or /apis/"},
      {"relative", path_of("apis/x/v1/a/b"), "does not start with /api/"},
      {"traversal", path_of("/apis/../../etc/passwd"), "non-name segment"},
      {"traversal deep", path_of("/apis/rbac.authorization.k8s.io/v1/clusterroles/../x"), "non-name segment"},
      {"query injection", path_of("/apis/rbac.authorization.k8s.io/v1/clusterroles/system:kube-apiserver-to-kubelet?dryRun=All"), "non-name segment"},
      {"fragment", path_of("/apis/rbac.authorization.k8s.io/v1/clusterroles/system:kube-apiserver-to-kubelet#x"), "non-name segment"},
      {"percent", path_of("/apis/rbac.authorization.k8s.io/v1/clusterroles/%2e%2e"), "non-name segment"},
      {"CRLF", path_of("/apis/rbac.authorization.k8s.io/v1/clusterroles/a\r\nX-Evil: 1"), "non-name segment"},
      {"space", path_of("/apis/rbac.authorization.k8s.io/v1/clusterroles/a b"), "non-name segment"},
      {"double slash", path_of("/apis/rbac.authorization.k8s.io/v1//clusterroles/system:kube-apiserver-to-kubelet"), "non-name segment"},
      {"trailing slash", path_of("/apis/rbac.authorization.k8s.io/v1/clusterroles/system:kube-apiserver-to-kubelet/"), "non-name segment"},
      {"subresource", path_of("/apis/rbac.authorization.k8s.io/v1/clusterroles/system:kube-apiserver-to-kubelet/status"), "does not name one object"},
      {"collection", path_of("/apis/rbac.authorization.k8s.io/v1/clusterroles"), "does not name one object"},
      {"core not v1", path_of("/api/v2/namespaces/x"), "the core API is /api/v1"},
      {"too long", path_of("/apis/" + std::string(1100, 'a')), "longer than 1024"},
      {"other name", path_of("/apis/rbac.authorization.k8s.io/v1/clusterroles/cluster-admin"), "but the object's metadata.name is"},
      {"other group", path_of("/apis/apps/v1/clusterroles/system:kube-apiserver-to-kubelet"), "but the object's apiVersion is"},
      {"namespace mismatch", with([](auto& j) { j["objects"][1]["api_path"] = "/api/v1/namespaces/default/serviceaccounts/coredns"; }),
       "is in namespace default but the object's metadata.namespace is \"kube-system\""},
      {"cluster path, namespaced object", with([](auto& j) { j["objects"][1]["api_path"] = "/api/v1/serviceaccounts/coredns"; }),
       "is cluster-scoped but the object has metadata.namespace"},
      {"kind with a slash", with([](auto& j) { j["objects"][0]["object"]["kind"] = "Cluster/Role"; }), "is not a Kubernetes kind"},
  };
  FakeApi api;
  for (const auto& [name, bytes, want] : cases) {
    DYNAMIC_SECTION(name) {
      TempDir tmp;
      std::string root = make_root(tmp), bundle = tmp / "b.kbundle";
      bootstrap_bundle(bundle, 1, bytes);
      auto before = snapshot(root, "", true);
      Out a = do_apply(healthy(root, trust_file(tmp)), api.hooks(), bundle);
      INFO(a.out << a.err);
      CHECK(a.code == ExitCode::BadBundle);
      CHECK_THAT(a.err, Catch::Contains(std::string(kBootstrapObjects) + ": "));
      CHECK_THAT(a.err, Catch::Contains(want));
      CHECK_THAT(a.err, Catch::Contains("refused, nothing was changed"));
      CHECK(a.err.find('\r') == std::string::npos);
      CHECK(snapshot(root, "", true) == before);
      CHECK(api.requests.empty());
      // apply --dry-run and verify BUNDLE say the same.
      Options dry = healthy(root, trust_file(tmp));
      dry.dry_run = true;
      Out d = do_apply(dry, api.hooks(), bundle);
      CHECK(d.code == ExitCode::BadBundle);
      CHECK_THAT(d.err, Catch::Contains(want));
      Options v = options(root, trust_file(tmp));
      Out ver = call([&](const Options& o, const Hooks& h, Io io) { return verify(o, h, io, bundle); }, v, api.hooks());
      CHECK(ver.code == ExitCode::BadBundle);
      CHECK_THAT(ver.err, Catch::Contains(want));
    }
  }
  SECTION("a key the bundle installs with mode 0644") {
    TempDir tmp;
    std::string root = make_root(tmp), bundle = tmp / "b.kbundle";
    bootstrap_bundle(bundle, 1, good_objects().dump(), 0644);
    Out a = do_apply(healthy(root, trust_file(tmp)), api.hooks(), bundle);
    CHECK(a.code == ExitCode::BadBundle);
    CHECK_THAT(a.err, Catch::Contains("key_file: /var/lib/kubernetes/bootstrap/kbundle-bootstrap.key is installed with mode 0644"));
  }
}

TEST_CASE("a damaged bootstrap.json is said and treated as no record: the objects are applied again", "[bootstrap]") {
  TempDir tmp;
  std::string root = make_root(tmp), bundle = tmp / "b.kbundle";
  bootstrap_bundle(bundle, 1, good_objects().dump());
  FakeApi api;
  REQUIRE(do_apply(healthy(root, trust_file(tmp)), api.hooks(), bundle).code == ExitCode::Ok);
  REQUIRE(api.requests.size() == 3);
  write_file_atomic(root + "/var/lib/kbundle/bootstrap.json", "{\"status\": \"appl", 0600);
  Out b = do_bootstrap(healthy(root, ""), api.hooks());
  CHECK(b.code == ExitCode::Ok);
  CHECK_THAT(b.err, Catch::Contains("bootstrap.json: not a JSON object; treated as no record"));
  CHECK(api.requests.size() == 6);
  CHECK(record(root)["status"] == "applied");
}
