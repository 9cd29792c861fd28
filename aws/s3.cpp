#include "aws/s3.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "aws/xml.h"
#include "base/error.h"
#include "base/hash.h"
#include "curl/easy.h"

namespace kb::aws {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
            data.size(), out, &len))
    throw Error("OpenSSL: HMAC-SHA256 failed");
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string md5_raw(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!EVP_Digest(data.data(), data.size(), out, &len, EVP_md5(), nullptr)) throw Error("OpenSSL: MD5 failed");
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string hex(std::string_view raw) {
  return to_hex(reinterpret_cast<const uint8_t*>(raw.data()), raw.size());
}

// SigV4's signature: HMAC chain over date, region, service and "aws4_request", then the string to sign.
std::string signature(const std::string& secret, const std::string& date, const std::string& region,
                      const std::string& to_sign) {
  std::string key = hmac("AWS4" + secret, date);
  key = hmac(key, region);
  key = hmac(key, "s3");
  key = hmac(key, "aws4_request");
  return hex(hmac(key, to_sign));
}

std::string strip_quotes(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

uint64_t file_size(const std::string& path) {
  std::error_code ec;
  auto n = std::filesystem::file_size(path, ec);
  if (ec) throw Error(path + ": " + ec.message());
  return n;
}

// Reads [offset, offset + length) of a file.
std::string read_range(const std::string& path, uint64_t offset, uint64_t length) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open for reading");
  in.seekg(static_cast<std::streamoff>(offset));
  std::string out(length, '\0');
  in.read(out.data(), static_cast<std::streamsize>(length));
  if (static_cast<uint64_t>(in.gcount()) != length) throw Error(path + ": short read (was the file changed?)");
  return out;
}

// scheme://host[:port]/path?query split for signing.
struct UrlParts {
  std::string scheme, host, path, query;
};
UrlParts split_url(const std::string& url) {
  UrlParts p;
  size_t s = url.find("://");
  if (s == std::string::npos) throw Error("'" + url + "' is not a URL");
  p.scheme = url.substr(0, s);
  size_t h = s + 3, slash = url.find('/', h);
  p.host = url.substr(h, slash == std::string::npos ? std::string::npos : slash - h);
  std::string rest = slash == std::string::npos ? "/" : url.substr(slash);
  size_t q = rest.find('?');
  p.path = rest.substr(0, q);
  if (q != std::string::npos) p.query = rest.substr(q + 1);
  return p;
}

// "20130524" (date) or "20130524T000000Z".
std::string format_time(std::time_t t, bool date_only) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  if (date_only) std::strftime(buf, sizeof buf, "%Y%m%d", &tm);
  else std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// --- libcurl transport -------------------------------------------------------------------------

struct Body {
  const std::string* data;
  size_t pos = 0;
};

size_t read_body(char* buffer, size_t size, size_t count, void* user) {
  auto* b = static_cast<Body*>(user);
  size_t n = std::min(size * count, b->data->size() - b->pos);
  std::memcpy(buffer, b->data->data() + b->pos, n);
  b->pos += n;
  return n;
}

int seek_body(void* user, curl_off_t offset, int origin) {
  auto* b = static_cast<Body*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<size_t>(offset) > b->data->size()) return CURL_SEEKFUNC_FAIL;
  b->pos = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

size_t collect_header(char* data, size_t size, size_t count, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string line(data, size * count);
  if (line.starts_with("HTTP/")) {
    headers->clear();  // a 100 Continue, or a new response
  } else if (size_t colon = line.find(':'); colon != std::string::npos) {
    std::string value = line.substr(colon + 1);
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) value.erase(0, 1);
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.pop_back();
    (*headers)[lower(line.substr(0, colon))] = value;
  }
  return size * count;
}

int progress_cb(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t ulnow) {
  const auto* fn = static_cast<const std::function<void(uint64_t)>*>(user);
  if (*fn && ulnow > 0) (*fn)(static_cast<uint64_t>(ulnow));
  return 0;
}

