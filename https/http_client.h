#pragma once
// The installer's one HTTP/1.1 client, for the health checks (HTTP or HTTPS, installer/health.cpp),
// the EC2 instance metadata service (plain HTTP, installer/imds.cpp) and the bootstrap objects'
// server-side apply (HTTPS with a client certificate, installer/bootstrap.cpp). The installer is static
// and links no HTTP library: a socket, optional TLS through OpenSSL, one request per connection
// ("Connection: close"). Failures come back as values (HttpFailure: the step, errno, a detail)
// so that each caller words them for its users as it always has.

#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <sys/socket.h>
#include <utility>
#include <variant>
#include <vector>

typedef struct ssl_ctx_st SSL_CTX;

namespace kb {

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
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case, in order

  // The first header named `lower_name`, or nothing.
  std::optional<std::string> header(const std::string& lower_name) const;
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

// A transport failure in the words the health report uses ("connection refused", "no response
// (timed out)", "certificate verify failed: ...").
std::string describe_http_failure(const HttpFailure& f);

// One request. format_http_request() adds Host, Content-Length (when there is a body) and
// "Connection: close"; `target` is the path and query, already percent-encoded.
struct HttpRequest {
  std::string method = "GET";
  std::string target = "/";
  std::string host;  // the Host header
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};
// The request as sent. Throws kb::Error when the method is not a token or the target, the host,
// a header name or value holds a space (target), CR, LF or another control character: nothing
// from a file can add a header or a second request.
std::string format_http_request(const HttpRequest& request);

// An http:// or https:// URL whose host is an IP literal or "localhost" (the installer resolves
// no names: no NSS in a static binary).
struct HttpUrl {
  bool tls = false;
  std::string host;  // without brackets
  int port = 0;
  std::string path;  // starts with '/'
  std::string host_header;
};
// Throws kb::Error ("target 'URL' is not an https URL", "... bad port ...") for anything else.
HttpUrl parse_http_url(const std::string& url, bool want_tls);
// Its address; throws kb::Error when the host is not an IP literal or "localhost".
HttpAddress url_address(const HttpUrl& url);

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const;
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;
// A TLS 1.2+ client context. With `ca_file` the server is verified against it (and, per
// connection, against HttpTarget::tls_host); without, it is not verified. `cert_file` and
// `key_file` (both or neither) are the client certificate. Paths as on disk. Throws kb::Error
// naming the file that cannot be loaded; the key's content is never part of a message.
SslCtxPtr make_tls_client(const std::string& ca_file, const std::string& cert_file, const std::string& key_file);

// Writing to a peer that closed would raise SIGPIPE (OpenSSL writes with write(2)): blocks it on
// this thread while in scope and discards one that became pending, without touching the
// process's signal handlers.
class SigpipeBlock {
 public:
  SigpipeBlock();
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;
  ~SigpipeBlock();

 private:
  sigset_t old_;
};

// Connects, sends `request` (complete, "Connection: close" included), reads one response.
HttpResult http_exchange(const HttpTarget& target, const std::string& request, const HttpLimits& limits);

// The first queued OpenSSL error's reason, or `fallback`; clears the queue.
std::string openssl_error(const std::string& fallback);

std::string ascii_lower(std::string s);

// The response in `raw` once its end is known: headers with Content-Length, a complete chunked
// body, or (at_eof) everything up to the end of the connection. Nothing while more is needed;
// `error` is set when it never will be.
std::optional<HttpResponse> parse_http_response(const std::string& raw, bool at_eof, std::string* error, int* status);

}  // namespace kb
