#include "installer/health.h"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <memory>
#include <openssl/ssl.h>
#include <optional>
#include <pthread.h>
#include <thread>
#include <variant>

#include "base/error.h"
#include "installer/http_client.h"

namespace kb::installer {

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kRetryPause = std::chrono::milliseconds(250);
constexpr auto kAttemptLimit = std::chrono::seconds(10);  // one connect + request + response at most
constexpr size_t kMaxResponse = 1 << 20;

// A problem that retrying cannot fix (a bad URL, a missing certificate file): fail at once.
struct ConfigError {
  std::string detail;
};

// A string field of the check; "" when absent.
std::string field(const nlohmann::json& check, const char* key) {
  auto it = check.find(key);
  if (it == check.end()) return "";
  if (!it->is_string()) throw ConfigError{std::string(key) + " is not a string"};
  return it->get<std::string>();
}

struct Url {
  bool tls = false;
  std::string host;  // without brackets
  int port = 0;
  std::string path;  // starts with '/'
  std::string host_header;
};

Url parse_url(const std::string& url, bool want_tls) {
  const std::string scheme = want_tls ? "https://" : "http://";
  if (url.rfind(scheme, 0) != 0) throw ConfigError{"target '" + url + "' is not an " + scheme.substr(0, scheme.size() - 3) + " URL"};
  Url u;
  u.tls = want_tls;
  std::string rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  u.path = slash == std::string::npos ? "/" : rest.substr(slash);
  std::string port;
  if (!authority.empty() && authority[0] == '[') {
    auto close = authority.find(']');
    if (close == std::string::npos) throw ConfigError{"target '" + url + "': unterminated [IPv6] host"};
    u.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') throw ConfigError{"target '" + url + "': bad host"};
      port = authority.substr(close + 2);
    }
  } else {
    auto colon = authority.find(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) throw ConfigError{"target '" + url + "' has no host"};
  u.port = want_tls ? 443 : 80;
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
      throw ConfigError{"target '" + url + "': bad port '" + port + "'"};
    u.port = std::stoi(port);
    if (u.port < 1 || u.port > 65535) throw ConfigError{"target '" + url + "': bad port '" + port + "'"};
  }
  u.host_header = authority;
  return u;
}

// The installer is static: no NSS, so only IP literals and "localhost" are resolved.
HttpAddress address_of(const Url& u) {
  auto a = ip_address(u.host == "localhost" ? "127.0.0.1" : u.host, u.port);
  if (!a) throw ConfigError{"host '" + u.host + "' is not an IP address (the installer resolves no names)"};
  return *a;
}

std::string under_root(const std::string& root, const std::string& path) {
  if (root.empty() || root == "/") return path;
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  return r + path;
}

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

// Writing to a peer that closed would raise SIGPIPE (OpenSSL writes with write(2)): block it on
// this thread while a check runs and discard one that became pending, without touching the
// process's signal handlers.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &old_);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;
  ~SigpipeBlock() {
    sigset_t pipe, pending;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) == 1 && sigismember(&old_, SIGPIPE) == 0) {
      timespec zero{0, 0};
      sigtimedwait(&pipe, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t old_;
};

// TLS settings of one check, built once (reading the CA and client files) and reused by every attempt.
CtxPtr make_ctx(const nlohmann::json& check, const std::string& root) {
  CtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) throw ConfigError{"cannot create a TLS context: " + openssl_error("out of memory")};
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // Components close without close_notify after "Connection: close"; the body is complete then.
  SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
  std::string ca = field(check, "caFile");
  if (!ca.empty()) {
    std::string path = under_root(root, ca);
    if (SSL_CTX_load_verify_locations(ctx.get(), path.c_str(), nullptr) != 1)
      throw ConfigError{"cannot load CA " + path + ": " + openssl_error("no certificate")};
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  }
  std::string cert = field(check, "certFile");
  std::string key = field(check, "keyFile");
  if (cert.empty() != key.empty()) throw ConfigError{"certFile and keyFile must be given together"};
  if (!cert.empty()) {
    std::string cert_path = under_root(root, cert), key_path = under_root(root, key);
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_path.c_str()) != 1)
      throw ConfigError{"cannot load client certificate " + cert_path + ": " + openssl_error("bad certificate")};
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_path.c_str(), SSL_FILETYPE_PEM) != 1)
      throw ConfigError{"cannot load client key " + key_path + ": " + openssl_error("bad key")};
    if (SSL_CTX_check_private_key(ctx.get()) != 1)
      throw ConfigError{"client key " + key_path + " does not match " + cert_path};
  }
  return ctx;
}

