#include "curl/easy.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdlib.h>
#include <unistd.h>

using namespace kb;

namespace {

std::string temp_file(const std::string& content) {
  std::string path = (std::filesystem::temp_directory_path() / "kb-curl-test.XXXXXX").string();
  int fd = ::mkstemp(path.data());
  REQUIRE(fd >= 0);
  ::close(fd);
  std::ofstream(path) << content;
  return path;
}

// Reads `url` with `e` as it is set up; the body goes to `*body`.
curl::Result read(curl::Easy& e, const std::string& url, std::string* body) {
  e.set(CURLOPT_URL, url.c_str());
  curl::collect_body(e, body);
  return curl::perform(e);
}

}  // namespace

TEST_CASE("perform reports success and the transfer's data", "[curl]") {
  std::string path = temp_file("hello");
  curl::Easy e;
  std::string got;
  curl::Result r = read(e, "file://" + path, &got);
  std::filesystem::remove(path);
  CHECK(r.ok());
  CHECK(r.error.empty());
  CHECK(r.completed_status() == r.status);
  CHECK(got == "hello");
}

TEST_CASE("perform names a failure with libcurl's message", "[curl]") {
  curl::Easy e;
  std::string got;
  curl::Result r = read(e, "file:///nonexistent/kb-curl-test", &got);
  CHECK_FALSE(r.ok());
  CHECK(r.completed_status() == 0);
  CHECK(r.code == CURLE_FILE_COULDNT_READ_FILE);
  CHECK_FALSE(r.error.empty());
  CHECK(std::string(r.to_error("file:///nonexistent/kb-curl-test").what()).rfind("file:///nonexistent/kb-curl-test: ", 0) == 0);
}

TEST_CASE("http_defaults allow only http and https; reset forgets them", "[curl]") {
  std::string path = temp_file("x");
  curl::Easy e;
  curl::http_defaults(e, "kbundle-test", 5L);
  std::string got;
  CHECK(read(e, "file://" + path, &got).code == CURLE_UNSUPPORTED_PROTOCOL);
  e.reset();
  curl::Result r = read(e, "file://" + path, &got);
  std::filesystem::remove(path);
  CHECK(r.ok());
  CHECK(r.error.empty());  // the buffer was cleared for this transfer
  CHECK(got == "x");
}

TEST_CASE("Slist keeps every line in order", "[curl]") {
  curl::Slist list({"a: 1", "b: 2"});
  list.append("c: 3");
  std::vector<std::string> lines;
  for (curl_slist* p = list.get(); p; p = p->next) lines.push_back(p->data);
  CHECK(lines == std::vector<std::string>{"a: 1", "b: 2", "c: 3"});
  CHECK(curl::Slist().get() == nullptr);
}
