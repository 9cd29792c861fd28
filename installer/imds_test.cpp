// The IMDSv2 client against a loopback server that answers from a script: the happy path
// (token, then instance-id, both with the headers IMDSv2 wants), and every way it must fail.
#include "installer/imds.h"

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "base/error.h"

using namespace std::chrono_literals;
using kb::installer::ImdsEndpoint;
using kb::installer::imds_instance_id;

namespace {

// Accepts one connection per scripted answer; records each request. An empty answer: say nothing.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::vector<std::string> answers) : answers_(std::move(answers)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    socklen_t len = sizeof sa;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    REQUIRE(::listen(fd_, 4) == 0);
    thread_ = std::thread([this] {
      for (const auto& answer : answers_) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        char buf[4096];
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        requests_.emplace_back(buf, n > 0 ? static_cast<size_t>(n) : 0);
        if (answer.empty()) std::this_thread::sleep_for(600ms);
        else ::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
        ::close(c);
      }
    });
  }
  ~ScriptedServer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  ImdsEndpoint endpoint() const { return {"127.0.0.1", port_}; }
  const std::vector<std::string>& requests() const { return requests_; }

 private:
  std::vector<std::string> answers_, requests_;
  int fd_ = -1, port_ = 0;
  std::thread thread_;
};

std::string ok(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

TEST_CASE("imds: a token first, then the instance id with that token", "[imds]") {
  std::string id;
  std::vector<std::string> seen;
  {
    ScriptedServer s({ok("tok-123"), ok("i-0123456789abcdef0\n")});
    id = imds_instance_id(s.endpoint(), 2000ms);
    seen = s.requests();
  }
  CHECK(id == "i-0123456789abcdef0");
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].rfind("PUT /latest/api/token HTTP/1.1\r\n", 0) == 0);
  CHECK(seen[0].find("\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n") != std::string::npos);
  CHECK(seen[1].rfind("GET /latest/meta-data/instance-id HTTP/1.1\r\n", 0) == 0);
  CHECK(seen[1].find("\r\nX-aws-ec2-metadata-token: tok-123\r\n") != std::string::npos);
  CHECK(seen[1].find("\r\nHost: 169.254.169.254\r\n") != std::string::npos);
}

TEST_CASE("imds: refusals, garbage and silence are errors that say which step", "[imds]") {
  {
    ScriptedServer s({"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"});
    CHECK_THROWS_WITH(imds_instance_id(s.endpoint(), 2000ms), Catch::Contains("IMDSv2 token: HTTP 401"));
  }
  {
    ScriptedServer s({ok("tok"), ok("<html>not an id</html>")});
    CHECK_THROWS_WITH(imds_instance_id(s.endpoint(), 2000ms), Catch::Contains("not an instance id"));
  }
  {
    ScriptedServer s({"SSH-2.0-OpenSSH\r\n"});
    CHECK_THROWS_WITH(imds_instance_id(s.endpoint(), 2000ms), Catch::Contains("not an HTTP answer"));
  }
  {
    // The token's answer promises 40 bytes and the connection closes after 3.
    ScriptedServer s({"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\ntok"});
    CHECK_THROWS_WITH(imds_instance_id(s.endpoint(), 2000ms), Catch::Contains("IMDSv2 token: answer has no body"));
  }
  {
    // Bytes after Content-Length are not part of the id.
    ScriptedServer s({ok("tok"), ok("i-0123456789abcdef0") + "i-0fffffffffffffff0"});
    CHECK(imds_instance_id(s.endpoint(), 2000ms) == "i-0123456789abcdef0");
  }
  {
    ScriptedServer s({""});  // accepts, never answers
    CHECK_THROWS_WITH(imds_instance_id(s.endpoint(), 200ms), Catch::Contains("no answer within 200 ms"));
  }
  // Nothing listening at all.
  int port;
  {
    ScriptedServer s({});
    port = s.endpoint().port;
  }
  CHECK_THROWS_WITH(imds_instance_id({"127.0.0.1", port}, 500ms), Catch::Contains("cannot connect"));
}
