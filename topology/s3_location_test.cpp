#include "topology/s3_location.h"

#include <catch2/catch.hpp>

using namespace kb;

TEST_CASE("s3 location: bucket and prefix", "[s3_location]") {
  std::string why;
  auto l = parse_s3_location("s3://my-bucket/clusters/kthw/", &why);
  REQUIRE(l);
  CHECK(l->bucket == "my-bucket");
  CHECK(l->prefix == "clusters/kthw/");
  CHECK(parse_s3_location("s3://my-bucket", &why)->prefix.empty());
  CHECK(parse_s3_location("s3://my.bucket.1/", &why)->prefix.empty());
  CHECK(parse_s3_location("s3://my-bucket/kthw", &why)->prefix == "kthw");  // as written; callers check the '/'
}

TEST_CASE("s3 location: every bucket naming rule and bad prefixes", "[s3_location]") {
  auto bad = [](const std::string& url, const std::string& want) {
    std::string why;
    CHECK_FALSE(parse_s3_location(url, &why));
    CHECK_THAT(why, Catch::Contains(want));
  };
  bad("https://b/x/", "not an s3:// URL");
  bad("S3://bucket/", "not an s3:// URL");
  bad("s3://ab/", "3 to 63 characters");
  bad("s3://" + std::string(64, 'a') + "/", "3 to 63 characters");
  bad("s3:///x/", "3 to 63 characters");
  bad("s3://My-Bucket/", "only lowercase letters");
  bad("s3://my_bucket/", "only lowercase letters");
  bad("s3://my bucket/", "only lowercase letters");
  bad("s3://-bucket/", "begins and ends with a letter or digit");
  bad("s3://bucket-/", "begins and ends with a letter or digit");
  bad("s3://bucket./", "begins and ends with a letter or digit");
  bad("s3://my..bucket/", "two adjacent periods");
  bad("s3://192.168.5.4/", "IP address");
  bad("s3://xn--bucket/", "'xn--'");
  bad("s3://sthree-bucket/", "'sthree-'");
  bad("s3://amzn-s3-demo-bucket/", "'amzn-s3-demo-'");
  bad("s3://bucket-s3alias/", "'-s3alias'");
  bad("s3://bucket--ol-s3/", "'--ol-s3'");
  bad("s3://bucket.mrap/", "'.mrap'");
  bad("s3://bucket--x-s3/", "'--x-s3'");
  bad("s3://bucket//x/", "starts with '/'");
  bad("s3://bucket/a//b/", "'//'");
  bad("s3://bucket/a\nb/", "control character");
  bad("s3://bucket/a\x7f/", "control character");
  bad("s3://bucket/" + std::string(901, 'p') + "/", "longer than 900 bytes");
  CHECK(s3_bucket_problem("abc").empty());
  CHECK(s3_bucket_problem("1.2.3.4a").empty());  // not an address
}
