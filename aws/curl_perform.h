#pragma once
// What every AWS request made with libcurl shares (the Query API client and S3): the error buffer,
// a 10 s connect time-out, no signals, http(s) only, the user agent; then perform, the status or the
// transport error, and freeing the handle and its header list. Internal to aws/.

#include <curl/curl.h>

#include <string>

namespace kb::aws {

struct CurlOutcome {
  long status = 0;              // 0: no HTTP response
  std::string transport_error;  // curl's message when the request did not complete
};

inline CurlOutcome perform_and_free(CURL* curl, curl_slist* headers, const char* user_agent) {
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_USERAGENT, user_agent);
  CurlOutcome out;
  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status);
  else out.transport_error = error[0] ? error : curl_easy_strerror(rc);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return out;
}

}  // namespace kb::aws
