#include "base/release_version.h"

#include <catch2/catch.hpp>

TEST_CASE("release versions: vX.Y.Z only", "[release_version]") {
  auto v = kb::parse_release_version("v1.32.4");
  REQUIRE(v);
  CHECK(v->major == 1);
  CHECK(v->minor == 32);
  CHECK(v->patch == 4);
  CHECK(v->str() == "v1.32.4");
  CHECK(v->minor_string() == "v1.32");
  CHECK(kb::parse_release_version("v3.5.21")->str() == "v3.5.21");
  CHECK(kb::parse_release_version("v1.33.0"));
  for (const char* bad : {"", "v", "1.32.4", "v1.32", "v1.32.", "v1..4", "v1.32.4-rc.1", "v1.32.4 ", " v1.32.4", "v1.032.4",
                          "v1.32.x", "v1.32.-1", "v1.32.+1", "v1.32.4.5", "v1.32.99999", "V1.32.4", "v１.32.4"})
    CHECK_FALSE(kb::parse_release_version(bad));
}

TEST_CASE("release versions: order and minor distance", "[release_version]") {
  auto p = [](const char* s) { return *kb::parse_release_version(s); };
  CHECK(p("v1.32.10") > p("v1.32.9"));
  CHECK(p("v1.33.0") > p("v1.32.99"));
  CHECK(p("v1.34.0").minors_after(p("v1.32.3")) == 2);
  CHECK(p("v1.32.0").minors_after(p("v1.33.3")) == -1);
  CHECK(p("v2.0.0").minors_after(p("v1.33.3")) > 3);
}
