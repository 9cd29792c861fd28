#include "aws/http.h"

#include <curl/curl.h>

#include "aws/curl_perform.h"
#include "base/error.h"

namespace kb::aws {

namespace {

size_t collect(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

class CurlHttpClient : public HttpClient {
 public:
  CurlHttpClient() {
    static const CURLcode init = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (init != CURLE_OK) throw Error(std::string("libcurl: ") + curl_easy_strerror(init));
  }

  HttpResponse post(const HttpRequest& r) override {
    HttpResponse out;
    CURL* curl = curl_easy_init();
    if (!curl) throw Error("libcurl: cannot create a handle");
    curl_slist* headers = nullptr;
    for (const auto& h : r.headers) headers = curl_slist_append(headers, h.c_str());
    curl_easy_setopt(curl, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, r.body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(r.body.size()));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, r.sigv4.c_str());
    curl_easy_setopt(curl, CURLOPT_USERNAME, r.access_key_id.c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, r.secret_access_key.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out.body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    CurlOutcome done = perform_and_free(curl, headers, "kbundle-aws");
    out.status = done.status;
    out.transport_error = std::move(done.transport_error);
    return out;
  }
};

}  // namespace

std::unique_ptr<HttpClient> make_curl_http_client() { return std::make_unique<CurlHttpClient>(); }

}  // namespace kb::aws
