#include "binaries/checksums.h"

#include <catch2/catch.hpp>

#include "base/error.h"

using namespace kb;

namespace {
const std::string A(64, 'a');
const std::string B = std::string(63, 'b') + "c";
}  // namespace

TEST_CASE("published checksum files in every upstream style", "[checksums]") {
  struct Case {
    std::string text, asset, want;
  };
  const std::vector<Case> cases = {
      {A + "\n", "kubelet", A},                                              // dl.k8s.io: a bare hash
      {A, "crictl-v1.32.0-linux-amd64.tar.gz", A},                           // no newline
      {"  " + A + "  \n\n", "x", A},                                         // blank space around
      {std::string(64, 'A') + "\n", "x", A},                                 // upper case
      {A + "  etcd-v3.5.21-linux-amd64.tar.gz\n" + B + "  etcd-v3.5.21-linux-arm64.tar.gz\n",
       "etcd-v3.5.21-linux-amd64.tar.gz", A},                                // SHA256SUMS
      {B + "  runc.arm64\n" + A + "  runc.amd64\n", "runc.amd64", A},        // runc.sha256sum
      {A + " *containerd-2.0.4-linux-amd64.tar.gz\n", "containerd-2.0.4-linux-amd64.tar.gz", A},  // binary mode
      {A + "  ./bin/cni-plugins-linux-amd64-v1.6.2.tgz\n", "cni-plugins-linux-amd64-v1.6.2.tgz", A},
      {"# comment\nSHA256 (runc.amd64) = " + A + "\n", "runc.amd64", A},   // BSD style
      {A + "  x\n" + A + "  x\n", "x", A},                                   // the same twice is fine
  };
  for (const auto& c : cases) {
    INFO(c.text);
    CHECK(published_sha256(c.text, c.asset, "sum") == c.want);
  }
}

TEST_CASE("checksum files that publish nothing usable are refused", "[checksums]") {
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"", "x", "no sha256 published for x"},
      {A + "  other\n", "x", "no sha256 published for x"},
      {A + "  notx\n", "x", "no sha256 published for x"},
      {"abc  x\n", "x", "sum:1: 'abc' is not a sha256"},
      {"<html>Not Found</html>\n", "x", "is not a sha256"},
      {A + "\n" + B + "\n", "x", "no sha256 published for x"},  // two bare hashes: which one?
      {A + "  x\n" + B + "  x\n", "x", "two different checksums for x"},
      {"SHA256 (x) " + A, "x", "malformed BSD-style line"},
  };
  for (const auto& [text, asset, want] : cases) {
    INFO(text);
    try {
      published_sha256(text, asset, "sum");
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK_THAT(e.what(), Catch::StartsWith("sum") && Catch::Contains(want));
    }
  }
}
