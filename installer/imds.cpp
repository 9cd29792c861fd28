#include "installer/imds.h"

#include <arpa/inet.h>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <variant>

#include "base/error.h"
#include "https/http_client.h"

namespace kb::installer {

namespace {

constexpr size_t kMaxAnswer = 64 * 1024;

// How errors name the service.
std::string service_at(const ImdsEndpoint& ep) { return "instance metadata service " + ep.ip + ":" + std::to_string(ep.port); }

// One request to the metadata service; returns the body of a 200 answer, trailing white space
// removed. Each step (connect, send, each read) may take `timeout`; errors name the service, the
// step and, for `what`, the request.
std::string ask(const ImdsEndpoint& ep, std::chrono::milliseconds timeout, const std::string& request, const std::string& what) {
  const std::string where = service_at(ep);
  sockaddr_in v4{};
  if (::inet_pton(AF_INET, ep.ip.c_str(), &v4.sin_addr) != 1) throw Error(where + ": not an IPv4 address");
  HttpTarget target;
  target.address = *ip_address(ep.ip, ep.port);
  HttpLimits limits;
  limits.step_timeout = timeout;
  limits.max_response = kMaxAnswer;
  HttpResult result = http_exchange(target, request, limits);
  if (auto* f = std::get_if<HttpFailure>(&result)) {
    using Step = HttpFailure::Step;
    auto cause = [&](const char* step) { return where + ": " + step + ": " + std::strerror(f->err); };
    auto silent = [&](const char* step) {
      return where + ": " + step + " within " + std::to_string(timeout.count()) + " ms (not on EC2, or the metadata service is off)";
    };
    switch (f->step) {
      case Step::Socket: throw Error(cause("socket"));
      case Step::Connect: throw Error(f->timed_out ? silent("cannot connect") : cause("cannot connect"));
      case Step::Tls: break;  // plain HTTP: no TLS step
      case Step::Send: throw Error(f->timed_out ? silent("cannot send") : cause("cannot send"));
      case Step::Receive: throw Error(f->timed_out ? silent("no answer") : cause("cannot read the answer"));
      case Step::TooLarge: throw Error(where + ": answer too long");
      case Step::Response: break;
    }
    // Not a complete HTTP answer: a status line that says why, or none at all.
    if (f->status == 0) throw Error(where + ": " + what + ": not an HTTP answer");
    if (f->status != 200) throw Error(where + ": " + what + ": HTTP " + std::to_string(f->status));
    throw Error(where + ": " + what + ": answer has no body");
  }
  const HttpResponse& r = std::get<HttpResponse>(result);
  if (r.status != 200) throw Error(where + ": " + what + ": HTTP " + std::to_string(r.status));
  std::string body = r.body;
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r' || body.back() == ' ')) body.pop_back();
  return body;
}

}  // namespace

ImdsEndpoint imds_endpoint(const std::string& override_text, bool* overridden) {
  ImdsEndpoint ep;
  if (overridden) *overridden = false;
  if (override_text.empty()) return ep;
  // The messages name the variable tests set it with (Hooks::imds_endpoint).
  const std::string& s = override_text;
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
  HttpRequest put;
  put.method = "PUT";
  put.target = "/latest/api/token";
  put.host = "169.254.169.254";
  put.headers = {{"X-aws-ec2-metadata-token-ttl-seconds", "60"}};
  std::string token = ask(ep, timeout, format_http_request(put), "IMDSv2 token");
  if (token.empty() || token.find_first_of("\r\n") != std::string::npos) throw Error("instance metadata service: empty or malformed token");
  HttpRequest get;
  get.target = "/latest/meta-data/instance-id";
  get.host = put.host;
  get.headers = {{"X-aws-ec2-metadata-token", token}};
  std::string request;
  try {
    request = format_http_request(get);
  } catch (const Error&) {  // a control character in the token
    throw Error("instance metadata service: empty or malformed token");
  }
  std::string id = ask(ep, timeout, request, "instance-id");
  if (id.rfind("i-", 0) != 0 || id.size() > 34)
    throw Error(service_at(ep) + ": instance-id answer is not an instance id");
  return id;
}

}  // namespace kb::installer
