#include "installer/health.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <openssl/ssl.h>
#include <optional>
#include <thread>
#include <variant>

#include "base/error.h"
#include "https/http_client.h"

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

// The check's URL; a problem with it is a configuration error.
HttpUrl parse_url(const std::string& url, bool want_tls) {
  try {
    return parse_http_url(url, want_tls);
  } catch (const Error& e) {
    throw ConfigError{e.what()};
  }
}

HttpAddress address_of(const HttpUrl& u) {
  try {
    return url_address(u);
  } catch (const Error& e) {
    throw ConfigError{e.what()};
  }
}

std::string under_root(const std::string& root, const std::string& path) {
  if (root.empty() || root == "/") return path;
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  return r + path;
}

// TLS settings of one check, built once (reading the CA and client files) and reused by every attempt.
SslCtxPtr make_ctx(const nlohmann::json& check, const std::string& root) {
  std::string ca = field(check, "caFile"), cert = field(check, "certFile"), key = field(check, "keyFile");
  auto path = [&](const std::string& p) { return p.empty() ? p : under_root(root, p); };
  try {
    return make_tls_client(path(ca), path(cert), path(key));
  } catch (const Error& e) {
    throw ConfigError{e.what()};
  }
}

// The check's GET as sent; a target that cannot be one (a control character) is a configuration error.
std::string get_request(const HttpUrl& u) {
  HttpRequest q;
  q.target = u.path;
  q.host = u.host_header;
  q.headers = {{"User-Agent", "kbundle-installer"}, {"Accept", "*/*"}};
  try {
    return format_http_request(q);
  } catch (const Error& e) {
    throw ConfigError{e.what()};
  }
}

// One GET. Returns the response, or an error detail ("connection refused", "certificate verify failed: ...").
std::optional<HttpResponse> get_once(const HttpUrl& u, SSL_CTX* ctx, Clock::time_point deadline, std::string* error) {
  HttpTarget target;
  target.address = address_of(u);
  if (u.tls) {
    target.tls = ctx;
    target.tls_host = u.host;
  }
  HttpLimits limits;
  limits.deadline = deadline;
  limits.max_response = kMaxResponse;
  HttpResult result = http_exchange(target, get_request(u), limits);
  if (auto* r = std::get_if<HttpResponse>(&result)) return std::move(*r);
  *error = describe_http_failure(std::get<HttpFailure>(result));
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
  std::optional<HttpUrl> url;
  SslCtxPtr ctx;
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
    if (url) {
      address_of(*url);
      get_request(*url);
    }
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
