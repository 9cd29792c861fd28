#pragma once
// The one way AWS requests leave the process: an HTTP POST, signed with SigV4 by libcurl.
// Behind an interface so tests run without a server.

#include <memory>
#include <string>
#include <vector>

namespace kb::aws {

struct HttpRequest {
  std::string url;
  std::string body;                  // form-encoded
  std::vector<std::string> headers;  // "Name: value"
  std::string sigv4;                 // "aws:amz:REGION:SERVICE" for CURLOPT_AWS_SIGV4
  std::string access_key_id;
  std::string secret_access_key;     // given to curl only; never logged
};

struct HttpResponse {
  long status = 0;              // 0: no HTTP response (transport_error says why)
  std::string body;
  std::string transport_error;  // curl's message when the request did not complete
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  virtual HttpResponse post(const HttpRequest& request) = 0;
};

// libcurl: connect timeout 10 s, whole request 60 s, TLS verified.
std::unique_ptr<HttpClient> make_curl_http_client();

}  // namespace kb::aws