// A transport failure in the words the health report has always used.
std::string describe(const HttpFailure& f) {
  using Step = HttpFailure::Step;
  switch (f.step) {
    case Step::Socket: return ascii_lower("socket: " + f.detail);
    case Step::Connect: return ascii_lower(f.detail);
    case Step::Tls: return f.detail;
    case Step::Send: return "sending the request failed: " + f.detail;
    case Step::Receive: return f.timed_out ? "no response (timed out)" : "reading the response failed: " + f.detail;
    case Step::TooLarge: return "response larger than 1 MiB";
    case Step::Response: return f.detail;
  }
  return f.detail;
}

// One GET. Returns the response, or an error detail ("connection refused", "certificate verify failed: ...").
std::optional<HttpResponse> get_once(const Url& u, SSL_CTX* ctx, Clock::time_point deadline, std::string* error) {
  HttpTarget target;
  target.address = address_of(u);
  if (u.tls) {
    target.tls = ctx;
    target.tls_host = u.host;
  }
  HttpLimits limits;
  limits.deadline = deadline;
  limits.max_response = kMaxResponse;
  std::string request = "GET " + u.path + " HTTP/1.1\r\nHost: " + u.host_header +
                        "\r\nUser-Agent: kbundle-installer\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  HttpResult result = http_exchange(target, request, limits);
  if (auto* r = std::get_if<HttpResponse>(&result)) return std::move(*r);
  *error = describe(std::get<HttpFailure>(result));
  return std::nullopt;
}

std::string seconds_text(Clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", std::chrono::duration<double>(d).count());
  return buf;
}

struct Attempt {
  bool ok = false;
  std::string detail;
};

// Why an etcd /health body is not healthy, or empty when it is.
std::string etcd_unhealthy(const std::string& body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "body is not a JSON object: '" + body.substr(0, 80) + "'";
  auto it = j.find("health");
  if (it == j.end() || !it->is_string() || *it != "true") return "etcd says " + j.dump();
  return "";
}

}  // namespace

HealthResult run_health_check(const nlohmann::json& check, const std::string& root, ServiceManager& services,
                              std::chrono::seconds limit) {
  SigpipeBlock no_sigpipe;
  const auto start = Clock::now();
  if (!check.is_object()) return {false, "health check is not a JSON object"};
  auto timeout = limit;
  auto t = check.find("timeoutSeconds");
  if (t != check.end() && t->is_number_integer() && t->get<long long>() > 0)
    timeout = std::min(limit, std::chrono::seconds(t->get<long long>()));
  const auto deadline = start + timeout;

  // Prepare once; a configuration problem fails at once.
  std::string kind, target;
  std::optional<Url> url;
  CtxPtr ctx;
  try {
    kind = field(check, "kind");
    target = field(check, "target");
    if (kind == "etcd" || kind == "https") {
      url = parse_url(target, true);
      ctx = make_ctx(check, root);
    } else if (kind == "http") {
      url = parse_url(target, false);
    } else if (kind != "unit") {
      throw ConfigError{"unknown health check kind '" + kind + "'"};
    }
    if (url) address_of(*url);
  } catch (const ConfigError& e) {
    return {false, e.detail};
  }

  auto attempt = [&]() -> Attempt {
    if (kind == "unit") {
      std::string state;
      try {
        state = services.active_state(target);
      } catch (const Error& e) {
        return {false, e.what()};
      }
      return {state == "active", "unit " + target + " is " + state};
    }
    std::string error;
    auto attempt_deadline = std::min(deadline, Clock::now() + kAttemptLimit);
    auto r = get_once(*url, ctx.get(), attempt_deadline, &error);
    if (!r) return {false, error};
    std::string status = std::to_string(r->status) + (r->reason.empty() ? "" : " " + r->reason);
    if (r->status != 200) return {false, "HTTP " + status};
    if (kind == "etcd") {
      std::string why = etcd_unhealthy(r->body);
      if (!why.empty()) return {false, "HTTP " + status + ", " + why};
    }
    return {true, status};
  };

  while (true) {
    Attempt a = attempt();
    auto elapsed = Clock::now() - start;
    if (a.ok) return {true, a.detail + " in " + seconds_text(elapsed)};
    if (Clock::now() + kRetryPause >= deadline) return {false, a.detail + " (after " + seconds_text(elapsed) + ")"};
    std::this_thread::sleep_for(kRetryPause);
  }
}

}  // namespace kb::installer
