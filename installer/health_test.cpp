#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "installer/health.h"
#include "https/http_client.h"

using namespace kb;
using namespace kb::installer;
using Clock = std::chrono::steady_clock;

namespace {

// A fresh directory per test (the "root" the checks read their files under), removed at the end.
class TempRoot {
 public:
  TempRoot() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "kb-health-test.XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
    path_ = buf.data();
    std::filesystem::create_directories(path_ + "/etc/pki");
  }
  ~TempRoot() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempRoot(const TempRoot&) = delete;
  TempRoot& operator=(const TempRoot&) = delete;
  const std::string& path() const { return path_; }
  std::string live(const std::string& node_path) const { return path_ + node_path; }

 private:
  std::string path_;
};

// ---- certificates, made with plain OpenSSL calls ----

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* c) const { X509_free(c); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

struct Issued {
  Key key;
  Cert cert;
};

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  REQUIRE(ext != nullptr);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A P-256 certificate; self-signed when `issuer` is null. `san` like "IP:127.0.0.1".
Issued make_cert(const std::string& cn, const Issued* issuer, bool ca, const std::string& san = "",
                 const std::string& eku = "") {
  static long serial = 1;
  Issued out;
  out.key.reset(EVP_EC_gen("P-256"));
  REQUIRE(out.key);
  out.cert.reset(X509_new());
  X509* c = out.cert.get();
  X509_set_version(c, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c), serial++);
  X509_gmtime_adj(X509_getm_notBefore(c), -3600);
  X509_gmtime_adj(X509_getm_notAfter(c), 3600L * 24);
  X509_NAME* name = X509_get_subject_name(c);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* issuer_cert = issuer ? issuer->cert.get() : c;
  X509_set_issuer_name(c, X509_get_subject_name(issuer_cert));
  X509_set_pubkey(c, out.key.get());
  add_ext(c, issuer_cert, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_ext(c, issuer_cert, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  add_ext(c, issuer_cert, NID_subject_key_identifier, "hash");
  if (issuer) add_ext(c, issuer_cert, NID_authority_key_identifier, "keyid");
  if (!san.empty()) add_ext(c, issuer_cert, NID_subject_alt_name, san);
  if (!eku.empty()) add_ext(c, issuer_cert, NID_ext_key_usage, eku);
  REQUIRE(X509_sign(c, issuer ? issuer->key.get() : out.key.get(), EVP_sha256()) > 0);
  return out;
}

void write_pem(const std::string& path, const Issued& i, const std::string& key_path = "") {
  FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f != nullptr);
  PEM_write_X509(f, i.cert.get());
  std::fclose(f);
  if (key_path.empty()) return;
  f = std::fopen(key_path.c_str(), "w");
  REQUIRE(f != nullptr);
  PEM_write_PrivateKey(f, i.key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

// Under root/etc/pki: ca.crt (the right CA), other-ca.crt, server.{crt,key} for 127.0.0.1,
// client.{crt,key} from the CA, self.{crt,key} self-signed, elsewhere.{crt,key} for 10.1.2.3 only.
void make_pki(const TempRoot& root) {
  Issued ca = make_cert("test-ca", nullptr, true);
  Issued other = make_cert("other-ca", nullptr, true);
  write_pem(root.live("/etc/pki/ca.crt"), ca);
  write_pem(root.live("/etc/pki/other-ca.crt"), other);
  write_pem(root.live("/etc/pki/server.crt"), make_cert("server", &ca, false, "IP:127.0.0.1", "serverAuth"),
            root.live("/etc/pki/server.key"));
  write_pem(root.live("/etc/pki/client.crt"), make_cert("client", &ca, false, "", "clientAuth"),
            root.live("/etc/pki/client.key"));
  write_pem(root.live("/etc/pki/self.crt"), make_cert("self", nullptr, false, "IP:127.0.0.1", "serverAuth"),
            root.live("/etc/pki/self.key"));
  write_pem(root.live("/etc/pki/elsewhere.crt"), make_cert("elsewhere", &ca, false, "IP:10.1.2.3", "serverAuth"),
            root.live("/etc/pki/elsewhere.key"));
}

// ---- a tiny HTTP(S) server on 127.0.0.1, in a thread ----

struct Reply {
  std::string status = "200 OK";
  std::string body = "ok";
  bool chunked = false;
  bool silent = false;  // read the request, answer nothing until the client gives up
};

struct ServerConfig {
  std::string cert_file, key_file;  // empty: plain HTTP
  std::string client_ca_file;       // non-empty: a client certificate from this CA is required
  std::vector<Reply> replies{Reply{}};  // the i-th request gets replies[min(i, size-1)]
};

class TestServer {
 public:
  explicit TestServer(ServerConfig cfg) : cfg_(std::move(cfg)) {
    std::signal(SIGPIPE, SIG_IGN);
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listen_fd_, 16) == 0);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    if (!cfg_.cert_file.empty()) {
      ctx_ = SSL_CTX_new(TLS_server_method());
      REQUIRE(SSL_CTX_use_certificate_chain_file(ctx_, cfg_.cert_file.c_str()) == 1);
      REQUIRE(SSL_CTX_use_PrivateKey_file(ctx_, cfg_.key_file.c_str(), SSL_FILETYPE_PEM) == 1);
      if (!cfg_.client_ca_file.empty()) {
        REQUIRE(SSL_CTX_load_verify_locations(ctx_, cfg_.client_ca_file.c_str(), nullptr) == 1);
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      }
    }
    thread_ = std::thread([this] { serve(); });
  }
  ~TestServer() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
    if (ctx_) SSL_CTX_free(ctx_);
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  std::string url(const std::string& scheme, const std::string& path = "/healthz") const {
    return scheme + "://127.0.0.1:" + std::to_string(port_) + path;
  }
  int requests() const { return requests_; }
  int handshakes_failed() const { return handshakes_failed_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      timeval tv{2, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      handle(fd);
      ::close(fd);
    }
  }

  void handle(int fd) {
    SSL* ssl = nullptr;
    if (ctx_) {
      ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, fd);
      if (SSL_accept(ssl) != 1) {
        ++handshakes_failed_;
        ERR_clear_error();
        SSL_free(ssl);
        return;
      }
    }
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      int n = ssl ? SSL_read(ssl, buf, sizeof buf) : static_cast<int>(::recv(fd, buf, sizeof buf, 0));
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    if (request.find("\r\n\r\n") != std::string::npos) {
      int i = requests_++;
      const Reply& r = cfg_.replies[std::min<size_t>(static_cast<size_t>(i), cfg_.replies.size() - 1)];
      if (r.silent) {
        while ((ssl ? SSL_read(ssl, buf, sizeof buf) : static_cast<int>(::recv(fd, buf, sizeof buf, 0))) > 0) {
        }
        if (ssl) SSL_free(ssl);
        ERR_clear_error();
        return;
      }
      std::string response = "HTTP/1.1 " + r.status + "\r\nContent-Type: text/plain\r\n";
      if (r.chunked) {
        response += "Transfer-Encoding: chunked\r\n\r\n";
        for (size_t pos = 0; pos < r.body.size(); pos += 5) {
          std::string piece = r.body.substr(pos, 5);
          char size[16];
          std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
          response += size + piece + "\r\n";
        }
        response += "0\r\n\r\n";
      } else {
        response += "Content-Length: " + std::to_string(r.body.size()) + "\r\n\r\n" + r.body;
      }
      if (ssl) SSL_write(ssl, response.data(), static_cast<int>(response.size()));
      else ::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
    }
    if (ssl) {
      SSL_shutdown(ssl);
      SSL_free(ssl);
    }
    ERR_clear_error();
  }

  ServerConfig cfg_;
  int listen_fd_ = -1;
  int port_ = 0;
  SSL_CTX* ctx_ = nullptr;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::atomic<int> handshakes_failed_{0};
  std::thread thread_;
};

