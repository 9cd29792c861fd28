#pragma once
// libcurl for every client of ours (aws/, binaries/, publish/): one owner of an easy handle with the
// defaults they all share, one owner of a curl_slist, and one perform that turns the outcome into
// a CURLcode, an HTTP status and a message. What to retry and how to word an error stays with the
// caller: a download retries a 503, SFTP explains a host-key refusal.

#include <curl/curl.h>

#include <string>
#include <vector>

#include "base/error.h"

namespace kb::curl {

// curl_global_init, once per process. Throws kb::Error "libcurl: <why>".
void global_init();

class Easy;
struct Result;
// Runs the transfer set up on `easy`. Never throws: what a failure means is the caller's to decide.
Result perform(Easy& easy);

// An easy handle, cleaned up with the object. Every handle, and every reset(), gets the defaults all
// callers want: no signals (handles run on worker threads) and the error buffer perform() reads.
// Not movable: libcurl keeps the buffer's address.
class Easy {
 public:
  Easy();  // calls global_init(); throws kb::Error "libcurl: cannot create a handle"
  ~Easy();
  Easy(const Easy&) = delete;
  Easy& operator=(const Easy&) = delete;

  CURL* get() const { return handle_; }
  // Forgets every option (curl_easy_reset keeps the connection), then sets the defaults again.
  void reset();
  // curl_easy_setopt; libcurl reports a bad option at perform time.
  template <typename T>
  void set(CURLoption option, T value) {
    curl_easy_setopt(handle_, option, value);
  }

 private:
  friend Result perform(Easy& easy);
  void set_defaults();

  CURL* handle_;
  char error_[CURL_ERROR_SIZE] = {};
};

// Plain HTTP(S) only, a connect time-out and our user agent: what every HTTP client of ours sets.
void http_defaults(Easy& easy, const char* user_agent, long connect_timeout_seconds);

// Appends what the transfer receives to `*body`.
void collect_body(Easy& easy, std::string* body);

// A curl_slist (request headers, SFTP quote commands), freed with the object.
class Slist {
 public:
  Slist() = default;
  explicit Slist(const std::vector<std::string>& lines);
  ~Slist();
  Slist(const Slist&) = delete;
  Slist& operator=(const Slist&) = delete;

  void append(const std::string& line);  // throws kb::Error when libcurl cannot allocate
  curl_slist* get() const { return list_; }

 private:
  curl_slist* list_ = nullptr;
};

struct Result {
  CURLcode code = CURLE_OK;
  long status = 0;    // the last HTTP response code; 0 when no response arrived
  std::string error;  // when code != CURLE_OK: libcurl's detailed message, or its generic one
  bool ok() const { return code == CURLE_OK; }
  // The HTTP status of a completed transfer; 0 when it failed, for callers that read 0 as "no response".
  long completed_status() const { return ok() ? status : 0; }
  // kb::Error "<what>: <error>", the project's form for a failed transfer.
  Error to_error(const std::string& what) const { return Error(what + ": " + error); }
};

}  // namespace kb::curl
