#include "https/http_client.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/unique_fd.h"

namespace kb {

namespace {

using Clock = std::chrono::steady_clock;
using Step = HttpFailure::Step;

struct SslDeleter {
  void operator()(SSL* s) const { SSL_free(s); }
};
using SslPtr = std::unique_ptr<SSL, SslDeleter>;

HttpFailure failure(Step step, std::string detail, int err = 0, bool timed_out = false) {
  HttpFailure f{step, timed_out, err, std::move(detail), 0};
  return f;
}

// How long the next blocking step may wait, in microseconds (at least `floor_us`).
long long step_budget_us(const HttpLimits& limits, long long floor_us) {
  using std::chrono::microseconds, std::chrono::duration_cast;
  long long us = duration_cast<microseconds>(std::chrono::seconds(3600)).count();  // neither limit set: an hour
  if (limits.deadline) us = std::min<long long>(us, duration_cast<microseconds>(*limits.deadline - Clock::now()).count());
  if (limits.step_timeout) us = std::min<long long>(us, duration_cast<microseconds>(*limits.step_timeout).count());
  return std::max(us, floor_us);
}

// Non-blocking connect bounded by the limits; the socket is blocking afterwards, with send and
// receive timeouts (SO_SNDTIMEO, SO_RCVTIMEO) so that OpenSSL's reads and writes are bounded too.
std::optional<HttpFailure> connect_socket(int fd, const HttpAddress& a, const HttpLimits& limits) {
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&a.addr), a.len);
  if (rc != 0 && errno != EINPROGRESS) return failure(Step::Connect, std::strerror(errno), errno);
  if (rc != 0) {
    pollfd p{fd, POLLOUT, 0};
    int n;
    do n = ::poll(&p, 1, static_cast<int>(step_budget_us(limits, 1000) / 1000));
    while (n < 0 && errno == EINTR);
    if (n == 0) return failure(Step::Connect, "connect timed out", ETIMEDOUT, true);
    if (n < 0) return failure(Step::Connect, std::string("poll: ") + std::strerror(errno), errno);
    int err = 0;
    socklen_t err_len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len);
    if (err != 0) return failure(Step::Connect, std::strerror(err), err);
  }
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  long long left = step_budget_us(limits, 1000);
  timeval tv{static_cast<time_t>(left / 1000000), static_cast<suseconds_t>(left % 1000000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return std::nullopt;
}

std::optional<HttpFailure> tls_handshake(SslPtr& ssl, int fd, const HttpTarget& t, const HttpLimits& limits) {
  ssl.reset(SSL_new(t.tls));
  if (!ssl) return failure(Step::Tls, "SSL_new: " + openssl_error("out of memory"));
  SSL_set_fd(ssl.get(), fd);
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
  if (is_ip_literal(t.tls_host)) {
    X509_VERIFY_PARAM_set1_ip_asc(param, t.tls_host.c_str());
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    X509_VERIFY_PARAM_set1_host(param, t.tls_host.c_str(), 0);
    // SSL_set_tlsext_host_name() without its C cast.
    SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(t.tls_host.c_str()));
  }
  ERR_clear_error();
  if (SSL_connect(ssl.get()) == 1) return std::nullopt;
  long verify = SSL_get_verify_result(ssl.get());
  if ((SSL_get_verify_mode(ssl.get()) & SSL_VERIFY_PEER) != 0 && verify != X509_V_OK)
    return failure(Step::Tls, std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify));
  if (limits.deadline && Clock::now() >= *limits.deadline) return failure(Step::Tls, "TLS handshake timed out", ETIMEDOUT, true);
  return failure(Step::Tls, "TLS handshake failed: " + openssl_error(errno != 0 ? std::strerror(errno) : "connection closed"));
}

std::optional<HttpFailure> send_all(SSL* ssl, int fd, const std::string& request) {
  size_t sent = 0;
  while (sent < request.size()) {
    int n = 0;
    if (ssl) n = SSL_write(ssl, request.data() + sent, static_cast<int>(request.size() - sent));
    else n = static_cast<int>(::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL));
    if (n <= 0) {
      if (!ssl && n < 0 && errno == EINTR) continue;
      int err = errno;
      bool timed_out = err == EAGAIN || err == EWOULDBLOCK;
      return failure(Step::Send, ssl ? openssl_error(std::strerror(err)) : std::string(std::strerror(err)), err, timed_out);
    }
    sent += static_cast<size_t>(n);
  }
  return std::nullopt;
}

