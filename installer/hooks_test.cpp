// The test seams of installer/hooks.h, set directly as unit tests do (the integration tests set
// the same ones through the environment, README.md "Test-only hooks").
#include <catch2/catch.hpp>

#include "installer/imds.h"
#include "installer/installer_test_util.h"

using namespace kb;
using namespace kb::installer;
using namespace kb::installer::test;

namespace {

ExitCode apply_with(const Hooks& hooks, const Options& opt, const std::string& bundle, std::string* err) {
  std::ostringstream out, e;
  ExitCode code = apply(opt, hooks, Io{out, e}, bundle);
  *err = e.str();
  return code;
}

}  // namespace

TEST_CASE("Hooks::skip_space_check skips the free-space check and says so", "[hooks]") {
  TempDir tmp;
  std::string root = make_root(tmp);
  std::string bundle = tmp / "b1.kbundle";
  write_bundle(bundle, 1);
  Hooks hooks;
  std::string err;
  SECTION("set") {
    hooks.skip_space_check = true;
    CHECK(apply_with(hooks, options(root, trust_file(tmp)), bundle, &err) == ExitCode::Ok);
    CHECK_THAT(err, Catch::Contains("free-space check skipped (KB_TEST_SKIP_SPACE_CHECK, tests only)"));
  }
  SECTION("not set: the check runs") {
    CHECK(apply_with(hooks, options(root, trust_file(tmp)), bundle, &err) == ExitCode::Ok);
    CHECK(err.find("free-space check skipped") == std::string::npos);
  }
}

TEST_CASE("Hooks::imds_endpoint: empty is EC2's, IP:PORT overrides, anything else is an error", "[hooks]") {
  bool overridden = true;
  ImdsEndpoint ec2 = imds_endpoint("", &overridden);
  CHECK(ec2.ip == "169.254.169.254");
  CHECK(ec2.port == 80);
  CHECK_FALSE(overridden);
  ImdsEndpoint test = imds_endpoint("127.0.0.1:8080", &overridden);
  CHECK(test.ip == "127.0.0.1");
  CHECK(test.port == 8080);
  CHECK(overridden);
  CHECK_THROWS_WITH(imds_endpoint("127.0.0.1"), Catch::Contains("write it as IP:PORT"));
  CHECK_THROWS_WITH(imds_endpoint("127.0.0.1:0"), Catch::Contains("bad port"));
}

TEST_CASE("Hooks::now defaults to the system clock", "[hooks]") {
  Hooks hooks;
  REQUIRE(hooks.now);
  int64_t t = hooks.now();
  CHECK(t > 1700000000);  // after 2023
  hooks.now = [] { return int64_t{42}; };
  CHECK(hooks.now() == 42);
}