class CurlS3Transport : public S3Transport {
 public:
  CurlS3Transport() { curl::global_init(); }

  S3Response send(const S3Request& r) override {
    S3Response out;
    curl::Easy e;
    curl::Slist headers(r.headers);
    Body body{&r.body};
    e.set(CURLOPT_URL, r.url.c_str());
    if (r.method == "HEAD") {
      e.set(CURLOPT_NOBODY, 1L);
    } else if (r.method == "PUT") {
      e.set(CURLOPT_UPLOAD, 1L);
      e.set(CURLOPT_READFUNCTION, read_body);
      e.set(CURLOPT_READDATA, &body);
      e.set(CURLOPT_SEEKFUNCTION, seek_body);
      e.set(CURLOPT_SEEKDATA, &body);
      e.set(CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    } else if (r.method == "POST") {
      e.set(CURLOPT_POST, 1L);
      e.set(CURLOPT_POSTFIELDS, r.body.c_str());
      e.set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    } else if (r.method != "GET") {
      e.set(CURLOPT_CUSTOMREQUEST, r.method.c_str());
    }
    e.set(CURLOPT_HTTPHEADER, headers.get());
    curl::collect_body(e, &out.body);
    e.set(CURLOPT_HEADERFUNCTION, collect_header);
    e.set(CURLOPT_HEADERDATA, &out.headers);
    e.set(CURLOPT_XFERINFOFUNCTION, progress_cb);
    e.set(CURLOPT_XFERINFODATA, &r.progress);
    e.set(CURLOPT_NOPROGRESS, 0L);
    // Big bodies: no overall time limit, but a stalled transfer (under 1 KiB/s for 30 s) is cut.
    e.set(CURLOPT_LOW_SPEED_LIMIT, 1024L);
    e.set(CURLOPT_LOW_SPEED_TIME, 30L);
    curl::http_defaults(e, "kbundle-publish", 10L);
    curl::Result done = curl::perform(e);
    out.status = done.completed_status();
    out.transport_error = std::move(done.error);
    return out;
  }
};

}  // namespace

