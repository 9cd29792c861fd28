#include "aws/s3.h"

#include <catch2/catch.hpp>
#include <deque>
#include <filesystem>
#include <fstream>
#include <openssl/evp.h>
#include <unistd.h>

#include "base/hash.h"

namespace {

using namespace kb::aws;

std::string md5_of(std::string_view data) {
  unsigned char md[16];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_md5(), nullptr);
  return std::string(reinterpret_cast<char*>(md), n);
}

// Answers from a script (then 200 OK) and remembers every request.
struct FakeS3 : S3Transport {
  std::deque<S3Response> script;
  std::vector<S3Request> seen;
  S3Response send(const S3Request& r) override {
    CHECK(r.headers.back().starts_with("x-amz-date: "));
    CHECK(r.headers[r.headers.size() - 2].starts_with("Authorization: AWS4-HMAC-SHA256 Credential=AKIDTEST/"));
    seen.push_back(r);
    if (r.progress) r.progress(r.body.size());
    if (!script.empty()) {
      S3Response next = script.front();
      script.pop_front();
      return next;
    }
    S3Response ok{200, {}, "", ""};
    if (r.method == "POST" && r.url.ends_with("?uploads="))
      ok.body = "<InitiateMultipartUploadResult><UploadId>up/id+1</UploadId></InitiateMultipartUploadResult>";
    if (r.method == "PUT") {
      const std::string md = md5_of(r.body);
      ok.headers["etag"] = "\"" + kb::to_hex(reinterpret_cast<const uint8_t*>(md.data()), md.size()) + "\"";
    }
    return ok;
  }
};

// The oracle: S3's ETag of a file under SSE-S3 uploaded with `part_size` (0: one PUT), i.e. its MD5,
// or the MD5 of the parts' MD5s and "-N".
std::string expected_etag(const std::string& path, uint64_t part_size) {
  std::ifstream in(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto hex = [](const std::string& raw) { return kb::to_hex(reinterpret_cast<const uint8_t*>(raw.data()), raw.size()); };
  if (part_size == 0 || data.size() <= part_size) return hex(md5_of(data));
  std::string digests;
  int parts = 0;
  for (size_t off = 0; off < data.size(); off += part_size, ++parts) digests += md5_of(std::string_view(data).substr(off, part_size));
  return hex(md5_of(digests)) + "-" + std::to_string(parts);
}

bool has_header(const S3Request& r, const std::string& h) {
  return std::find(r.headers.begin(), r.headers.end(), h) != r.headers.end();
}

struct TempFile {
  std::string path;
  explicit TempFile(uint64_t size) {
    path = (std::filesystem::temp_directory_path() / ("kb-s3-test-" + std::to_string(::getpid()) + "-" + std::to_string(size))).string();
    std::ofstream out(path, std::ios::binary);
    for (uint64_t i = 0; i < size; ++i) out.put(static_cast<char>((i * 7919) % 251));
  }
  ~TempFile() { std::filesystem::remove(path); }
};

S3Client client(FakeS3& fake) {
  return S3Client({"AKIDTEST", "SECRETTEST", "", "test"}, "eu-west-1", {"http://127.0.0.1:9", true}, fake, RetryPolicy{},
                  [](std::chrono::milliseconds) {}, [] { return uint64_t{0}; });
}

}  // namespace

