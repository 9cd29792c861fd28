// The topology accepts exactly the minors the release catalog has templates for (topology/ may
// not depend on binaries/, so the two lists are kept equal here).
#include <catch2/catch.hpp>

#include "base/error.h"
#include "binaries/catalog.h"
#include "topology/topology.h"

TEST_CASE("the topology's supported minors are the catalog's", "[catalog_minors]") {
  std::string listed;
  for (const auto& e : kb::catalog_entries()) {
    INFO(e.kubernetes_version);
    CHECK(kb::is_supported_kubernetes_version(e.kubernetes_version));
    std::string minor = e.kubernetes_version.substr(0, e.kubernetes_version.rfind('.'));
    CHECK(kb::is_supported_kubernetes_version(minor + ".9"));
    CHECK(kb::catalog_entry(minor + ".9").kubernetes_version == minor + ".9");
    listed += (listed.empty() ? "" : ", ") + minor + ".x";
  }
  CHECK(listed == kb::supported_kubernetes_versions());
  CHECK(kb::catalog_versions() == kb::supported_kubernetes_versions());
  for (const char* v : {"v1.31.9", "v1.34.0"}) {
    CHECK_FALSE(kb::is_supported_kubernetes_version(v));
    CHECK_THROWS_AS(kb::catalog_entry(v), kb::Error);
  }
}
