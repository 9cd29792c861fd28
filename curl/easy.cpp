#include "curl/easy.h"

namespace kb::curl {

void global_init() {
  static const CURLcode init = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (init != CURLE_OK) throw Error(std::string("libcurl: ") + curl_easy_strerror(init));
}

Easy::Easy() {
  global_init();
  handle_ = curl_easy_init();
  if (!handle_) throw Error("libcurl: cannot create a handle");
  set_defaults();
}

Easy::~Easy() { curl_easy_cleanup(handle_); }

void Easy::reset() {
  curl_easy_reset(handle_);
  set_defaults();
}

void Easy::set_defaults() {
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_ERRORBUFFER, error_);
}

void http_defaults(Easy& easy, const char* user_agent, long connect_timeout_seconds) {
  easy.set(CURLOPT_PROTOCOLS_STR, "http,https");
  easy.set(CURLOPT_CONNECTTIMEOUT, connect_timeout_seconds);
  easy.set(CURLOPT_USERAGENT, user_agent);
}

namespace {

size_t append_to_string(char* data, size_t size, size_t count, void* body) {
  static_cast<std::string*>(body)->append(data, size * count);
  return size * count;
}

}  // namespace

void collect_body(Easy& easy, std::string* body) {
  easy.set(CURLOPT_WRITEFUNCTION, append_to_string);
  easy.set(CURLOPT_WRITEDATA, body);
}

Slist::Slist(const std::vector<std::string>& lines) {
  for (const auto& line : lines) append(line);
}

Slist::~Slist() { curl_slist_free_all(list_); }

void Slist::append(const std::string& line) {
  curl_slist* grown = curl_slist_append(list_, line.c_str());
  if (!grown) throw Error("libcurl: cannot allocate a list entry");
  list_ = grown;
}

Result perform(Easy& easy) {
  easy.error_[0] = '\0';  // the message, if any, is this transfer's
  Result out;
  out.code = curl_easy_perform(easy.handle_);
  curl_easy_getinfo(easy.handle_, CURLINFO_RESPONSE_CODE, &out.status);
  if (out.code != CURLE_OK) out.error = easy.error_[0] ? easy.error_ : curl_easy_strerror(out.code);
  return out;
}

}  // namespace kb::curl
