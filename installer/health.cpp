#include "installer/health.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <optional>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "base/error.h"

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
sockaddr_storage address_of(const Url& u, socklen_t* len) {
  sockaddr_storage ss{};
  std::string host = u.host == "localhost" ? "127.0.0.1" : u.host;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(u.port));
    *len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(u.port));
    *len = sizeof(sockaddr_in6);
  } else {
    throw ConfigError{"host '" + u.host + "' is not an IP address (the installer resolves no names)"};
  }
  return ss;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string under_root(const std::string& root, const std::string& path) {
  if (root.empty() || root == "/") return path;
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  return r + path;
}

// The first queued OpenSSL error as text, or `fallback`; clears the queue.
std::string ssl_error(const std::string& fallback) {
  unsigned long e = ERR_get_error();
  std::string s = fallback;
  if (e != 0) {
    const char* reason = ERR_reason_error_string(e);
    if (reason) {
      s = reason;
    } else {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      s = buf;
    }
  }
  ERR_clear_error();
  return s;
}

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslDeleter {
  void operator()(SSL* s) const { SSL_free(s); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;
using SslPtr = std::unique_ptr<SSL, SslDeleter>;

class Socket {
 public:
  Socket() = default;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd_ = -1;
};

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
  if (!ctx) throw ConfigError{"cannot create a TLS context: " + ssl_error("out of memory")};
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // Components close without close_notify after "Connection: close"; the body is complete then.
  SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
  std::string ca = field(check, "caFile");
  if (!ca.empty()) {
    std::string path = under_root(root, ca);
    if (SSL_CTX_load_verify_locations(ctx.get(), path.c_str(), nullptr) != 1)
      throw ConfigError{"cannot load CA " + path + ": " + ssl_error("no certificate")};
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
      throw ConfigError{"cannot load client certificate " + cert_path + ": " + ssl_error("bad certificate")};
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_path.c_str(), SSL_FILETYPE_PEM) != 1)
      throw ConfigError{"cannot load client key " + key_path + ": " + ssl_error("bad key")};
    if (SSL_CTX_check_private_key(ctx.get()) != 1)
      throw ConfigError{"client key " + key_path + " does not match " + cert_path};
  }
  return ctx;
}

// Non-blocking connect bounded by `deadline`; the socket is blocking with I/O timeouts afterwards.
// Returns an error detail, or nothing when connected.
std::optional<std::string> connect_socket(Socket& s, const Url& u, Clock::time_point deadline) {
  socklen_t len = 0;
  sockaddr_storage addr = address_of(u, &len);
  s.fd_ = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s.fd_ < 0) return std::string("socket: ") + std::strerror(errno);
  int rc = ::connect(s.fd_, reinterpret_cast<const sockaddr*>(&addr), len);
  if (rc != 0 && errno != EINPROGRESS) return std::string(std::strerror(errno));
  if (rc != 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{s.fd_, POLLOUT, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::max<long long>(left, 1)));
    if (n == 0) return std::string("connect timed out");
    if (n < 0) return std::string("poll: ") + std::strerror(errno);
    int err = 0;
    socklen_t err_len = sizeof err;
    ::getsockopt(s.fd_, SOL_SOCKET, SO_ERROR, &err, &err_len);
    if (err != 0) return std::string(std::strerror(err));
  }
  int flags = ::fcntl(s.fd_, F_GETFL);
  ::fcntl(s.fd_, F_SETFL, flags & ~O_NONBLOCK);
  auto left = std::max<long long>(
      std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now()).count(), 1000);
  timeval tv{static_cast<time_t>(left / 1000000), static_cast<suseconds_t>(left % 1000000)};
  ::setsockopt(s.fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s.fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return std::nullopt;
}

struct Response {
  int status = 0;
  std::string reason;
  std::string body;
};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Decodes a chunked body; nothing when it is malformed or incomplete.
std::optional<std::string> dechunk(const std::string& raw) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t eol = raw.find("\r\n", pos);
    if (eol == std::string::npos) return std::nullopt;
    unsigned long size = 0;
    std::string line = raw.substr(pos, eol - pos);
    if (std::sscanf(line.c_str(), "%lx", &size) != 1) return std::nullopt;
    pos = eol + 2;
    if (size == 0) return out;
    if (raw.size() < pos + size + 2) return std::nullopt;
    out.append(raw, pos, size);
    pos += size + 2;
  }
}

