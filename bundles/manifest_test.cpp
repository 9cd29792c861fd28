#include <catch2/catch.hpp>

#include "bundles/bundle_error.h"
#include "bundles/bundle_test_util.h"
#include "bundles/manifest.h"

using namespace kb;
using namespace kb::test;

namespace {

Manifest sample() {
  Manifest m = sample_header();
  m.signing_key_sha256 = std::string(64, 'b');
  ManifestEntry d;
  d.path = "/var/lib/etcd";
  d.type = EntryType::Directory;
  d.mode = 0700;
  ManifestEntry f = meta("/var/lib/kubernetes/ca.key", 0600, EntryClass::Secret);
  f.size = 12;
  f.sha256 = std::string(64, 'c');
  ManifestEntry b = meta("/usr/local/bin/etcd", 0755, EntryClass::Binary);
  b.size = 1;
  b.sha256 = std::string(64, 'd');
  b.source = EntrySource{"https://example.com/etcd.tgz", std::string(64, 'e')};
  m.entries = {b, d, f};
  return m;
}

}  // namespace

TEST_CASE("canonical JSON: sorted keys, no whitespace, round trip", "[manifest]") {
  Manifest m = sample();
  std::string s = serialize_manifest(m);
  CHECK(s.find(' ') == std::string::npos);
  CHECK(s.find('\n') == std::string::npos);
  CHECK(s.rfind("{\"cluster_id\":\"c0ffee00-1234\",\"cluster_name\":\"demo\",\"created_at\":", 0) == 0);
  CHECK(s.find("\"mode\":\"0600\"") != std::string::npos);
  CHECK(s.find("\"node\":{\"hostname\":\"cp-1\",\"name\":\"cp-1\",\"private_ip\":\"10.0.1.10\",\"role\":\"control-plane\"}") !=
        std::string::npos);
  CHECK(parse_manifest(s) == m);
  CHECK(serialize_manifest(parse_manifest(s)) == s);
}

TEST_CASE("an optional EC2 instance id: absent when unset, round trip, shape checked", "[manifest]") {
  Manifest m = sample();
  m.instance_id = "i-0123456789abcdef0";
  std::string s = serialize_manifest(m);
  CHECK(s.find("\"node\":{\"hostname\":\"cp-1\",\"instance_id\":\"i-0123456789abcdef0\",\"name\"") != std::string::npos);
  CHECK(parse_manifest(s) == m);
  CHECK(serialize_manifest(sample()).find("instance_id") == std::string::npos);
  // Present but empty is not what the writer makes: refused.
  std::string empty = s;
  empty.replace(empty.find("i-0123456789abcdef0"), 19, "");
  CHECK_THROWS_AS(parse_manifest(empty), BundleError);
  for (const char* bad : {"I-0ABC", "i-", "0123", "i-0a/b", "i-0123456789abcdef0123456789abcdef0"}) {
    m.instance_id = bad;
    CHECK_THROWS_AS(serialize_manifest(m), BundleError);
  }
}

TEST_CASE("invalid manifests are refused with the right kind", "[manifest]") {
  struct Case {
    const char* name;
    std::function<void(Manifest&)> edit;
    BundleErrc want;
  };
  auto entry = [](Manifest& m) -> ManifestEntry& { return m.entries[2]; };
  std::vector<Case> cases = {
      {"dotdot", [&](Manifest& m) { entry(m).path = "/var/lib/../etc/shadow"; }, BundleErrc::UnsafePath},
      {"relative", [&](Manifest& m) { entry(m).path = "var/x"; }, BundleErrc::UnsafePath},
      {"double slash", [&](Manifest& m) { entry(m).path = "/var//x"; }, BundleErrc::UnsafePath},
      {"dot", [&](Manifest& m) { entry(m).path = "/var/./x"; }, BundleErrc::UnsafePath},
      {"trailing slash", [&](Manifest& m) { entry(m).path = "/var/x/"; }, BundleErrc::UnsafePath},
      {"nul", [&](Manifest& m) { entry(m).path = std::string("/var/x\0y", 8); }, BundleErrc::UnsafePath},
      {"newline", [&](Manifest& m) { entry(m).path = "/var/x\ny"; }, BundleErrc::UnsafePath},
      {"root", [&](Manifest& m) { entry(m).path = "/"; }, BundleErrc::UnsafePath},
      {"setuid", [&](Manifest& m) { entry(m).mode = 04755; }, BundleErrc::BadManifest},
      {"setgid", [&](Manifest& m) { entry(m).mode = 02755; }, BundleErrc::BadManifest},
      {"sticky", [&](Manifest& m) { entry(m).mode = 01777; }, BundleErrc::BadManifest},
      {"mode too big", [&](Manifest& m) { entry(m).mode = 010000; }, BundleErrc::BadManifest},
      {"unsorted", [&](Manifest& m) { std::swap(m.entries[0], m.entries[1]); }, BundleErrc::BadManifest},
      {"duplicate", [&](Manifest& m) { m.entries[1] = m.entries[2]; }, BundleErrc::BadManifest},
      {"under a file", [&](Manifest& m) { m.entries[0].path = "/usr"; m.entries[1].path = "/usr/x"; m.entries[2].path = "/usr/y"; }, BundleErrc::BadManifest},
      {"bad hash", [&](Manifest& m) { entry(m).sha256 = "abc"; }, BundleErrc::BadManifest},
      {"upper hash", [&](Manifest& m) { entry(m).sha256 = std::string(64, 'C'); }, BundleErrc::BadManifest},
      {"dir with size", [&](Manifest& m) { m.entries[1].size = 3; }, BundleErrc::BadManifest},
      {"bad owner", [&](Manifest& m) { entry(m).owner = "ro ot"; }, BundleErrc::BadManifest},
      {"bad role", [&](Manifest& m) { m.role = "master"; }, BundleErrc::BadManifest},
      {"bad ip", [&](Manifest& m) { m.private_ip = "10.0.1.256"; }, BundleErrc::BadManifest},
      {"ip leading zero", [&](Manifest& m) { m.private_ip = "10.0.01.1"; }, BundleErrc::BadManifest},
      {"bad time", [&](Manifest& m) { m.created_at = "2026-02-30T00:00:00Z"; }, BundleErrc::BadManifest},
      {"time with offset", [&](Manifest& m) { m.created_at = "2026-02-03T00:00:00+01:00"; }, BundleErrc::BadManifest},
      {"bad unit", [&](Manifest& m) { m.units.push_back("../evil"); }, BundleErrc::BadManifest},
      {"dup unit", [&](Manifest& m) { m.units.push_back("etcd.service"); }, BundleErrc::BadManifest},
      {"float in check", [&](Manifest& m) { m.health_checks[0]["timeout"] = 1.5; }, BundleErrc::BadManifest},
      {"check not object", [&](Manifest& m) { m.health_checks.push_back("etcd"); }, BundleErrc::BadManifest},
      {"version", [&](Manifest& m) { m.format_version = 2; }, BundleErrc::UnsupportedVersion},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    Manifest m = sample();
    c.edit(m);
    CHECK(code_of([&] { serialize_manifest(m); }) == c.want);
  }
}