// Reads until the response is complete, the connection ends, or a limit is hit.
HttpResult read_response(SSL* ssl, int fd, const HttpLimits& limits) {
  std::string raw;
  char buf[8192];
  while (true) {
    int n = 0;
    bool eof = false;
    if (ssl) {
      n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0) {
        int code = SSL_get_error(ssl, n);
        if (code == SSL_ERROR_ZERO_RETURN) {
          eof = true;
        } else if (code == SSL_ERROR_SYSCALL && errno == 0) {
          eof = true;  // closed without close_notify (allowed by SSL_OP_IGNORE_UNEXPECTED_EOF)
        } else {
          int err = errno;
          // SO_RCVTIMEO expired: OpenSSL 3 says WANT_READ (older ones SYSCALL), errno EAGAIN.
          bool can_wait = code == SSL_ERROR_SYSCALL || code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE;
          if (can_wait && (err == EAGAIN || err == EWOULDBLOCK))
            return failure(Step::Receive, std::strerror(err), err, true);
          return failure(Step::Receive, openssl_error(std::strerror(err)), err);
        }
      }
    } else {
      ssize_t m = ::recv(fd, buf, sizeof buf, 0);
      if (m < 0 && errno == EINTR) continue;
      if (m < 0) return failure(Step::Receive, std::strerror(errno), errno, errno == EAGAIN || errno == EWOULDBLOCK);
      n = static_cast<int>(m);
      eof = m == 0;
    }
    if (n > 0) raw.append(buf, static_cast<size_t>(n));
    if (raw.size() > limits.max_response) return failure(Step::TooLarge, "response too large");
    std::string parse_error;
    int status = 0;
    if (auto r = parse_http_response(raw, eof, &parse_error, &status)) return *r;
    if (!parse_error.empty() || eof) {
      HttpFailure f = failure(Step::Response, parse_error.empty() ? "connection closed before a response" : parse_error);
      f.status = status;
      return f;
    }
  }
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

// "HTTP/x.y NNN reason": the status (0 when the line is not one) and the reason.
int parse_status_line(const std::string& line, std::string* reason) {
  char version[16] = {0};
  int status = 0;
  int consumed = 0;
  if (line.rfind("HTTP/", 0) != 0 || std::sscanf(line.c_str(), "%15s %3d%n", version, &status, &consumed) != 2 || status < 100)
    return 0;
  *reason = line.substr(static_cast<size_t>(consumed));
  while (!reason->empty() && reason->front() == ' ') reason->erase(0, 1);
  return status;
}

}  // namespace

std::optional<HttpAddress> ip_address(const std::string& host, int port) {
  HttpAddress a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.addr);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    a.len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    a.len = sizeof(sockaddr_in6);
  } else {
    return std::nullopt;
  }
  return a;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string openssl_error(const std::string& fallback) {
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

std::string ascii_lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::optional<HttpResponse> parse_http_response(const std::string& raw, bool at_eof, std::string* error, int* status) {
  *status = 0;
  size_t line_end = raw.find("\r\n");
  HttpResponse r;
  r.status = parse_status_line(raw.substr(0, line_end), &r.reason);
  size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    if (at_eof) {
      *error = raw.empty() ? "empty response" : "incomplete response headers";
      *status = r.status;
    }
    return std::nullopt;
  }
  if (r.status == 0) {
    *error = "bad status line '" + raw.substr(0, line_end).substr(0, 80) + "'";
    return std::nullopt;
  }
  std::optional<size_t> content_length;
  bool chunked = false;
  size_t pos = line_end + 2;
  while (pos < head_end) {
    size_t eol = raw.find("\r\n", pos);
    std::string line = raw.substr(pos, eol - pos);
    pos = eol + 2;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = ascii_lower(line.substr(0, colon));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
    r.headers.emplace_back(name, value);
    if (name == "content-length") content_length = std::strtoull(value.c_str(), nullptr, 10);
    if (name == "transfer-encoding" && ascii_lower(value).find("chunked") != std::string::npos) chunked = true;
  }
  std::string body = raw.substr(head_end + 4);
  if (chunked) {
    auto decoded = dechunk(body);
    if (!decoded) {
      if (at_eof) {
        *error = "incomplete chunked body";
        *status = r.status;
      }
      return std::nullopt;
    }
    r.body = *decoded;
    return r;
  }
  if (content_length) {
    if (body.size() < *content_length) {
      if (at_eof) {
        *error = "response body shorter than its Content-Length";
        *status = r.status;
      }
      return std::nullopt;
    }
    r.body = body.substr(0, *content_length);
    return r;
  }
  if (!at_eof) return std::nullopt;  // the body ends with the connection
  r.body = body;
  return r;
}