ServerConfig tls_server(const TempRoot& root, const std::string& name = "server") {
  ServerConfig c;
  c.cert_file = root.live("/etc/pki/" + name + ".crt");
  c.key_file = root.live("/etc/pki/" + name + ".key");
  return c;
}

nlohmann::json check(const std::string& kind, const std::string& target, int timeout = 2) {
  return {{"name", "test"}, {"kind", kind}, {"target", target}, {"timeoutSeconds", timeout}};
}

// A service manager whose units go through a fixed list of states.
class ScriptedManager : public ServiceManager {
 public:
  explicit ScriptedManager(std::vector<std::string> states) : states_(std::move(states)) {}
  void daemon_reload() override {}
  void enable(const std::string&) override {}
  void disable(const std::string&) override {}
  void restart(const std::string&, bool) override {}
  void stop(const std::string&) override {}
  std::string active_state(const std::string&) override {
    return states_[std::min(calls_++, states_.size() - 1)];
  }
  std::string describe() const override { return "scripted"; }
  size_t calls() const { return calls_; }

 private:
  std::vector<std::string> states_;
  size_t calls_ = 0;
};

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A port on 127.0.0.1 that nobody listens on.
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

const auto kLimit = std::chrono::seconds(30);

// A one-second https check with `ca_file` against a TLS server presenting make_pki()'s certificate
// `server_name`: the result, and how many requests reached the server.
std::pair<HealthResult, int> check_tls_server(const std::string& server_name, const std::string& ca_file) {
  TempRoot root;
  make_pki(root);
  TestServer server(tls_server(root, server_name));
  auto nm = make_null_manager();
  auto c = check("https", server.url("https"), 1);
  c["caFile"] = ca_file;
  HealthResult r = run_health_check(c, root.path(), *nm, kLimit);
  return {r, server.requests()};
}

}  // namespace