TEST_CASE("s3: presigned GET matches the AWS documentation's example", "[s3]") {
  // https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
  Credentials c{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "", "test"};
  std::string url = presign_get("https://examplebucket.s3.amazonaws.com/test.txt", c, "us-east-1",
                                std::chrono::seconds(86400), 1369353600 /* 2013-05-24T00:00:00Z */);
  CHECK(url ==
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z"
        "&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  CHECK(url.find(c.secret_access_key) == std::string::npos);
  CHECK_THROWS_WITH(presign_get("https://b.s3.amazonaws.com/k", c, "us-east-1", std::chrono::seconds(604801), 0),
                    Catch::Contains("1 s to 7 days"));
  c.session_token = "tok/en=";
  CHECK_THAT(presign_get("http://127.0.0.1:5000/b/k", c, "us-east-1", std::chrono::seconds(60), 0),
             Catch::Contains("&X-Amz-Security-Token=tok%2Fen%3D&X-Amz-SignedHeaders=host&X-Amz-Signature="));
}

TEST_CASE("s3: header signing matches the AWS documentation's GET Object example", "[s3]") {
  // https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
  Credentials c{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "", "test"};
  const std::string empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  auto h = sign_s3_request("GET", "https://examplebucket.s3.amazonaws.com/test.txt",
                           {"Range: bytes=0-9", "x-amz-content-sha256: " + empty}, empty, c, "us-east-1", 1369353600);
  REQUIRE(h.size() == 2);
  CHECK(h[0] ==
        "Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  CHECK(h[1] == "x-amz-date: 20130524T000000Z");
  // Header names sort as names: a name that is a prefix of another comes first (SSE-KMS).
  auto kms = sign_s3_request("PUT", "http://127.0.0.1:5000/b/k?uploads",
                             {"x-amz-server-side-encryption-aws-kms-key-id: k", "x-amz-server-side-encryption: aws:kms"},
                             empty, c, "us-east-1", 0);
  CHECK_THAT(kms[0], Catch::Contains("SignedHeaders=host;x-amz-date;x-amz-server-side-encryption;"
                                     "x-amz-server-side-encryption-aws-kms-key-id,"));
}

TEST_CASE("s3: URLs, encoding and endpoints", "[s3]") {
  CHECK(uri_encode("a b/c~d+e", false) == "a%20b/c~d%2Be");
  CHECK(uri_encode("a/b", true) == "a%2Fb");

  auto aws = resolve_s3_endpoint("eu-west-1", map_env({}));
  CHECK(aws.base == "https://s3.eu-west-1.amazonaws.com");
  CHECK_FALSE(aws.custom);
  CHECK(s3_object_url(aws, "b1", "p/x y.kbundle") == "https://b1.s3.eu-west-1.amazonaws.com/p/x%20y.kbundle");
  CHECK(s3_object_url(aws, "b.1", "k") == "https://s3.eu-west-1.amazonaws.com/b.1/k");
  auto moto = resolve_s3_endpoint("us-east-1", map_env({{"AWS_ENDPOINT_URL", "http://127.0.0.1:5000/"}}));
  CHECK(moto.custom);
  CHECK(s3_object_url(moto, "b1", "k") == "http://127.0.0.1:5000/b1/k");
  CHECK(resolve_s3_endpoint("us-east-1", map_env({{"AWS_ENDPOINT_URL", "http://a"}, {"AWS_ENDPOINT_URL_S3", "http://s3"}})).base ==
        "http://s3");
  CHECK_FALSE(resolve_s3_endpoint("us-east-1", map_env({{"AWS_ENDPOINT_URL", "http://a"},
                                                         {"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"}})).custom);
  CHECK_THROWS_WITH(resolve_s3_endpoint("us-east-1", map_env({{"AWS_ENDPOINT_URL_S3", "ftp://x"}})),
                    Catch::Contains("AWS_ENDPOINT_URL_S3: 'ftp://x' is not an http"));
}

TEST_CASE("s3: a small file is one PUT with hash, MD5, SSE-S3 and metadata, never an ACL", "[s3]") {
  FakeS3 fake;
  TempFile f(1000);
  UploadOptions o;
  o.metadata["sha256"] = "abc";
  uint64_t last = 0;
  o.progress = [&](uint64_t done, uint64_t total) { last = done; CHECK(total == 1000); };
  auto s3 = client(fake);
  UploadResult r = s3.upload_file("b1", "p/n.kbundle", f.path, o);
  REQUIRE(fake.seen.size() == 1);
  const S3Request& put = fake.seen[0];
  CHECK(put.method == "PUT");
  CHECK(put.url == "http://127.0.0.1:9/b1/p/n.kbundle");
  CHECK(has_header(put, "x-amz-server-side-encryption: AES256"));
  CHECK(has_header(put, "x-amz-meta-sha256: abc"));
  CHECK(has_header(put, "x-amz-content-sha256: " + kb::sha256_hex(put.body)));
  for (const auto& h : put.headers) CHECK(h.find("x-amz-acl") == std::string::npos);
  CHECK(r.parts == 0);
  CHECK(r.expected_etag == expected_etag(f.path, 0));
  CHECK(last == 1000);

  o.kms_key_id = "alias/kbundle";
  s3.upload_file("b1", "k", f.path, o);
  CHECK(has_header(fake.seen.back(), "x-amz-server-side-encryption: aws:kms"));
  CHECK(has_header(fake.seen.back(), "x-amz-server-side-encryption-aws-kms-key-id: alias/kbundle"));
  o.part_size = 1 << 20;
  CHECK_THROWS_WITH(s3.upload_file("b1", "k", f.path, o), Catch::Contains("at least 5 MiB"));
}

TEST_CASE("s3: multipart above the part size, a failed part retried alone", "[s3]") {
  TempFile f(kMinPartSize * 2 + 123);
  UploadOptions o;
  o.part_size = kMinPartSize;
  UploadResult r;
  {
    // create ok; part 1 ok; part 2: a dropped connection, then ok; part 3 ok; complete ok.
    struct Dropping : FakeS3 {
      int puts = 0;
      S3Response send(const S3Request& req) override {
        if (req.method == "PUT" && ++puts == 2) {
          seen.push_back(req);
          return {0, {}, "", "Recv failure: Connection reset by peer"};
        }
        return FakeS3::send(req);
      }
    } drop;
    auto s3d = client(drop);
    r = s3d.upload_file("b1", "big.kbundle", f.path, o);
    REQUIRE(drop.seen.size() == 6);  // create, part 1, part 2 (dropped), part 2, part 3, complete
    CHECK(drop.seen[0].url == "http://127.0.0.1:9/b1/big.kbundle?uploads=");
    CHECK(has_header(drop.seen[0], "x-amz-server-side-encryption: AES256"));
    CHECK(drop.seen[2].url == "http://127.0.0.1:9/b1/big.kbundle?partNumber=2&uploadId=up%2Fid%2B1");
    CHECK(drop.seen[3].url == drop.seen[2].url);
    CHECK(drop.seen[3].body == drop.seen[2].body);
    CHECK(drop.seen[5].method == "POST");
    CHECK_THAT(drop.seen[5].body, Catch::Contains("<PartNumber>3</PartNumber>"));
  }
  CHECK(r.parts == 3);
  CHECK(r.retries == 1);
  CHECK(r.expected_etag == expected_etag(f.path, kMinPartSize));
  CHECK(r.expected_etag.ends_with("-3"));
}

TEST_CASE("s3: a multipart upload that cannot finish is aborted", "[s3]") {
  FakeS3 fake;
  TempFile f(kMinPartSize + 10);
  UploadOptions o;
  o.part_size = kMinPartSize;
  auto s3 = client(fake);
  S3Response init{200, {}, "<InitiateMultipartUploadResult><UploadId>U1</UploadId></InitiateMultipartUploadResult>", ""};
  S3Response denied{403, {}, "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>", ""};
  fake.script = {init, denied};
  CHECK_THROWS_WITH(s3.upload_file("b1", "k", f.path, o),
                    Catch::Contains("s3 UploadPart 1 s3://b1/k: AccessDenied: Access Denied"));
  REQUIRE(fake.seen.size() == 3);
  CHECK(fake.seen[2].method == "DELETE");
  CHECK(fake.seen[2].url == "http://127.0.0.1:9/b1/k?uploadId=U1");
}

TEST_CASE("s3: HEAD reads size, ETag, encryption and metadata; 404 is absent", "[s3]") {
  FakeS3 fake;
  auto s3 = client(fake);
  S3Response found{200, {{"content-length", "42"}, {"etag", "\"abc\""}, {"x-amz-server-side-encryption", "AES256"},
                         {"x-amz-meta-sha256", "ff"}}, "", ""};
  fake.script = {found, S3Response{404, {}, "", ""}, S3Response{403, {}, "", ""}};
  ObjectInfo i = s3.head("b1", "k");
  CHECK(i.exists);
  CHECK(i.size == 42);
  CHECK(i.etag == "abc");
  CHECK(i.sse == "AES256");
  CHECK(i.metadata.at("sha256") == "ff");
  CHECK_FALSE(s3.head("b1", "k").exists);
  CHECK_THROWS_WITH(s3.head("b1", "k"), Catch::Contains("s3 HeadObject s3://b1/k: HTTP 403"));
}

TEST_CASE("s3: the bucket's Block Public Access settings", "[s3]") {
  FakeS3 fake;
  S3Client s3 = client(fake);
  auto pab = [](const char* policy) {
    return S3Response{200, {}, std::string("<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls>"
                                           "<IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>") +
                                   policy + "</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets>"
                                            "</PublicAccessBlockConfiguration>", ""};
  };
  fake.script = {pab("true"), pab("false"),
                 S3Response{404, {}, "<Error><Code>NoSuchPublicAccessBlockConfiguration</Code></Error>", ""},
                 S3Response{403, {}, "<Error><Code>AccessDenied</Code></Error>", ""}};
  CHECK(s3.public_access_problem("kb") == "");
  CHECK(fake.seen[0].url.ends_with("/kb/?publicAccessBlock="));
  CHECK(s3.public_access_problem("kb") == "Block Public Access is not fully on (BlockPublicPolicy off)");
  CHECK_THAT(s3.public_access_problem("kb"), Catch::Contains("no Block Public Access configuration of its own"));
  CHECK_THAT(s3.public_access_problem("kb"), Catch::Contains("cannot be read (AccessDenied)"));
}
