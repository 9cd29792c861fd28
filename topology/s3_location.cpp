#include "topology/s3_location.h"

#include <algorithm>
#include <cctype>

namespace kb {

namespace {

bool looks_like_ipv4(std::string_view s) {
  int dots = 0;
  for (char c : s) {
    if (c == '.') ++dots;
    else if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return dots == 3;
}

}  // namespace

std::string s3_bucket_problem(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return "a bucket name has 3 to 63 characters";
  if (!std::all_of(b.begin(), b.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
      }))
    return "a bucket name holds only lowercase letters, digits, '.' and '-'";
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(b.front()) || !alnum(b.back())) return "a bucket name begins and ends with a letter or digit";
  if (b.find("..") != std::string_view::npos) return "a bucket name has no two adjacent periods";
  if (looks_like_ipv4(b)) return "a bucket name is not formatted as an IP address";
  for (std::string_view p : {"xn--", "sthree-", "amzn-s3-demo-"})
    if (b.starts_with(p)) return "a bucket name does not start with '" + std::string(p) + "' (reserved by AWS)";
  for (std::string_view s : {"-s3alias", "--ol-s3", ".mrap", "--x-s3"})
    if (b.ends_with(s)) return "a bucket name does not end with '" + std::string(s) + "' (reserved by AWS)";
  return "";
}

std::optional<S3Location> parse_s3_location(std::string_view url, std::string* why) {
  auto no = [&](std::string w) -> std::optional<S3Location> {
    if (why) *why = std::move(w);
    return std::nullopt;
  };
  if (!url.starts_with("s3://")) return no("not an s3:// URL");
  std::string_view rest = url.substr(5);
  size_t slash = rest.find('/');
  S3Location out{std::string(rest.substr(0, slash)),
                 slash == std::string_view::npos ? std::string() : std::string(rest.substr(slash + 1))};
  if (std::string p = s3_bucket_problem(out.bucket); !p.empty()) return no("'" + out.bucket + "': " + p);
  if (out.prefix.starts_with('/')) return no("the prefix starts with '/' (write s3://BUCKET/PREFIX/)");
  if (out.prefix.find("//") != std::string::npos) return no("the prefix holds '//' (an empty path segment)");
  if (std::any_of(out.prefix.begin(), out.prefix.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
    return no("the prefix holds a control character");
  if (out.prefix.size() > 900) return no("the prefix is longer than 900 bytes (object keys are at most 1024)");
  return out;
}

}  // namespace kb