TEST_CASE("https check passes on 200 with the right CA and IP SAN", "[health]") {
  TempRoot root;
  make_pki(root);
  TestServer server(tls_server(root));
  auto nm = make_null_manager();
  auto c = check("https", server.url("https"));
  c["caFile"] = "/etc/pki/ca.crt";
  HealthResult r = run_health_check(c, root.path(), *nm, kLimit);
  INFO(r.detail);
  CHECK(r.ok);
  CHECK(r.detail.find("200 OK in ") == 0);
}

TEST_CASE("https check without caFile accepts a self-signed server", "[health]") {
  TempRoot root;
  make_pki(root);
  TestServer server(tls_server(root, "self"));
  auto nm = make_null_manager();
  HealthResult r = run_health_check(check("https", server.url("https")), root.path(), *nm, kLimit);
  INFO(r.detail);
  CHECK(r.ok);
}

TEST_CASE("https check retries until the server answers 200", "[health]") {
  TempRoot root;
  make_pki(root);
  ServerConfig cfg = tls_server(root);
  cfg.replies = {{"503 Service Unavailable", "starting"}, {"503 Service Unavailable", "starting"}, {"200 OK", "ok"}};
  TestServer server(cfg);
  auto nm = make_null_manager();
  auto c = check("https", server.url("https"), 10);
  c["caFile"] = "/etc/pki/ca.crt";
  HealthResult r = run_health_check(c, root.path(), *nm, kLimit);
  INFO(r.detail);
  CHECK(r.ok);
  CHECK(server.requests() == 3);
}