namespace {

// No control character (CR, LF, NUL, ... DEL): such a byte in a request line or header would
// end it early and let the rest become a header or a request of its own.
bool has_control(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

bool is_token(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
  });
}

}  // namespace

std::string format_http_request(const HttpRequest& q) {
  if (!is_token(q.method)) throw Error("HTTP request: method '" + q.method + "' is not a token");
  if (q.target.empty() || q.target[0] != '/' || has_control(q.target) || q.target.find(' ') != std::string::npos)
    throw Error("HTTP request: the target must start with '/' and hold no space or control character");
  if (q.host.empty() || has_control(q.host) || q.host.find(' ') != std::string::npos)
    throw Error("HTTP request: bad Host");
  std::string out = q.method + " " + q.target + " HTTP/1.1\r\nHost: " + q.host + "\r\n";
  for (const auto& [name, value] : q.headers) {
    if (!is_token(name) || has_control(value)) throw Error("HTTP request: header '" + name + "' is not a token or its value holds a control character");
    out += name + ": " + value + "\r\n";
  }
  if (!q.body.empty() || q.method == "PATCH" || q.method == "POST" || q.method == "PUT")
    out += "Content-Length: " + std::to_string(q.body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  return out + q.body;
}

HttpUrl parse_http_url(const std::string& url, bool want_tls) {
  const std::string scheme = want_tls ? "https://" : "http://";
  if (url.rfind(scheme, 0) != 0) throw Error("target '" + url + "' is not an " + scheme.substr(0, scheme.size() - 3) + " URL");
  HttpUrl u;
  u.tls = want_tls;
  std::string rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  u.path = slash == std::string::npos ? "/" : rest.substr(slash);
  std::string port;
  if (!authority.empty() && authority[0] == '[') {
    auto close = authority.find(']');
    if (close == std::string::npos) throw Error("target '" + url + "': unterminated [IPv6] host");
    u.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') throw Error("target '" + url + "': bad host");
      port = authority.substr(close + 2);
    }
  } else {
    auto colon = authority.find(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) throw Error("target '" + url + "' has no host");
  u.port = want_tls ? 443 : 80;
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
      throw Error("target '" + url + "': bad port '" + port + "'");
    u.port = std::stoi(port);
    if (u.port < 1 || u.port > 65535) throw Error("target '" + url + "': bad port '" + port + "'");
  }
  u.host_header = authority;
  return u;
}

HttpAddress url_address(const HttpUrl& u) {
  auto a = ip_address(u.host == "localhost" ? "127.0.0.1" : u.host, u.port);
  if (!a) throw Error("host '" + u.host + "' is not an IP address (the installer resolves no names)");
  return *a;
}

std::optional<std::string> HttpResponse::header(const std::string& lower_name) const {
  for (const auto& [name, value] : headers)
    if (name == lower_name) return value;
  return std::nullopt;
}

std::string describe_http_failure(const HttpFailure& f) {
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

void SslCtxDeleter::operator()(SSL_CTX* c) const { SSL_CTX_free(c); }

SslCtxPtr make_tls_client(const std::string& ca_file, const std::string& cert_file, const std::string& key_file) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) throw Error("cannot create a TLS context: " + openssl_error("out of memory"));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // Components close without close_notify after "Connection: close"; the body is complete then.
  SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (!ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1)
      throw Error("cannot load CA " + ca_file + ": " + openssl_error("no certificate"));
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  }
  if (cert_file.empty() != key_file.empty()) throw Error("certFile and keyFile must be given together");
  if (!cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1)
      throw Error("cannot load client certificate " + cert_file + ": " + openssl_error("bad certificate"));
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1)
      throw Error("cannot load client key " + key_file + ": " + openssl_error("bad key"));
    if (SSL_CTX_check_private_key(ctx.get()) != 1) throw Error("client key " + key_file + " does not match " + cert_file);
  }
  return ctx;
}

SigpipeBlock::SigpipeBlock() {
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, &old_);
}

SigpipeBlock::~SigpipeBlock() {
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

HttpResult http_exchange(const HttpTarget& target, const std::string& request, const HttpLimits& limits) {
  UniqueFd fd(::socket(target.address.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return failure(Step::Socket, std::strerror(errno), errno);
  if (auto f = connect_socket(fd.get(), target.address, limits)) return *f;
  SslPtr ssl;
  if (target.tls)
    if (auto f = tls_handshake(ssl, fd.get(), target, limits)) return *f;
  if (auto f = send_all(ssl.get(), fd.get(), request)) return *f;
  return read_response(ssl.get(), fd.get(), limits);
}

}  // namespace kb
