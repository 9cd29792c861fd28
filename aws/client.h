#pragma once
// AWS Query API calls (EC2 2016-11-15, ELBv2 2015-12-01): form-encoded POSTs signed with SigV4,
// retried on throttling and server errors with capped exponential backoff and full jitter,
// paginated by NextToken (EC2) or NextMarker (ELBv2). AWS errors surface with their code and
// message unchanged.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "aws/config.h"
#include "aws/http.h"
#include "aws/xml.h"
#include "base/error.h"

namespace kb::aws {

using Params = std::vector<std::pair<std::string, std::string>>;

// An error answered by AWS: "<service> <Action>: <Code>: <Message>".
class AwsError : public Error {
 public:
  AwsError(std::string service_action, std::string code, std::string message, long status);
  const std::string& code() const { return code_; }
  const std::string& aws_message() const { return message_; }
  long status() const { return status_; }

 private:
  std::string code_, message_;
  long status_;
};

// No HTTP answer to a call that is not safe to send twice (a create without a client token):
// the request may have been carried out. The caller looks for what it made before sending again.
class LostAnswer : public Error {
 public:
  using Error::Error;
};

struct RetryPolicy {
  int max_attempts = 8;
  std::chrono::milliseconds base{250};
  std::chrono::milliseconds cap{20000};

  // Throttling codes, 429, 5xx and transport failures are worth another try.
  bool retryable(long status, const std::string& code) const;
  // Full jitter: uniform in [0, min(cap, base * 2^attempt)] using `random` (attempt counts from 0).
  std::chrono::milliseconds delay(int attempt, uint64_t random) const;
};

// Form encoding of one value: RFC 3986 unreserved characters kept, space as '+', the rest %XX.
std::string form_encode(const std::string& s);
// "Action=...&Version=...&k=v..." in the given order.
std::string form_body(const std::string& action, Service s, const Params& params);
// Code and message of an error document (EC2's <Response><Errors> or ELBv2's <ErrorResponse>).
std::pair<std::string, std::string> parse_error(const std::string& body);

class Client {
 public:
  using Sleeper = std::function<void(std::chrono::milliseconds)>;
  using Random = std::function<uint64_t()>;

  Client(AwsConfig config, HttpClient& http, RetryPolicy policy = {}, Sleeper sleep = {}, Random random = {});

  // One call; the parsed response document. Throws AwsError, or kb::Error for transport problems.
  // With `resend_unanswered` false a transport failure is not retried: it throws LostAnswer.
  XmlElement call(Service s, const std::string& action, const Params& params, bool resend_unanswered = true);
  // Every page of a paginated call, in order.
  std::vector<XmlElement> call_all(Service s, const std::string& action, const Params& params);

  const AwsConfig& config() const { return config_; }
  int requests() const { return requests_; }  // HTTP requests sent, retries included

 private:
  AwsConfig config_;
  HttpClient& http_;
  RetryPolicy policy_;
  Sleeper sleep_;
  Random random_;
  int requests_ = 0;
};

}  // namespace kb::aws