TEST_CASE("https check fails on 500 until its timeout", "[health]") {
  TempRoot root;
  make_pki(root);
  ServerConfig cfg = tls_server(root);
  cfg.replies = {{"500 Internal Server Error", "broken"}};
  TestServer server(cfg);
  auto nm = make_null_manager();
  auto c = check("https", server.url("https"), 1);
  c["caFile"] = "/etc/pki/ca.crt";
  auto start = Clock::now();
  HealthResult r = run_health_check(c, root.path(), *nm, kLimit);
  double took = seconds_since(start);
  INFO(r.detail);
  CHECK_FALSE(r.ok);
  CHECK(r.detail.find("HTTP 500 Internal Server Error (after ") == 0);
  CHECK(took >= 0.7);
  CHECK(took < 2.5);
  CHECK(server.requests() >= 2);  // it retried
}

TEST_CASE("the installer's limit caps a longer timeoutSeconds", "[health]") {
  TempRoot root;
  make_pki(root);
  ServerConfig cfg = tls_server(root);
  cfg.replies = {{"500 Internal Server Error", "broken"}};
  TestServer server(cfg);
  auto nm = make_null_manager();
  auto start = Clock::now();
  HealthResult r = run_health_check(check("https", server.url("https"), 600), root.path(), *nm, std::chrono::seconds(1));
  CHECK_FALSE(r.ok);
  CHECK(seconds_since(start) < 2.5);
}

TEST_CASE("https check refuses a server from another CA", "[health]") {
  auto [r, requests] = check_tls_server("server", "/etc/pki/other-ca.crt");
  INFO(r.detail);
  CHECK_FALSE(r.ok);
  CHECK(r.detail.find("certificate verify failed") == 0);
  CHECK(requests == 0);
}

TEST_CASE("https check refuses a certificate for another IP", "[health]") {
  auto [r, requests] = check_tls_server("elsewhere", "/etc/pki/ca.crt");
  INFO(r.detail);
  CHECK_FALSE(r.ok);
  CHECK(r.detail.find("certificate verify failed: IP address mismatch") == 0);
  CHECK(requests == 0);
}

TEST_CASE("a server that requires a client certificate", "[health]") {
  TempRoot root;
  make_pki(root);
  ServerConfig cfg = tls_server(root);
  cfg.client_ca_file = root.live("/etc/pki/ca.crt");
  TestServer server(cfg);
  auto nm = make_null_manager();
  auto c = check("https", server.url("https"), 1);
  c["caFile"] = "/etc/pki/ca.crt";

  SECTION("passes when the check gives one") {
    c["certFile"] = "/etc/pki/client.crt";
    c["keyFile"] = "/etc/pki/client.key";
    HealthResult r = run_health_check(c, root.path(), *nm, kLimit);
    INFO(r.detail);
    CHECK(r.ok);
    CHECK(server.requests() == 1);
  }
  SECTION("fails without one") {
    HealthResult r = run_health_check(c, root.path(), *nm, kLimit);
    INFO(r.detail);
    CHECK_FALSE(r.ok);
    CHECK(server.requests() == 0);
    CHECK(server.handshakes_failed() >= 1);
  }
  SECTION("fails with one the server does not trust") {
    c["certFile"] = "/etc/pki/self.crt";
    c["keyFile"] = "/etc/pki/self.key";
    HealthResult r = run_health_check(c, root.path(), *nm, kLimit);
    INFO(r.detail);
    CHECK_FALSE(r.ok);
    CHECK(server.requests() == 0);
  }
}

TEST_CASE("connection refused fails with a clear detail", "[health]") {
  TempRoot root;
  auto nm = make_null_manager();
  std::string url = "https://127.0.0.1:" + std::to_string(closed_port()) + "/healthz";
  auto start = Clock::now();
  HealthResult r = run_health_check(check("https", url, 1), root.path(), *nm, kLimit);
  INFO(r.detail);
  CHECK_FALSE(r.ok);
  CHECK(r.detail.find("connection refused (after ") == 0);
  CHECK(seconds_since(start) >= 0.7);
}