std::string uri_encode(std::string_view s, bool encode_slash) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && !encode_slash)) {
      out += ch;
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

S3Endpoint resolve_s3_endpoint(const std::string& region, const EnvLookup& env) {
  if (env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").value_or("") != "true") {
    for (const char* v : {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"}) {
      auto url = env(v);
      if (!url || url->empty()) continue;
      if (!url->starts_with("http://") && !url->starts_with("https://"))
        throw Error(std::string(v) + ": '" + *url + "' is not an http:// or https:// URL");
      std::string base = *url;
      while (base.ends_with('/')) base.pop_back();
      return {base, true};
    }
  }
  std::string suffix = region.starts_with("cn-") ? ".amazonaws.com.cn" : ".amazonaws.com";
  return {"https://s3." + region + suffix, false};
}

std::string s3_object_url(const S3Endpoint& endpoint, const std::string& bucket, const std::string& key) {
  if (endpoint.custom || bucket.find('.') != std::string::npos)
    return endpoint.base + "/" + bucket + "/" + uri_encode(key, false);
  size_t s = endpoint.base.find("://") + 3;
  return endpoint.base.substr(0, s) + bucket + "." + endpoint.base.substr(s) + "/" + uri_encode(key, false);
}

std::string presign_get(const std::string& url, const Credentials& c, const std::string& region,
                        std::chrono::seconds expires, std::time_t now) {
  if (expires.count() < 1 || expires.count() > 7 * 24 * 3600)
    throw Error("--expires " + std::to_string(expires.count()) + ": a presigned URL lives 1 s to 7 days (604800 s)");
  UrlParts u = split_url(url);
  const std::string date = format_time(now, true), stamp = format_time(now, false);
  const std::string scope = date + "/" + region + "/s3/aws4_request";
  // Parameters in sorted order, values encoded as SigV4 wants them.
  std::string query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" +
                      uri_encode(c.access_key_id + "/" + scope, true) + "&X-Amz-Date=" + stamp +
                      "&X-Amz-Expires=" + std::to_string(expires.count());
  if (!c.session_token.empty()) query += "&X-Amz-Security-Token=" + uri_encode(c.session_token, true);
  query += "&X-Amz-SignedHeaders=host";
  const std::string canonical = "GET\n" + u.path + "\n" + query + "\nhost:" + u.host + "\n\nhost\nUNSIGNED-PAYLOAD";
  const std::string to_sign = "AWS4-HMAC-SHA256\n" + stamp + "\n" + scope + "\n" + sha256_hex(canonical);
  return u.scheme + "://" + u.host + u.path + "?" + query + "&X-Amz-Signature=" + signature(c.secret_access_key, date, region, to_sign);
}

std::vector<std::string> sign_s3_request(const std::string& method, const std::string& url,
                                         const std::vector<std::string>& headers, const std::string& payload_sha256,
                                         const Credentials& c, const std::string& region, std::time_t now) {
  UrlParts u = split_url(url);
  const std::string date = format_time(now, true), stamp = format_time(now, false);
  const std::string scope = date + "/" + region + "/s3/aws4_request";
  std::map<std::string, std::string> canon{{"host", u.host}, {"x-amz-date", stamp}};
  for (const auto& h : headers) {
    size_t colon = h.find(':');
    std::string value = h.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    while (!value.empty() && value.back() == ' ') value.pop_back();
    canon[lower(h.substr(0, colon))] = value;
  }
  // The query as sorted "key=value" pairs; our URLs' values are encoded already.
  std::vector<std::string> pairs;
  for (size_t pos = 0; pos < u.query.size();) {
    size_t amp = u.query.find('&', pos);
    if (amp == std::string::npos) amp = u.query.size();
    std::string pair = u.query.substr(pos, amp - pos);
    if (pair.find('=') == std::string::npos) pair += '=';
    pairs.push_back(pair);
    pos = amp + 1;
  }
  std::sort(pairs.begin(), pairs.end());
  std::string query, canonical_headers, signed_headers;
  for (const auto& p : pairs) query += (query.empty() ? "" : "&") + p;
  for (const auto& [name, value] : canon) {
    canonical_headers += name + ":" + value + "\n";
    signed_headers += (signed_headers.empty() ? "" : ";") + name;
  }
  const std::string canonical =
      method + "\n" + u.path + "\n" + query + "\n" + canonical_headers + "\n" + signed_headers + "\n" + payload_sha256;
  const std::string to_sign = "AWS4-HMAC-SHA256\n" + stamp + "\n" + scope + "\n" + sha256_hex(canonical);
  return {"Authorization: AWS4-HMAC-SHA256 Credential=" + c.access_key_id + "/" + scope +
              ", SignedHeaders=" + signed_headers + ", Signature=" + signature(c.secret_access_key, date, region, to_sign),
          "x-amz-date: " + stamp};
}

std::unique_ptr<S3Transport> make_curl_s3_transport() { return std::make_unique<CurlS3Transport>(); }

S3Client::S3Client(Credentials credentials, std::string region, S3Endpoint endpoint, S3Transport& transport,
                   RetryPolicy policy, Client::Sleeper sleep, Client::Random random)
    : credentials_(std::move(credentials)), region_(std::move(region)), endpoint_(std::move(endpoint)),
      transport_(transport), policy_(policy), sleep_(std::move(sleep)), random_(std::move(random)) {
  if (!sleep_) sleep_ = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  if (!random_) random_ = [engine = std::mt19937_64(std::random_device{}())]() mutable { return engine(); };
}

std::string S3Client::object_url(const std::string& bucket, const std::string& key) const {
  return s3_object_url(endpoint_, bucket, key);
}

std::string S3Client::presign(const std::string& bucket, const std::string& key, std::chrono::seconds expires,
                              std::time_t now) const {
  return presign_get(object_url(bucket, key), credentials_, region_, expires, now);
}

S3Response S3Client::send(const std::string& what, S3Request request, int* retries) {
  const std::string payload = sha256_hex(request.body);
  request.headers.push_back("x-amz-content-sha256: " + payload);
  if (!credentials_.session_token.empty()) request.headers.push_back("x-amz-security-token: " + credentials_.session_token);
  const std::vector<std::string> unsigned_headers = request.headers;
  for (int attempt = 0;; ++attempt) {
    ++requests_;
    request.headers = unsigned_headers;  // signed afresh: a retry gets a new x-amz-date
    for (auto& h : sign_s3_request(request.method, request.url, unsigned_headers, payload, credentials_, region_,
                                   std::time(nullptr)))
      request.headers.push_back(std::move(h));
    S3Response resp = transport_.send(request);
    if ((resp.status >= 200 && resp.status < 300) || (request.method == "HEAD" && resp.status == 404)) return resp;
    std::string code, message;
    if (resp.status) std::tie(code, message) = parse_error(resp.body);
    // S3 also answers 400 RequestTimeout when a body stalled (e.g. a dropped connection).
    bool transient = policy_.retryable(resp.status, code) || code == "RequestTimeout";
    if (transient && attempt + 1 < policy_.max_attempts) {
      if (retries) ++*retries;
      sleep_(policy_.delay(attempt, random_()));
      continue;
    }
    if (resp.status == 0)
      throw Error(what + ": " + endpoint_.base + ": " + resp.transport_error +
                  (attempt > 0 ? " (after " + std::to_string(attempt + 1) + " attempts)" : ""));
    if (code.empty()) code = "HTTP " + std::to_string(resp.status);
    if (message.empty() && resp.status == 403) message = "access denied (check the credentials and the bucket policy)";
    if (message.empty() && resp.status == 404) message = "no such bucket or key";
    throw AwsError(what, code, message, resp.status);
  }
}

ObjectInfo S3Client::head(const std::string& bucket, const std::string& key) {
  S3Request r;
  r.method = "HEAD";
  r.url = object_url(bucket, key);
  S3Response resp = send("s3 HeadObject s3://" + bucket + "/" + key, r, nullptr);
  ObjectInfo info;
  if (resp.status == 404) return info;
  info.exists = true;
  if (auto it = resp.headers.find("content-length"); it != resp.headers.end()) info.size = std::stoull(it->second);
  if (auto it = resp.headers.find("etag"); it != resp.headers.end()) info.etag = strip_quotes(it->second);
  if (auto it = resp.headers.find("x-amz-server-side-encryption"); it != resp.headers.end()) info.sse = it->second;
  for (const auto& [name, value] : resp.headers)
    if (name.starts_with("x-amz-meta-")) info.metadata[name.substr(11)] = value;
  return info;
}

std::string S3Client::public_access_problem(const std::string& bucket) {
  S3Request r;
  r.url = object_url(bucket, "") + "?publicAccessBlock=";
  S3Response resp;
  try {
    resp = send("s3 GetPublicAccessBlock s3://" + bucket, r, nullptr);
  } catch (const AwsError& e) {
    if (e.code() == "NoSuchPublicAccessBlockConfiguration")
      return "it has no Block Public Access configuration of its own (the account's may still apply)";
    return "its Block Public Access settings cannot be read (" + e.code() + ")";
  }
  XmlElement doc = parse_xml(resp.body);
  std::string off;
  for (const char* name : {"BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"})
    if (doc.get(name) != "true") off += std::string(off.empty() ? "" : ", ") + name;
  return off.empty() ? "" : "Block Public Access is not fully on (" + off + " off)";
}

UploadResult S3Client::upload_file(const std::string& bucket, const std::string& key, const std::string& path,
                                   const UploadOptions& o) {
  if (o.part_size < kMinPartSize) throw Error("--part-size: at least 5 MiB (S3's minimum part size)");
  const std::string where = "s3://" + bucket + "/" + key;
  const std::string url = object_url(bucket, key);
  UploadResult result;
  result.size = file_size(path);
  auto report = [&](uint64_t done) {
    if (o.progress) o.progress(std::min(done, result.size), result.size);
  };

  // Headers that describe the object: encryption, metadata, type. Never an ACL.
  std::vector<std::string> object_headers{"Content-Type: " + o.content_type};
  if (o.kms_key_id.empty()) {
    object_headers.push_back("x-amz-server-side-encryption: AES256");
  } else {
    object_headers.push_back("x-amz-server-side-encryption: aws:kms");
    object_headers.push_back("x-amz-server-side-encryption-aws-kms-key-id: " + o.kms_key_id);
  }
  for (const auto& [name, value] : o.metadata) object_headers.push_back("x-amz-meta-" + name + ": " + value);

  if (result.size <= o.part_size) {
    S3Request r;
    r.method = "PUT";
    r.url = url;
    r.body = read_range(path, 0, result.size);
    r.headers = object_headers;
    r.headers.push_back("Content-MD5: " + base64_encode(md5_raw(r.body)));
    r.progress = report;
    result.expected_etag = hex(md5_raw(r.body));
    send("s3 PutObject " + where, std::move(r), &result.retries);
    report(result.size);
    return result;
  }

  // Multipart: initiate, upload every part (each retried on its own), complete; abort on failure.
  S3Request init;
  init.method = "POST";
  init.url = url + "?uploads=";
  init.headers = object_headers;
  S3Response created = send("s3 CreateMultipartUpload " + where, init, &result.retries);
  std::string upload_id;
  try {
    upload_id = parse_xml(created.body).get("UploadId");
  } catch (const Error&) {
  }
  if (upload_id.empty()) throw Error("s3 CreateMultipartUpload " + where + ": no UploadId in the response");
  const std::string id_query = "uploadId=" + uri_encode(upload_id, true);

  try {
    std::string complete = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
    std::string digests;
    uint64_t done = 0;
    for (int part = 1; done < result.size; ++part) {
      S3Request r;
      r.method = "PUT";
      r.url = url + "?partNumber=" + std::to_string(part) + "&" + id_query;
      r.body = read_range(path, done, std::min(o.part_size, result.size - done));
      std::string md5 = md5_raw(r.body);
      digests += md5;
      r.headers = {"Content-MD5: " + base64_encode(md5)};
      const uint64_t base = done;
      r.progress = [&report, base](uint64_t sent) { report(base + sent); };
      S3Response resp = send("s3 UploadPart " + std::to_string(part) + " " + where, r, &result.retries);
      std::string etag = strip_quotes(resp.headers.count("etag") ? resp.headers.at("etag") : "");
      if (etag.empty()) throw Error("s3 UploadPart " + std::to_string(part) + " " + where + ": no ETag in the response");
      if (etag != hex(md5))
        throw Error("s3 UploadPart " + std::to_string(part) + " " + where + ": ETag " + etag +
                    " is not the part's MD5 " + hex(md5) + " (damaged in transit)");
      complete += "<Part><PartNumber>" + std::to_string(part) + "</PartNumber><ETag>\"" + etag + "\"</ETag></Part>";
      done += r.body.size();
      result.parts = part;
      report(done);
    }
    complete += "</CompleteMultipartUpload>";
    S3Request fin;
    fin.method = "POST";
    fin.url = url + "?" + id_query;
    fin.body = complete;
    fin.headers = {"Content-Type: application/xml"};
    S3Response resp = send("s3 CompleteMultipartUpload " + where, fin, &result.retries);
    auto [code, message] = parse_error(resp.body);  // S3 may answer 200 with an error
    if (!code.empty()) throw AwsError("s3 CompleteMultipartUpload " + where, code, message, resp.status);
    result.expected_etag = hex(md5_raw(digests)) + "-" + std::to_string(result.parts);
  } catch (...) {
    S3Request abort;
    abort.method = "DELETE";
    abort.url = url + "?" + id_query;
    try {
      send("s3 AbortMultipartUpload " + where, abort, nullptr);
    } catch (const Error&) {
      // The original failure matters more; a lifecycle rule cleans up what could not be aborted.
    }
    throw;
  }
  return result;
}

}  // namespace kb::aws
