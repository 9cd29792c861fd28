#include "aws/http.h"

#include "curl/easy.h"

namespace kb::aws {

namespace {

class CurlHttpClient : public HttpClient {
 public:
  CurlHttpClient() { curl::global_init(); }

  HttpResponse post(const HttpRequest& r) override {
    HttpResponse out;
    curl::Easy e;
    curl::Slist headers(r.headers);
    e.set(CURLOPT_URL, r.url.c_str());
    e.set(CURLOPT_POST, 1L);
    e.set(CURLOPT_POSTFIELDS, r.body.c_str());
    e.set(CURLOPT_POSTFIELDSIZE, static_cast<long>(r.body.size()));
    e.set(CURLOPT_HTTPHEADER, headers.get());
    e.set(CURLOPT_AWS_SIGV4, r.sigv4.c_str());
    e.set(CURLOPT_USERNAME, r.access_key_id.c_str());
    e.set(CURLOPT_PASSWORD, r.secret_access_key.c_str());
    curl::collect_body(e, &out.body);
    e.set(CURLOPT_TIMEOUT, 60L);
    curl::http_defaults(e, "kbundle-aws", 10L);
    curl::Result done = curl::perform(e);
    out.status = done.completed_status();
    out.transport_error = std::move(done.error);
    return out;
  }
};

}  // namespace

std::unique_ptr<HttpClient> make_curl_http_client() { return std::make_unique<CurlHttpClient>(); }

}  // namespace kb::aws