TEST_CASE("etcd check requires 200 and {\"health\":\"true\"}", "[health]") {
  TempRoot root;
  make_pki(root);
  auto nm = make_null_manager();
  struct Case {
    Reply reply;
    bool ok;
    std::string detail;
  };
  const std::vector<Case> cases = {
      {{"200 OK", R"({"health":"true","reason":""})"}, true, "200 OK in "},
      {{"200 OK", R"({"health":"true","reason":""})", true}, true, "200 OK in "},
      {{"200 OK", R"({"health":"false","reason":"RAFT NO LEADER"})"}, false, "HTTP 200 OK, etcd says "},
      {{"200 OK", R"({"health":true})"}, false, "HTTP 200 OK, etcd says "},
      {{"200 OK", "ok"}, false, "HTTP 200 OK, body is not a JSON object"},
      {{"503 Service Unavailable", R"({"health":"false"})"}, false, "HTTP 503 Service Unavailable (after "},
  };
  for (const auto& k : cases) {
    ServerConfig cfg = tls_server(root);
    cfg.client_ca_file = root.live("/etc/pki/ca.crt");
    cfg.replies = {k.reply};
    TestServer server(cfg);
    nlohmann::json c = check("etcd", server.url("https", "/health"), 1);
    c["caFile"] = "/etc/pki/ca.crt";
    c["certFile"] = "/etc/pki/client.crt";
    c["keyFile"] = "/etc/pki/client.key";
    HealthResult r = run_health_check(c, root.path(), *nm, kLimit);
    INFO(k.reply.body << " -> " << r.detail);
    CHECK(r.ok == k.ok);
    CHECK(r.detail.find(k.detail) == 0);
  }
}

TEST_CASE("http check passes on 200 and fails otherwise", "[health]") {
  TempRoot root;
  auto nm = make_null_manager();
  {
    TestServer server(ServerConfig{});
    HealthResult r = run_health_check(check("http", server.url("http")), root.path(), *nm, kLimit);
    INFO(r.detail);
    CHECK(r.ok);
  }
  {
    ServerConfig cfg;
    cfg.replies = {{"404 Not Found", "no"}};
    TestServer server(cfg);
    HealthResult r = run_health_check(check("http", server.url("http"), 1), root.path(), *nm, kLimit);
    INFO(r.detail);
    CHECK_FALSE(r.ok);
    CHECK(r.detail.find("HTTP 404 Not Found (after ") == 0);
  }
  {
    // An http check must not talk TLS, and an https check must not talk plain HTTP.
    make_pki(root);
    TestServer tls(tls_server(root));
    HealthResult r = run_health_check(check("http", tls.url("http"), 1), root.path(), *nm, kLimit);
    CHECK_FALSE(r.ok);
    TestServer plain(ServerConfig{});
    r = run_health_check(check("https", plain.url("https"), 1), root.path(), *nm, kLimit);
    INFO(r.detail);
    CHECK_FALSE(r.ok);
    CHECK(r.detail.find("TLS handshake ") == 0);  // "failed" or "timed out": this server waits for a request
  }
}

TEST_CASE("unit check follows the service manager's ActiveState", "[health]") {
  TempRoot root;
  SECTION("activating, then active") {
    ScriptedManager sm({"activating", "activating", "active"});
    HealthResult r = run_health_check(check("unit", "etcd.service"), root.path(), sm, kLimit);
    INFO(r.detail);
    CHECK(r.ok);
    CHECK(r.detail.find("unit etcd.service is active in ") == 0);
    CHECK(sm.calls() == 3);
  }
  SECTION("failed") {
    ScriptedManager sm({"failed"});
    HealthResult r = run_health_check(check("unit", "etcd.service", 1), root.path(), sm, kLimit);
    CHECK_FALSE(r.ok);
    CHECK(r.detail.find("unit etcd.service is failed (after ") == 0);
  }
}

