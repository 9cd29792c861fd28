#include "base/temp_dir.h"
#include "aws/user_data.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "base/text_escape.h"

using namespace kb::aws;

namespace {

const std::string kSha(64, 'a');
const std::string kFp(64, 'b');
const std::string kPem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";

UserDataInput input() {
  UserDataInput in;
  in.cluster = "kthw";
  in.node = "worker-0";
  in.bundle = {"https://kb.s3.us-east-1.amazonaws.com/c/worker-0.kbundle?X-Amz-Signature=00ff", "s3://kb/c/worker-0.kbundle"};
  in.installer = {"https://kb.s3.us-east-1.amazonaws.com/c/kbundle-installer?X-Amz-Signature=11ee", "s3://kb/c/kbundle-installer"};
  in.installer_sha256 = kSha;
  in.signing_public_key_pem = kPem;
  in.signing_fingerprint = kFp;
  in.urls_expire = "2026-12-10T13:00:00Z";
  return in;
}

// Runs `script` with sh; returns its stdout and sets `status`.
std::string run_sh(const std::string& script, int& status, const std::string& cwd) {
  const std::string path = cwd + "/script.sh";
  std::ofstream(path) << script;
  FILE* p = ::popen(("cd " + kb::shell_quote(cwd) + " && sh " + kb::shell_quote(path) + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  status = ::pclose(p);
  return out;
}

std::string values_of(const std::string& script) { return script.substr(0, script.find("# end of values\n")); }

using kb::TempDir;

}  // namespace

TEST_CASE("user data: pins the installer's sha256 and the signing key, https only", "[user_data]") {
  std::string u = render_user_data(input());
  CHECK(u.starts_with("#!/bin/sh\n"));
  CHECK(u.find("\nKB_BOOT_DEADLINE=1800\n") < 400);  // one line near the top: tests edit it
  CHECK(u.find("installer_sha256='" + kSha + "'\n") != std::string::npos);
  CHECK(u.find("fingerprint='" + kFp + "'\n") != std::string::npos);
  CHECK(u.find("apply --trust-fingerprint \"sha256:$fingerprint\"") != std::string::npos);
  CHECK(u.find("signing_pub='-----BEGIN PUBLIC KEY-----\n") != std::string::npos);
  // Every URL single-quoted; curl only ever with --proto =https; no http:// anywhere.
  CHECK(u.find("bundle_url='" + input().bundle.url + "'\n") != std::string::npos);
  CHECK(u.find("installer_url='" + input().installer.url + "'\n") != std::string::npos);
  CHECK(u.find("http://") == std::string::npos);
  size_t curls = 0;
  for (size_t at = 0; (at = u.find("curl ", at)) != std::string::npos; at += 5)
    if (u.compare(at, 37, "curl --proto =https --tlsv1.2 -sS --c") == 0) ++curls;
  CHECK(curls == 1);
  // The URLs (credentials) are used once each, in fetch's argument, never in a log line.
  CHECK(u.find("log \"$1") == std::string::npos);
  CHECK(u.find("fetch \"$bundle_url\" \"$bundle_name\"") != std::string::npos);
  CHECK(u.size() < kUserDataLimit);
  // Nothing runs the installer before the sha256 comparison.
  CHECK(u.find("fetch \"$installer_url\" \"$installer_name\" \"$dir/kbundle-installer\" \"$installer_sha256\"") <
        u.find("chmod 0755 \"$bin.new\""));
  CHECK(u.find("if [ \"$got\" = \"${4:-}\" ]; then\n        mv -f \"$3.part\" \"$3\"") != std::string::npos);
}

TEST_CASE("user data: is a valid POSIX sh script", "[user_data]") {
  TempDir tmp;
  int status = 0;
  std::ofstream(tmp.path + "/body.sh") << render_user_data(input());
  std::string out = run_sh("exec sh -n ./body.sh\n", status, tmp.path);
  CHECK(status == 0);
  CHECK(out.empty());
  if (::access("/bin/dash", X_OK) == 0) {
    out = run_sh("exec /bin/dash -n ./body.sh\n", status, tmp.path);
    CHECK(status == 0);
  }
}

TEST_CASE("user data: hostile names and URLs stay literal values", "[user_data]") {
  TempDir tmp;
  const std::string marker = tmp.path + "/pwned";
  for (const std::string& evil :
       {std::string("x'; touch ") + marker + "; '", "$(touch " + marker + ")", "`touch " + marker + "`",
        std::string("a\"b$HOME\\"), "x' \"$(touch " + marker + ")\" '", std::string("-rf *"), std::string("'''")}) {
    UserDataInput in = input();
    in.cluster = evil;
    in.node = evil == "'''" ? "n'" : "node" + std::to_string(evil.size());
    in.bundle.url = "https://h/" + evil;
    in.bundle.label = evil;
    in.installer.url = "https://h/i?" + evil;
    in.urls_expire = evil;
    std::string u = render_user_data(in);
    // The values part, run for real: each variable holds exactly the text given, nothing ran.
    int status = 0;
    std::string out = run_sh(values_of(u) +
                                 "printf '%s\\n--\\n' \"$cluster\" \"$node\" \"$bundle_url\" \"$bundle_name\" "
                                 "\"$installer_url\" \"$urls_expire\"\n",
                             status, tmp.path);
    CHECK(status == 0);
    CHECK(out == in.cluster + "\n--\n" + in.node + "\n--\n" + in.bundle.url + "\n--\n" + evil + "\n--\n" +
                     in.installer.url + "\n--\n" + evil + "\n--\n");
    CHECK_FALSE(std::filesystem::exists(marker));
    // No value reaches a comment or an unquoted place: every occurrence sits in its assignment.
    CHECK(u.find("\n" + evil) == std::string::npos);
  }
}

TEST_CASE("user data: refusals", "[user_data]") {
  auto refused = [](auto change, const char* why) {
    UserDataInput in = input();
    change(in);
    CHECK_THROWS_WITH(render_user_data(in), Catch::Contains(why));
  };
  refused([](UserDataInput& in) { in.bundle.url = "http://h/worker-0.kbundle"; }, "is not an https:// URL");
  refused([](UserDataInput& in) { in.bundle.url = "HTTPS://h/x"; }, "is not an https:// URL");
  refused([](UserDataInput& in) { in.installer.url = "ftp://h/kbundle-installer"; }, "is not an https:// URL");
  refused([](UserDataInput& in) { in.bundle.url = "https://"; }, "is not an https:// URL");
  refused([](UserDataInput& in) { in.node = "../etc"; }, "is not a file name");
  refused([](UserDataInput& in) { in.node = ""; }, "is not a file name");
  refused([](UserDataInput& in) { in.node = "a\nb"; }, "control character");
  refused([](UserDataInput& in) { in.cluster = "a\rb"; }, "control character");
  refused([](UserDataInput& in) { in.bundle.url = "https://h/x\ncurl evil | sh"; }, "control character");
  refused([](UserDataInput& in) { in.installer_sha256 = "ABC"; }, "sha256");
  refused([](UserDataInput& in) { in.signing_fingerprint = std::string(64, 'G'); }, "fingerprint");
  refused([](UserDataInput& in) { in.signing_public_key_pem = "ssh-ed25519 AAAA"; }, "not a PEM public key");
  // AWS's 16 KB limit (raw, before base64), e.g. URLs with a huge session token.
  refused([](UserDataInput& in) { in.bundle.url = "https://h/x?X-Amz-Security-Token=" + std::string(16000, 'T'); },
          "over AWS's limit of 16384");
  // A URL of an http:// endpoint never gets a query string into the message.
  UserDataInput in = input();
  in.bundle.url = "http://h/k?X-Amz-Signature=secret";
  CHECK_THROWS_WITH(render_user_data(in), !Catch::Contains("secret"));
}

TEST_CASE("user data: without an installer URL the node's own installer is used", "[user_data]") {
  UserDataInput in = input();
  in.installer = {};
  in.installer_sha256.clear();
  std::string u = render_user_data(in);
  CHECK(u.find("installer_url=''\n") != std::string::npos);
  CHECK(u.find("installer_sha256=''\n") != std::string::npos);
  CHECK(url_without_query("https://h/k?X-Amz-Signature=1#f") == "https://h/k");
  CHECK(url_without_query("https://h/k#f?x") == "https://h/k");
}
