#pragma once
// Credentials, region and endpoints, found as the AWS CLI and SDKs find them:
//   credentials: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), else the profile
//     (AWS_PROFILE, else "default") in AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials), then in
//     AWS_CONFIG_FILE (~/.aws/config, section "[profile NAME]" or "[default]").
//   region: the topology's aws.region, else AWS_REGION, AWS_DEFAULT_REGION, the profile's region.
//   endpoints: AWS_ENDPOINT_URL_EC2 / AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2 (or _ELASTIC_LOAD_BALANCING),
//     else AWS_ENDPOINT_URL, else the profile's endpoint_url, else https://<service>.<region>.amazonaws.com;
//     AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true skips every override.
// Not supported: SSO, credential_process, role assumption, instance metadata.

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace kb::aws {

// Reads one environment variable; the process's in production, a map in tests.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup process_env();
EnvLookup map_env(std::map<std::string, std::string> vars);

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;  // never printed
  std::string session_token;      // empty unless temporary credentials; never printed
  std::string source;             // for messages: "environment", "profile 'dev' in /home/u/.aws/credentials"
};

enum class Service { Ec2, Elb };
const char* signing_name(Service s);  // "ec2", "elasticloadbalancing"
const char* api_version(Service s);   // "2016-11-15", "2015-12-01"

struct AwsConfig {
  Credentials credentials;
  std::string region;
  std::string region_source;
  std::string ec2_endpoint;  // "https://ec2.eu-west-1.amazonaws.com" or an override, no trailing '/'
  std::string elb_endpoint;

  const std::string& endpoint(Service s) const { return s == Service::Ec2 ? ec2_endpoint : elb_endpoint; }
};

// INI sections as the AWS CLI reads its files: "[name]", "key = value", '#'/';' comments;
// indented continuation lines (nested settings) are ignored.
using IniFile = std::map<std::string, std::map<std::string, std::string>>;
IniFile parse_ini(std::string_view text);

// Every AWS region this release knows; an unknown one is refused before any request.
bool is_known_region(const std::string& region);
std::string known_regions();  // for messages

// Resolves everything; throws kb::Error with a hint when credentials or the region are missing,
// the region is unknown, a named profile does not exist or an endpoint is not an http(s) URL.
AwsConfig resolve_config(const std::string& topology_region, const EnvLookup& env);

}  // namespace kb::aws