TEST_CASE("configuration problems fail at once with the reason", "[health]") {
  TempRoot root;
  make_pki(root);
  auto nm = make_null_manager();
  struct Case {
    nlohmann::json check;
    std::string detail;
  };
  auto with = [](nlohmann::json c, const std::string& key, const std::string& value) {
    c[key] = value;
    return c;
  };
  const std::string url = "https://127.0.0.1:1/healthz";
  const std::vector<Case> cases = {
      {check("tcp", url, 30), "unknown health check kind 'tcp'"},
      {{{"kind", "https"}, {"target", 443}}, "target is not a string"},
      {check("https", "http://127.0.0.1:1/", 30), "target 'http://127.0.0.1:1/' is not an https URL"},
      {check("http", "https://127.0.0.1:1/", 30), "target 'https://127.0.0.1:1/' is not an http URL"},
      {check("https", "https://127.0.0.1:99999/", 30), "target 'https://127.0.0.1:99999/': bad port '99999'"},
      {check("https", "https://api.example.com/", 30), "host 'api.example.com' is not an IP address"},
      // A target that would add a header or a second request line is refused, never sent.
      {check("https", "https://127.0.0.1:1/healthz\r\nX-Evil: 1", 30), "HTTP request: the target must start with '/' and hold no space"},
      {check("http", "http://127.0.0.1:1/a b", 30), "HTTP request: the target must start with '/' and hold no space"},
      {with(check("https", url, 30), "caFile", "/etc/pki/missing.crt"), "cannot load CA " + root.path() + "/etc/pki/missing.crt"},
      {with(check("https", url, 30), "certFile", "/etc/pki/client.crt"), "certFile and keyFile must be given together"},
      {with(with(check("https", url, 30), "certFile", "/etc/pki/client.crt"), "keyFile", "/etc/pki/server.key"),
       "cannot load client key " + root.path() + "/etc/pki/server.key"},
  };
  for (const auto& k : cases) {
    auto start = Clock::now();
    HealthResult r = run_health_check(k.check, root.path(), *nm, kLimit);
    INFO(k.check.dump() << " -> " << r.detail);
    CHECK_FALSE(r.ok);
    CHECK(r.detail.find(k.detail) == 0);
    CHECK(seconds_since(start) < 0.5);
  }
}

TEST_CASE("IPv6 loopback and [host]:port URLs", "[health]") {
  TempRoot root;
  auto nm = make_null_manager();
  int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool have_v6 = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  if (fd >= 0) ::close(fd);
  if (!have_v6) return;  // no IPv6 loopback here; nothing to check
  HealthResult r = run_health_check(check("http", "http://[::1]:1/healthz", 1), root.path(), *nm, kLimit);
  INFO(r.detail);
  CHECK_FALSE(r.ok);
  CHECK(r.detail.find("connection refused") == 0);
}

TEST_CASE("a TLS server that takes the request and never answers: the read times out as a timeout", "[health]") {
  TempRoot root;
  make_pki(root);
  ServerConfig cfg = tls_server(root);
  cfg.replies = {Reply{"200 OK", "ok", false, true}};
  TestServer server(cfg);
  SslCtxPtr ctx = make_tls_client(root.live("/etc/pki/ca.crt"), "", "");
  HttpTarget target;
  target.address = *ip_address("127.0.0.1", parse_http_url(server.url("https"), true).port);
  target.tls = ctx.get();
  target.tls_host = "127.0.0.1";
  HttpLimits limits;
  limits.step_timeout = std::chrono::milliseconds(300);
  SigpipeBlock no_sigpipe;
  auto start = Clock::now();
  HttpResult r = http_exchange(target, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", limits);
  REQUIRE(std::holds_alternative<HttpFailure>(r));
  const auto& f = std::get<HttpFailure>(r);
  CHECK(f.step == HttpFailure::Step::Receive);
  CHECK(f.timed_out);
  CHECK(describe_http_failure(f) == "no response (timed out)");
  CHECK(seconds_since(start) < 2.0);
}