// The response once its end is known (headers + Content-Length, or a complete chunked body), else nothing.
std::optional<Response> parse_response(const std::string& raw, bool at_eof, std::string* error) {
  size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    if (at_eof) *error = raw.empty() ? "empty response" : "incomplete response headers";
    return std::nullopt;
  }
  Response r;
  size_t line_end = raw.find("\r\n");
  std::string status_line = raw.substr(0, line_end);
  char version[16] = {0};
  int status = 0;
  int consumed = 0;
  if (status_line.rfind("HTTP/", 0) != 0 ||
      std::sscanf(status_line.c_str(), "%15s %3d%n", version, &status, &consumed) != 2 || status < 100) {
    *error = "bad status line '" + status_line.substr(0, 80) + "'";
    return std::nullopt;
  }
  r.status = status;
  r.reason = status_line.substr(static_cast<size_t>(consumed));
  while (!r.reason.empty() && r.reason.front() == ' ') r.reason.erase(0, 1);
  std::optional<size_t> content_length;
  bool chunked = false;
  size_t pos = line_end + 2;
  while (pos < head_end) {
    size_t eol = raw.find("\r\n", pos);
    std::string line = raw.substr(pos, eol - pos);
    pos = eol + 2;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = lower(line.substr(0, colon));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
    if (name == "content-length") content_length = std::strtoull(value.c_str(), nullptr, 10);
    if (name == "transfer-encoding" && lower(value).find("chunked") != std::string::npos) chunked = true;
  }
  std::string body = raw.substr(head_end + 4);
  if (chunked) {
    auto decoded = dechunk(body);
    if (!decoded) {
      if (at_eof) *error = "incomplete chunked body";
      return std::nullopt;
    }
    r.body = *decoded;
    return r;
  }
  if (content_length) {
    if (body.size() < *content_length) {
      if (at_eof) *error = "response body shorter than its Content-Length";
      return std::nullopt;
    }
    r.body = body.substr(0, *content_length);
    return r;
  }
  if (!at_eof) return std::nullopt;  // the body ends with the connection
  r.body = body;
  return r;
}

// One GET. Returns the response, or an error detail ("connection refused", "certificate verify failed: ...").
std::optional<Response> get_once(const Url& u, SSL_CTX* ctx, Clock::time_point deadline, std::string* error) {
  Socket s;
  if (auto e = connect_socket(s, u, deadline)) {
    *error = lower(*e);
    return std::nullopt;
  }
  SslPtr ssl;
  if (u.tls) {
    ssl.reset(SSL_new(ctx));
    if (!ssl) {
      *error = "SSL_new: " + ssl_error("out of memory");
      return std::nullopt;
    }
    SSL_set_fd(ssl.get(), s.fd_);
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
    if (is_ip_literal(u.host)) {
      X509_VERIFY_PARAM_set1_ip_asc(param, u.host.c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, u.host.c_str(), 0);
      // SSL_set_tlsext_host_name() without its C cast.
      SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(u.host.c_str()));
    }
    ERR_clear_error();
    if (SSL_connect(ssl.get()) != 1) {
      long verify = SSL_get_verify_result(ssl.get());
      if ((SSL_get_verify_mode(ssl.get()) & SSL_VERIFY_PEER) != 0 && verify != X509_V_OK)
        *error = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
      else if (Clock::now() >= deadline)
        *error = "TLS handshake timed out";
      else
        *error = "TLS handshake failed: " + ssl_error(errno != 0 ? std::strerror(errno) : "connection closed");
      return std::nullopt;
    }
  }

  std::string request = "GET " + u.path + " HTTP/1.1\r\nHost: " + u.host_header +
                        "\r\nUser-Agent: kbundle-installer\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    int n = 0;
    if (ssl) n = SSL_write(ssl.get(), request.data() + sent, static_cast<int>(request.size() - sent));
    else n = static_cast<int>(::send(s.fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL));
    if (n <= 0) {
      if (!ssl && n < 0 && errno == EINTR) continue;
      *error = "sending the request failed: " + (ssl ? ssl_error(std::strerror(errno)) : std::string(std::strerror(errno)));
      return std::nullopt;
    }
    sent += static_cast<size_t>(n);
  }

  std::string raw;
  char buf[8192];
  while (true) {
    int n = 0;
    bool eof = false;
    if (ssl) {
      n = SSL_read(ssl.get(), buf, sizeof buf);
      if (n <= 0) {
        int code = SSL_get_error(ssl.get(), n);
        if (code == SSL_ERROR_ZERO_RETURN) {
          eof = true;
        } else if (code == SSL_ERROR_SYSCALL && errno == 0) {
          eof = true;  // closed without close_notify (allowed by SSL_OP_IGNORE_UNEXPECTED_EOF)
        } else {
          bool timed_out = code == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK);
          *error = timed_out ? std::string("no response (timed out)")
                             : "reading the response failed: " + ssl_error(std::strerror(errno));
          return std::nullopt;
        }
      }
    } else {
      ssize_t m = ::recv(s.fd_, buf, sizeof buf, 0);
      if (m < 0 && errno == EINTR) continue;
      if (m < 0) {
        *error = errno == EAGAIN || errno == EWOULDBLOCK ? std::string("no response (timed out)")
                                                         : std::string("reading the response failed: ") + std::strerror(errno);
        return std::nullopt;
      }
      n = static_cast<int>(m);
      eof = m == 0;
    }
    if (n > 0) raw.append(buf, static_cast<size_t>(n));
    if (raw.size() > kMaxResponse) {
      *error = "response larger than 1 MiB";
      return std::nullopt;
    }
    std::string parse_error;
    if (auto r = parse_response(raw, eof, &parse_error)) return r;
    if (!parse_error.empty()) {
      *error = parse_error;
      return std::nullopt;
    }
    if (eof) {
      *error = "connection closed before a response";
      return std::nullopt;
    }
  }
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
    if (url) {
      socklen_t len = 0;
      address_of(*url, &len);
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
