#include "installer/imds.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/error.h"

namespace kb::installer {

namespace {

class Socket {
 public:
  Socket(const ImdsEndpoint& ep, std::chrono::milliseconds timeout) : where_("instance metadata service " + ep.ip + ":" + std::to_string(ep.port)) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(ep.port));
    if (::inet_pton(AF_INET, ep.ip.c_str(), &sa.sin_addr) != 1) throw Error(where_ + ": not an IPv4 address");
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) throw_errno(where_ + ": socket");
    timeout_ms_ = static_cast<int>(timeout.count());
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      if (errno != EINPROGRESS) fail("cannot connect");
      wait(POLLOUT, "cannot connect");
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        errno = err;
        fail("cannot connect");
      }
    }
  }
  ~Socket() { ::close(fd_); }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // Sends one request and reads the whole answer (the request asks the server to close).
  std::string exchange(const std::string& request) {
    size_t sent = 0;
    while (sent < request.size()) {
      wait(POLLOUT, "cannot send");
      ssize_t n = ::send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) fail("cannot send");
      if (n > 0) sent += static_cast<size_t>(n);
    }
    std::string answer;
    char buf[4096];
    for (;;) {
      wait(POLLIN, "no answer");
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n < 0) fail("cannot read the answer");
      if (n == 0) return answer;
      answer.append(buf, static_cast<size_t>(n));
      if (answer.size() > 64 * 1024) throw Error(where_ + ": answer too long");
    }
  }
  const std::string& where() const { return where_; }

 private:
  void wait(short events, const char* what) {
    pollfd p{fd_, events, 0};
    int r;
    do r = ::poll(&p, 1, timeout_ms_);
    while (r < 0 && errno == EINTR);
    if (r == 0) throw Error(where_ + ": " + what + " within " + std::to_string(timeout_ms_) + " ms (not on EC2, or the metadata service is off)");
    if (r < 0) fail(what);
  }
  [[noreturn]] void fail(const char* what) { throw_errno(where_ + ": " + what); }

  std::string where_;
  int fd_ = -1;
  int timeout_ms_ = 2000;
};

// Status line and body of an HTTP/1.x answer; chunked bodies are not expected (IMDS sends Content-Length).
std::string body_of(const std::string& answer, const std::string& where, const std::string& what) {
  size_t sp = answer.find(' ');
  if (answer.rfind("HTTP/1.", 0) != 0 || sp == std::string::npos || answer.size() < sp + 4)
    throw Error(where + ": " + what + ": not an HTTP answer");
  std::string status = answer.substr(sp + 1, 3);
  if (status != "200") throw Error(where + ": " + what + ": HTTP " + status);
  size_t end = answer.find("\r\n\r\n");
  if (end == std::string::npos) throw Error(where + ": " + what + ": answer has no body");
  std::string body = answer.substr(end + 4);
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r' || body.back() == ' ')) body.pop_back();
  return body;
}

}  // namespace

ImdsEndpoint imds_endpoint(bool* overridden) {
  ImdsEndpoint ep;
  if (overridden) *overridden = false;
  const char* env = std::getenv("KB_IMDS_ENDPOINT");
  if (!env || !*env) return ep;
  std::string s = env;
  size_t colon = s.rfind(':');
  if (colon == std::string::npos) throw Error("KB_IMDS_ENDPOINT=" + s + ": write it as IP:PORT");
  ep.ip = s.substr(0, colon);
  ep.port = std::atoi(s.c_str() + colon + 1);
  if (ep.port <= 0 || ep.port > 65535) throw Error("KB_IMDS_ENDPOINT=" + s + ": bad port");
  if (overridden) *overridden = true;
  return ep;
}

std::string imds_instance_id(const ImdsEndpoint& ep, std::chrono::milliseconds timeout) {
  // The Host header says 169.254.169.254 whatever address answers, as on EC2.
  const std::string host = "Host: 169.254.169.254\r\nConnection: close\r\n";
  std::string token;
  {
    Socket s(ep, timeout);
    token = body_of(s.exchange("PUT /latest/api/token HTTP/1.1\r\n" + host +
                               "X-aws-ec2-metadata-token-ttl-seconds: 60\r\nContent-Length: 0\r\n\r\n"),
                    s.where(), "IMDSv2 token");
  }
  if (token.empty() || token.find_first_of("\r\n") != std::string::npos) throw Error("instance metadata service: empty or malformed token");
  Socket s(ep, timeout);
  std::string id = body_of(s.exchange("GET /latest/meta-data/instance-id HTTP/1.1\r\n" + host +
                                      "X-aws-ec2-metadata-token: " + token + "\r\n\r\n"),
                           s.where(), "instance-id");
  if (id.rfind("i-", 0) != 0 || id.size() > 34) throw Error(s.where() + ": instance-id answer is not an instance id");
  return id;
}

}  // namespace kb::installer