TEST_CASE("parser refuses non-canonical or unknown JSON", "[manifest]") {
  std::string good = serialize_manifest(sample());
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    auto pos = s.find(from);
    REQUIRE(pos != std::string::npos);
    return s.replace(pos, from.size(), to);
  };
  struct Case {
    const char* name;
    std::string bytes;
    BundleErrc want;
  };
  std::vector<Case> cases = {
      {"whitespace", replace("\"cluster_name\":", "\"cluster_name\": "), BundleErrc::BadManifest},
      {"trailing newline", good + "\n", BundleErrc::BadManifest},
      {"unknown key", replace("{\"cluster_id\"", "{\"aaa\":1,\"cluster_id\""), BundleErrc::BadManifest},
      {"duplicate key", replace("{\"cluster_id\":\"c0ffee00-1234\"", "{\"cluster_id\":\"x\",\"cluster_id\":\"c0ffee00-1234\""),
       BundleErrc::BadManifest},
      {"unsorted keys", replace("{\"cluster_id\":\"c0ffee00-1234\",\"cluster_name\":\"demo\"", "{\"cluster_name\":\"demo\",\"cluster_id\":\"c0ffee00-1234\""),
       BundleErrc::BadManifest},
      {"mode as number", replace("\"mode\":\"0600\"", "\"mode\":384"), BundleErrc::BadManifest},
      {"mode 5 digits", replace("\"mode\":\"0600\"", "\"mode\":\"00600\""), BundleErrc::BadManifest},
      {"mode setuid", replace("\"mode\":\"0600\"", "\"mode\":\"4600\""), BundleErrc::BadManifest},
      {"type symlink", replace("\"type\":\"directory\"", "\"type\":\"symlink\""), BundleErrc::BadManifest},
      {"negative serial", replace("\"serial\":7", "\"serial\":-7"), BundleErrc::BadManifest},
      {"serial escaped", replace("\"serial\":7", "\"serial\":7.0"), BundleErrc::BadManifest},
      {"version 2", replace("\"format_version\":1", "\"format_version\":2"), BundleErrc::UnsupportedVersion},
      {"dotdot", replace("/var/lib/etcd", "/var/lib/.."), BundleErrc::UnsafePath},
      {"not json", "{", BundleErrc::BadManifest},
      {"array", "[]", BundleErrc::BadManifest},
      {"invalid utf8", replace("demo", "d\xff" "mo"), BundleErrc::BadManifest},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    CHECK(code_of([&] { parse_manifest(c.bytes); }) == c.want);
  }
  CHECK(code_of([&] { parse_manifest(std::string(kMaxManifestSize + 1, ' ')); }) == BundleErrc::ManifestTooLarge);
}

TEST_CASE("RFC 3339 times", "[manifest]") {
  CHECK(parse_rfc3339_utc("1970-01-01T00:00:00Z") == 0);
  CHECK(parse_rfc3339_utc("2000-03-01T00:00:00Z") == 951868800);
  CHECK(parse_rfc3339_utc("2024-02-29T23:59:59Z") == 1709251199);
  CHECK_FALSE(parse_rfc3339_utc("2023-02-29T00:00:00Z"));
  CHECK_FALSE(parse_rfc3339_utc("2023-01-01T00:00:00.5Z"));
  CHECK_FALSE(parse_rfc3339_utc("2023-01-01t00:00:00z"));
  CHECK_FALSE(parse_rfc3339_utc("2023-01-01T24:00:00Z"));
}
