#include "base/time.h"

#include <catch2/catch.hpp>

TEST_CASE("rfc3339_utc prints UTC to the second, leap days and the epoch included") {
  CHECK(kb::rfc3339_utc(0) == "1970-01-01T00:00:00Z");
  CHECK(kb::rfc3339_utc(951868800) == "2000-03-01T00:00:00Z");
  CHECK(kb::rfc3339_utc(1709251199) == "2024-02-29T23:59:59Z");
  CHECK(kb::rfc3339_utc(1700000000) == "2023-11-14T22:13:20Z");
}
