// kbundle publish --to s3://BUCKET/PREFIX/
#include <chrono>
#include <ctime>
#include <ostream>

#include "base/text_escape.h"
#include "aws/config.h"
#include "aws/s3.h"
#include "base/error.h"
#include "base/time.h"
#include "publish/progress.h"
#include "publish/targets.h"
#include "topology/s3_location.h"

namespace kb {

namespace {

// What landed is what we sent: size, the sha256 we stored, the encryption asked for and, under
// SSE-S3, the ETag S3 computed from the bytes it received.
void check_landed(const aws::ObjectInfo& i, const std::string& where, const Artifact& a, const std::string& want_sse,
                  const std::string& want_etag) {
  if (!i.exists) throw Error(where + ": missing right after its upload");
  if (i.size != a.size)
    throw Error(where + ": holds " + std::to_string(i.size) + " bytes after the upload, " + a.path + " has " +
                std::to_string(a.size));
  auto sha = i.metadata.find("sha256");
  if (sha == i.metadata.end() || sha->second != a.sha256)
    throw Error(where + ": x-amz-meta-sha256 is not the sha256 of " + a.path);
  if (i.sse != want_sse)
    throw Error(where + ": server-side encryption is '" + i.sse + "', not " + want_sse +
                " (hint: the endpoint must support SSE; check the bucket's encryption settings)");
  if (!want_etag.empty() && i.etag != want_etag)
    throw Error(where + ": ETag " + i.etag + " is not " + want_etag + ", the MD5 of what was sent: damaged in transit");
}

}  // namespace

void publish_s3(const PublishOptions& o, const PublishSet& set, nlohmann::json& summary, std::ostream& out,
                std::ostream& err, bool progress) {
  std::string why;
  std::optional<S3Location> dest = parse_s3_location(o.to, &why);
  if (!dest) throw Error("--to '" + o.to + "': " + why + " (hint: --to s3://BUCKET/PREFIX/)");
  if (!dest->prefix.empty() && !dest->prefix.ends_with('/')) dest->prefix += '/';
  if (o.part_size_mib < 5 || o.part_size_mib > 512)
    throw PublishUsageError("--part-size " + std::to_string(o.part_size_mib) + ": 5 to 512 (MiB)");
  if (o.expires_seconds < 1 || o.expires_seconds > 604800)
    throw PublishUsageError("--expires " + std::to_string(o.expires_seconds) + ": 1 to 604800 seconds (7 days)");

  aws::EnvLookup env = aws::process_env();
  aws::AwsConfig config = aws::resolve_config(o.region, env);
  if (!aws::is_known_region(config.region))
    throw Error("unknown AWS region '" + config.region + "' (from " + config.region_source + ")");
  aws::S3Endpoint endpoint = aws::resolve_s3_endpoint(config.region, env);
  err << "kbundle: s3://" << dest->bucket << "/" << dest->prefix << ": region " << config.region << " ("
      << config.region_source << "), endpoint " << endpoint.base << (endpoint.custom ? " (path-style)" : "")
      << ", credentials from " << config.credentials.source << "\n";

  auto transport = aws::make_curl_s3_transport();
  aws::S3Client s3(config.credentials, config.region, endpoint, *transport);
  const std::string want_sse = o.kms_key_id.empty() ? "AES256" : "aws:kms";
  // Objects never get an ACL; a bucket policy or an ACL on the bucket could still open them.
  if (std::string open = s3.public_access_problem(dest->bucket); !open.empty())
    err << "kbundle: warning: s3://" << dest->bucket << ": " << open
        << ": a bucket policy or ACL could make the bundles, which hold private keys, public (hint: aws s3api "
           "put-public-access-block --bucket "
        << dest->bucket
        << " --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,"
           "RestrictPublicBuckets=true)\n";

  std::vector<const Artifact*> all;
  for (const auto& b : set.bundles) all.push_back(&b);
  all.push_back(&set.trust_key);
  if (set.installer) all.push_back(&*set.installer);

  summary["target"] = o.to;
  summary["region"] = config.region;
  summary["encryption"] = want_sse;
  auto& objects = summary["objects"] = nlohmann::json::array();
  for (const Artifact* a : all) {
    const std::string key = dest->prefix + a->name;
    const std::string where = "s3://" + dest->bucket + "/" + key;
    nlohmann::json j{{"name", a->name}, {"key", key}, {"size", a->size}, {"sha256", a->sha256}};
    // Only changed objects go up: the sha256 is kept as object metadata.
    aws::ObjectInfo before = s3.head(dest->bucket, key);
    auto stored = before.metadata.find("sha256");
    if (!o.force && before.exists && before.size == a->size && before.sse == want_sse &&
        stored != before.metadata.end() && stored->second == a->sha256) {
      j["status"] = "unchanged";
      if (!o.json) out << "unchanged  " << where << "\n";
      objects.push_back(j);
      continue;
    }
    aws::UploadOptions up;
    up.kms_key_id = o.kms_key_id;
    up.metadata["sha256"] = a->sha256;
    up.part_size = o.part_size_mib << 20;
    auto start = std::chrono::steady_clock::now();
    aws::UploadResult r;
    {
      Progress bar(err, progress, a->name);  // erased before the result line
      up.progress = [&bar](uint64_t done, uint64_t total) { bar.update(done, total); };
      r = s3.upload_file(dest->bucket, key, a->path, up);
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    check_landed(s3.head(dest->bucket, key), where, *a, want_sse, o.kms_key_id.empty() ? r.expected_etag : "");
    j["status"] = "uploaded";
    j["parts"] = r.parts;
    j["retries"] = r.retries;
    j["seconds"] = seconds;
    if (!o.json) {
      char line[160];
      std::snprintf(line, sizeof line, "  %llu bytes, %s, %.2f s%s", static_cast<unsigned long long>(a->size),
                    r.parts ? (std::to_string(r.parts) + " parts").c_str() : "1 PUT", seconds,
                    r.retries ? (", " + std::to_string(r.retries) + " retried").c_str() : "");
      out << "uploaded   " << where << line << ", verified\n";
    }
    objects.push_back(j);
  }

  // One presigned URL per node, and the command that installs the bundle there.
  const std::time_t now = std::time(nullptr);
  const std::string expires_at = rfc3339_utc(now + o.expires_seconds);
  auto& nodes = summary["nodes"] = nlohmann::json::array();
  if (set.installer) {
    std::string url = s3.presign(dest->bucket, dest->prefix + set.installer->name, std::chrono::seconds(o.expires_seconds), now);
    std::string cmd = "curl -fsS -o /tmp/kbundle-installer " + shell_quote(url) + " && echo " +
                      shell_quote(set.installer->sha256 + "  /tmp/kbundle-installer") +
                      " | sha256sum -c - && install -m 0755 /tmp/kbundle-installer /usr/local/bin/kbundle-installer";
    summary["installer"] = {{"url", url}, {"expires", expires_at}, {"command", cmd}};
    if (!o.json) out << "\n# every node, once (the installer; URL valid until " << expires_at << "):\n" << cmd << "\n";
  }
  for (const auto& b : set.bundles) {
    std::string url = s3.presign(dest->bucket, dest->prefix + b.name, std::chrono::seconds(o.expires_seconds), now);
    std::string download = "curl -fsS -o " + shell_quote(b.name) + " " + shell_quote(url);
    std::string cmd = node_command(set, b, o.node_dir, download);
    nodes.push_back({{"node", b.node}, {"serial", b.serial}, {"url", url}, {"expires", expires_at}, {"command", cmd}});
    if (!o.json) out << "\n# " << b.node << " (serial " << b.serial << ", URL valid until " << expires_at << "):\n" << cmd << "\n";
  }
  summary["requests"] = s3.requests();
}

}  // namespace kb
