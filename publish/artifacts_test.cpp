#include "publish/artifacts.h"

#include <catch2/catch.hpp>

#include "base/text_escape.h"
#include "publish/progress.h"

using namespace kb;

TEST_CASE("artifacts: shell quoting", "[artifacts]") {
  CHECK(shell_quote("a b") == "'a b'");
  CHECK(shell_quote("it's") == "'it'\\''s'");
  CHECK(shell_quote("https://h/k?X-Amz-Date=1&X-Amz-Signature=ab") == "'https://h/k?X-Amz-Date=1&X-Amz-Signature=ab'");
}

TEST_CASE("artifacts: the command for a node checks, pins and applies", "[artifacts]") {
  PublishSet set;
  set.public_key_pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAabc=\n-----END PUBLIC KEY-----\n";
  set.fingerprint = std::string(64, 'f');
  Artifact b{"worker-0.kbundle", "/o/worker-0.kbundle", "worker-0", 3, 10, std::string(64, 'a')};
  std::string cmd = node_command(set, b, "/var/lib/kbundle/incoming", "curl -fsS -o 'worker-0.kbundle' 'URL'");
  CHECK(cmd ==
        "mkdir -p '/var/lib/kbundle/incoming' && cd '/var/lib/kbundle/incoming' && curl -fsS -o 'worker-0.kbundle' 'URL'"
        " && echo '" + std::string(64, 'a') + "  worker-0.kbundle' | sha256sum -c - && printf '%s\\n'"
        " '-----BEGIN PUBLIC KEY-----' 'MCowBQYDK2VwAyEAabc=' '-----END PUBLIC KEY-----' >bundle-signing.pub"
        " && kbundle-installer apply --trust-fingerprint sha256:" + std::string(64, 'f') + " 'worker-0.kbundle'");
}

TEST_CASE("artifacts: the installer beside a build tree's kbundle", "[artifacts]") {
  CHECK(default_installer_path("").empty());
  CHECK(default_installer_path("/nonexistent/cli/kbundle").empty());
}

TEST_CASE("progress: bar rendering", "[artifacts]") {
  CHECK(Progress::render("a.kbundle", 0, 1048576, 10) == "  a.kbundle [..........]   0%  0.0/1.0 MiB");
  CHECK(Progress::render("a.kbundle", 524288, 1048576, 10) == "  a.kbundle [#####.....]  50%  0.5/1.0 MiB");
  CHECK(Progress::render("a.kbundle", 2097152, 1048576, 10) == "  a.kbundle [##########] 100%  1.0/1.0 MiB");
}

TEST_CASE("node_flags: every {node} replaced, nothing else touched", "[artifacts]") {
  CHECK(kb::node_flags("--root /r/{node} --node {node}", "cp-1") == "--root /r/cp-1 --node cp-1");
  CHECK(kb::node_flags("", "cp-1").empty());
  CHECK(kb::node_flags("{node}{node}", "{node}") == "{node}{node}");  // a name holding the marker: no loop
  CHECK(kb::node_flags("{nod} {node", "x") == "{nod} {node");
}
