#pragma once
// "s3://BUCKET/PREFIX/": where `kbundle publish --to` puts the bundles and where the nodes' user
// data (aws.userData.bundles) fetches them. Parsed here, once, for the topology and publish.
// Bucket rules: AWS's general purpose bucket naming rules (docs/aws.md, "User data").

#include <optional>
#include <string>
#include <string_view>

namespace kb {

struct S3Location {
  std::string bucket;
  std::string prefix;  // as written after "BUCKET/": "" or e.g. "clusters/kthw/"
};

// Why `bucket` is not a valid general purpose bucket name, or "" when it is.
std::string s3_bucket_problem(std::string_view bucket);

// Splits "s3://BUCKET[/PREFIX]". nullopt with `why` set when it is not an s3:// URL, the bucket
// breaks a naming rule, or the prefix is not a usable key prefix (starts with '/', holds "//",
// a control character, or is longer than 900 bytes: keys are at most 1024). The prefix is
// returned as written (callers decide whether it must end in '/').
std::optional<S3Location> parse_s3_location(std::string_view url, std::string* why);

}  // namespace kb
