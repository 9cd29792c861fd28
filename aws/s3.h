#pragma once
// S3 objects: HEAD, single PUT, multipart upload (retried parts, abort on failure) and presigned
// GET URLs. Requests carry the payload's sha256 (x-amz-content-sha256) and its Content-MD5 and are
// signed with SigV4 here, with OpenSSL's HMAC: libcurl's CURLOPT_AWS_SIGV4 (as aws/client.cpp uses
// for EC2) sorts canonical headers by "name:value" lines before curl 8, which breaks SSE-KMS requests
// (x-amz-server-side-encryption is a prefix of x-amz-server-side-encryption-aws-kms-key-id), and it
// cannot presign. Objects are never given an ACL: they stay private to the bucket owner.
// Credentials never appear in errors or logs.

#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "aws/client.h"
#include "aws/config.h"

namespace kb::aws {

// SigV4 URI encoding: RFC 3986 unreserved characters kept, the rest %XX (uppercase); '/' kept
// unless `encode_slash`.
std::string uri_encode(std::string_view s, bool encode_slash);

// Where S3 requests go: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL (both path-style:
// <endpoint>/<bucket>/<key>), else https://<bucket>.s3.<region>.amazonaws.com (virtual-hosted; path-style
// for bucket names with dots). AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true skips the overrides.
struct S3Endpoint {
  std::string base;         // "https://s3.eu-west-1.amazonaws.com" or the override, no trailing '/'
  bool custom = false;      // an override: path-style addressing
};
S3Endpoint resolve_s3_endpoint(const std::string& region, const EnvLookup& env);

// "https://host/bucket/key" (path-style) or "https://bucket.host/key"; the key URI-encoded.
std::string s3_object_url(const S3Endpoint& endpoint, const std::string& bucket, const std::string& key);

// A SigV4 presigned GET URL for `url` (as from s3_object_url), valid `expires` seconds from `now`
// (1 s to 7 days). The secret key only enters the HMAC chain.
std::string presign_get(const std::string& url, const Credentials& credentials, const std::string& region,
                        std::chrono::seconds expires, std::time_t now);

// SigV4 header signing for S3: the headers to add ("Authorization: ...", "x-amz-date: ...") to a
// request for `url` with `headers` ("Name: value", x-amz-content-sha256 among them) and that payload
// hash. Every given header is signed, with host and x-amz-date.
std::vector<std::string> sign_s3_request(const std::string& method, const std::string& url,
                                         const std::vector<std::string>& headers, const std::string& payload_sha256,
                                         const Credentials& credentials, const std::string& region, std::time_t now);

// One HTTP exchange with S3, behind an interface so tests run without a server.
struct S3Request {
  std::string method = "GET";  // GET, HEAD, PUT, POST, DELETE
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // PUT and POST bodies (at most one part: kept in memory)
  std::function<void(uint64_t sent)> progress;  // bytes of this request's body sent so far
};

struct S3Response {
  long status = 0;                            // 0: no HTTP response (transport_error says why)
  std::map<std::string, std::string> headers; // names lowercased
  std::string body;
  std::string transport_error;
};

class S3Transport {
 public:
  virtual ~S3Transport() = default;
  // Sends a request that is already signed.
  virtual S3Response send(const S3Request& request) = 0;
};

// libcurl: connect timeout 10 s, a transfer slower than 1 KiB/s for 30 s is dropped, TLS verified.
std::unique_ptr<S3Transport> make_curl_s3_transport();

struct ObjectInfo {
  bool exists = false;
  uint64_t size = 0;
  std::string etag;  // without quotes
  std::string sse;   // x-amz-server-side-encryption: "AES256", "aws:kms"
  std::map<std::string, std::string> metadata;  // x-amz-meta-* without the prefix
};

struct UploadOptions {
  std::string kms_key_id;                       // empty: SSE-S3 (AES256); else SSE-KMS with this key
  std::map<std::string, std::string> metadata;  // stored as x-amz-meta-<name>
  std::string content_type = "application/octet-stream";
  uint64_t part_size = 8ull << 20;              // files larger than this go multipart; >= 5 MiB
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct UploadResult {
  uint64_t size = 0;
  int parts = 0;              // 0: a single PUT
  std::string expected_etag;  // what S3 reports for these bytes under SSE-S3: md5, or md5-of-md5s "-N"
  int retries = 0;            // requests repeated after a transient failure
};

inline constexpr uint64_t kMinPartSize = 5ull << 20;

class S3Client {
 public:
  S3Client(Credentials credentials, std::string region, S3Endpoint endpoint, S3Transport& transport,
           RetryPolicy policy = {}, Client::Sleeper sleep = {}, Client::Random random = {});

  // HEAD of an object; exists == false for 404. Throws AwsError/kb::Error otherwise.
  ObjectInfo head(const std::string& bucket, const std::string& key);
  // Uploads a file: one PUT up to the part size, multipart above it (every part retried on its own;
  // the upload is aborted when it cannot complete). Throws AwsError/kb::Error.
  UploadResult upload_file(const std::string& bucket, const std::string& key, const std::string& path,
                           const UploadOptions& options);
  std::string presign(const std::string& bucket, const std::string& key, std::chrono::seconds expires,
                      std::time_t now) const;
  // The bucket's own S3 Block Public Access settings (GetPublicAccessBlock): "" when all four are
  // on; else what is not ("BlockPublicPolicy is off", "no configuration of its own", or why they
  // could not be read). Throws only for transport failures.
  std::string public_access_problem(const std::string& bucket);
  std::string object_url(const std::string& bucket, const std::string& key) const;

  int requests() const { return requests_; }

 private:
  S3Response send(const std::string& what, S3Request request, int* retries);

  Credentials credentials_;
  std::string region_;
  S3Endpoint endpoint_;
  S3Transport& transport_;
  RetryPolicy policy_;
  Client::Sleeper sleep_;
  Client::Random random_;
  int requests_ = 0;
};

}  // namespace kb::aws
