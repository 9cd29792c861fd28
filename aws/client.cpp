#include "aws/client.h"

#include <random>
#include <thread>

namespace kb::aws {

AwsError::AwsError(std::string service_action, std::string code, std::string message, long status)
    : Error(service_action + ": " + code + ": " + message), code_(std::move(code)), message_(std::move(message)),
      status_(status) {}

bool RetryPolicy::retryable(long status, const std::string& code) const {
  static const char* const kCodes[] = {"Throttling",       "ThrottlingException", "RequestLimitExceeded",
                                       "RequestThrottled", "TooManyRequestsException", "RequestThrottledException",
                                       "InternalError",    "InternalFailure",     "ServiceUnavailable",
                                       "Unavailable",      "PriorRequestNotComplete"};
  for (const char* c : kCodes)
    if (code == c) return true;
  return status == 0 || status == 429 || status >= 500;
}

std::chrono::milliseconds RetryPolicy::delay(int attempt, uint64_t random) const {
  int64_t ceiling = base.count();
  for (int i = 0; i < attempt && ceiling < cap.count(); ++i) ceiling *= 2;
  ceiling = std::min<int64_t>(ceiling, cap.count());
  return std::chrono::milliseconds(static_cast<int64_t>(random % static_cast<uint64_t>(ceiling + 1)));
}

std::string form_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else if (c == ' ') {
      out += '+';  // as botocore sends it (urlencode with quote_plus); AWS reads both
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string form_body(const std::string& action, Service s, const Params& params) {
  std::string body = "Action=" + form_encode(action) + "&Version=" + api_version(s);
  for (const auto& [k, v] : params) body += "&" + form_encode(k) + "=" + form_encode(v);
  return body;
}

std::pair<std::string, std::string> parse_error(const std::string& body) {
  try {
    XmlElement doc = parse_xml(body);
    if (const XmlElement* e = doc.descendant("Error")) return {e->get("Code"), e->get("Message")};
  } catch (const Error&) {
  }
  return {};
}

Client::Client(AwsConfig config, HttpClient& http, RetryPolicy policy, Sleeper sleep, Random random)
    : config_(std::move(config)), http_(http), policy_(policy), sleep_(std::move(sleep)), random_(std::move(random)) {
  if (!sleep_) sleep_ = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  if (!random_) {
    random_ = [engine = std::mt19937_64(std::random_device{}())]() mutable { return engine(); };
  }
}

XmlElement Client::call(Service s, const std::string& action, const Params& params, bool resend_unanswered) {
  const std::string what = std::string(s == Service::Ec2 ? "ec2 " : "elbv2 ") + action;
  HttpRequest req;
  req.url = config_.endpoint(s) + "/";
  req.body = form_body(action, s, params);
  req.headers = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8", "Accept: text/xml"};
  if (!config_.credentials.session_token.empty())
    req.headers.push_back("X-Amz-Security-Token: " + config_.credentials.session_token);
  req.sigv4 = "aws:amz:" + config_.region + ":" + signing_name(s);
  req.access_key_id = config_.credentials.access_key_id;
  req.secret_access_key = config_.credentials.secret_access_key;

  for (int attempt = 0;; ++attempt) {
    ++requests_;
    HttpResponse resp = http_.post(req);
    std::string code, message;
    if (resp.status >= 200 && resp.status < 300) {
      try {
        return parse_xml(resp.body);
      } catch (const Error& e) {
        throw Error(what + ": " + e.what());
      }
    }
    if (resp.status == 0 && !resend_unanswered)
      throw LostAnswer(what + ": " + config_.endpoint(s) + ": no answer (" + resp.transport_error +
                       "); it may have been carried out");
    if (resp.status != 0) std::tie(code, message) = parse_error(resp.body);
    bool again = policy_.retryable(resp.status, code) && attempt + 1 < policy_.max_attempts;
    if (!again) {
      if (resp.status == 0)
        throw Error(what + ": " + config_.endpoint(s) + ": " + resp.transport_error +
                    (attempt > 0 ? " (after " + std::to_string(attempt + 1) + " attempts)" : ""));
      if (code.empty())
        throw AwsError(what, "HTTP " + std::to_string(resp.status),
                       resp.body.substr(0, 200) + (resp.body.size() > 200 ? "..." : ""), resp.status);
      throw AwsError(what, code, message, resp.status);
    }
    sleep_(policy_.delay(attempt, random_()));
  }
}

std::vector<XmlElement> Client::call_all(Service s, const std::string& action, const Params& params) {
  std::vector<XmlElement> pages;
  std::string token;
  for (int page = 0; page < 10000; ++page) {
    Params p = params;
    if (!token.empty()) p.emplace_back(s == Service::Ec2 ? "NextToken" : "Marker", token);
    pages.push_back(call(s, action, p));
    const XmlElement& doc = pages.back();
    // EC2: <XResponse><nextToken>; ELBv2: <XResponse><XResult><NextMarker>.
    const XmlElement* next = nullptr;
    if (s == Service::Ec2) next = doc.child("nextToken");
    else if (const XmlElement* result = doc.child(action + "Result")) next = result->child("NextMarker");
    std::string following = next ? next->text : std::string();
    if (following.empty() || following == token) break;
    token = following;
  }
  return pages;
}

}  // namespace kb::aws
