#pragma once
// The installer's one HTTP/1.1 client, for the health checks (HTTP or HTTPS, installer/health.cpp)
// and the EC2 instance metadata service (plain HTTP, installer/imds.cpp). The installer is static
// and links no HTTP library: a socket, optional TLS through OpenSSL, one request per connection
// ("Connection: close"). Failures come back as values (HttpFailure: the step, errno, a detail)
// so that each caller words them for its users as it always has.

#include <chrono>
#include <optional>
#include <string>
#include <sys/socket.h>
#include <variant>

typedef struct ssl_ctx_st SSL_CTX;

namespace kb::installer {

// An IP address and port. The installer resolves no names (no NSS in a static binary).
struct HttpAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
};
// An IPv4 or IPv6 literal; nothing for anything else.
std::optional<HttpAddress> ip_address(const std::string& host, int port);
bool is_ip_literal(const std::string& host);

struct HttpTarget {
  HttpAddress address;
  // TLS when set: certificates and verification as the context says; the peer is checked
  // against `tls_host` (an IP literal or a name, also sent as SNI).
  SSL_CTX* tls = nullptr;
  std::string tls_host;
};

// How long each blocking step (connect, then each send and read) may wait: until `deadline`
// as it stands when the step starts (the health checks), or `step_timeout` (IMDS), or the
// shorter of the two when both are set.
struct HttpLimits {
  std::optional<std::chrono::steady_clock::time_point> deadline;
  std::optional<std::chrono::milliseconds> step_timeout;
  size_t max_response = 1 << 20;  // the whole response, headers included
};

struct HttpResponse {
  int status = 0;
  std::string reason;
  std::string body;  // de-chunked
};

struct HttpFailure {
  enum class Step {
    Socket,    // socket(2) failed
    Connect,   // refused, unreachable, ... or timed out
    Tls,       // handshake (detail says why: verification, timeout, ...)
    Send,
    Receive,   // a read failed or timed out
    TooLarge,  // over max_response
    Response,  // not a valid HTTP response (detail says why; status is set when the status line was)
  };
  Step step;
  bool timed_out = false;
  int err = 0;         // errno of the failed call, when there was one
  std::string detail;  // the cause as text: strerror, OpenSSL's reason, or what is wrong with the response
  int status = 0;
};

using HttpResult = std::variant<HttpResponse, HttpFailure>;

// Connects, sends `request` (complete, "Connection: close" included), reads one response.
HttpResult http_exchange(const HttpTarget& target, const std::string& request, const HttpLimits& limits);

// The first queued OpenSSL error's reason, or `fallback`; clears the queue.
std::string openssl_error(const std::string& fallback);

std::string ascii_lower(std::string s);

// The response in `raw` once its end is known: headers with Content-Length, a complete chunked
// body, or (at_eof) everything up to the end of the connection. Nothing while more is needed;
// `error` is set when it never will be.
std::optional<HttpResponse> parse_http_response(const std::string& raw, bool at_eof, std::string* error, int* status);

}  // namespace kb::installer
