#include "aws/config.h"

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <vector>

#include "base/error.h"

namespace kb::aws {

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

EnvLookup map_env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

const char* signing_name(Service s) { return s == Service::Ec2 ? "ec2" : "elasticloadbalancing"; }
const char* api_version(Service s) { return s == Service::Ec2 ? "2016-11-15" : "2015-12-01"; }

namespace {

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

// A set, non-empty variable.
std::optional<std::string> get(const EnvLookup& env, const std::string& name) {
  auto v = env(name);
  if (!v || v->empty()) return std::nullopt;
  return v;
}

// Commercial, China and GovCloud regions (2025).
constexpr std::string_view kRegions[] = {
    "us-east-1",      "us-east-2",      "us-west-1",      "us-west-2",      "af-south-1",     "ap-east-1",
    "ap-east-2",      "ap-south-1",     "ap-south-2",     "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-7",
    "ca-central-1",   "ca-west-1",      "eu-central-1",   "eu-central-2",   "eu-west-1",      "eu-west-2",
    "eu-west-3",      "eu-south-1",     "eu-south-2",     "eu-north-1",     "il-central-1",   "me-south-1",
    "me-central-1",   "mx-central-1",   "sa-east-1",      "cn-north-1",     "cn-northwest-1", "us-gov-east-1",
    "us-gov-west-1"};

struct Files {
  std::string credentials_path, config_path;
  IniFile credentials, config;
};

IniFile read_ini(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_ini(text);
}

Files read_files(const EnvLookup& env) {
  Files f;
  std::string home = get(env, "HOME").value_or("");
  f.credentials_path = get(env, "AWS_SHARED_CREDENTIALS_FILE").value_or(home + "/.aws/credentials");
  f.config_path = get(env, "AWS_CONFIG_FILE").value_or(home + "/.aws/config");
  f.credentials = read_ini(f.credentials_path);
  f.config = read_ini(f.config_path);
  return f;
}

const std::map<std::string, std::string>* config_section(const Files& f, const std::string& profile) {
  auto it = f.config.find(profile == "default" ? "default" : "profile " + profile);
  if (it == f.config.end() && profile == "default") it = f.config.find("profile default");
  return it == f.config.end() ? nullptr : &it->second;
}

std::string value_of(const std::map<std::string, std::string>* section, const std::string& key) {
  if (!section) return {};
  auto it = section->find(key);
  return it == section->end() ? std::string() : it->second;
}

Credentials resolve_credentials(const EnvLookup& env, const Files& files, const std::string& profile,
                                bool profile_named) {
  auto id = get(env, "AWS_ACCESS_KEY_ID");
  auto secret = get(env, "AWS_SECRET_ACCESS_KEY");
  if (id && secret) return {*id, *secret, get(env, "AWS_SESSION_TOKEN").value_or(""), "environment"};
  if (id || secret)
    throw Error(std::string("AWS credentials: ") + (id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY") +
                " is set but " + (id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID") +
                " is not (hint: set both, or neither to use a profile)");

  auto from = [&](const std::map<std::string, std::string>* s, const std::string& where) -> std::optional<Credentials> {
    std::string k = value_of(s, "aws_access_key_id"), sk = value_of(s, "aws_secret_access_key");
    if (k.empty() || sk.empty()) return std::nullopt;
    return Credentials{k, sk, value_of(s, "aws_session_token"), "profile '" + profile + "' in " + where};
  };
  auto cit = files.credentials.find(profile);
  if (auto c = from(cit == files.credentials.end() ? nullptr : &cit->second, files.credentials_path)) return *c;
  if (auto c = from(config_section(files, profile), files.config_path)) return *c;
  bool exists = cit != files.credentials.end() || config_section(files, profile) != nullptr;
  if (profile_named && !exists)
    throw Error("AWS profile '" + profile + "' not found in " + files.credentials_path + " or " + files.config_path +
                " (hint: check AWS_PROFILE)");
  throw Error("no AWS credentials found: not in the environment, nor for profile '" + profile + "' in " +
              files.credentials_path + " or " + files.config_path +
              " (hint: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)");
}

std::string check_url(const std::string& url, const std::string& where) {
  if (!url.starts_with("http://") && !url.starts_with("https://"))
    throw Error(where + ": '" + url + "' is not an http:// or https:// URL");
  std::string out = url;
  while (out.ends_with('/')) out.pop_back();
  return out;
}

std::string resolve_endpoint(Service s, const std::string& region, const EnvLookup& env,
                             const std::map<std::string, std::string>* profile_config) {
  bool ignore = get(env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").value_or("") == "true";
  if (!ignore) {
    std::vector<std::string> vars;
    if (s == Service::Ec2) vars = {"AWS_ENDPOINT_URL_EC2"};
    else vars = {"AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2", "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING"};
    vars.push_back("AWS_ENDPOINT_URL");
    for (const auto& v : vars)
      if (auto url = get(env, v)) return check_url(*url, v);
    std::string from_profile = value_of(profile_config, "endpoint_url");
    if (!from_profile.empty()) return check_url(from_profile, "endpoint_url in the AWS config file");
  }
  std::string host = s == Service::Ec2 ? "ec2" : "elasticloadbalancing";
  std::string suffix = region.starts_with("cn-") ? ".amazonaws.com.cn" : ".amazonaws.com";
  return "https://" + host + "." + region + suffix;
}

}  // namespace

IniFile parse_ini(std::string_view text) {
  IniFile out;
  std::string section;
  bool in_section = false;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view raw = text.substr(pos, end - pos);
    pos = end + 1;
    if (raw.empty() || raw[0] == ' ' || raw[0] == '\t') continue;  // blank, or a nested setting
    std::string line = trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      size_t close = line.find(']');
      if (close == std::string::npos) {
        in_section = false;
        continue;
      }
      section = trim(std::string_view(line).substr(1, close - 1));
      in_section = true;
      out[section];
      continue;
    }
    size_t eq = line.find('=');
    if (!in_section || eq == std::string::npos) continue;
    std::string value = trim(std::string_view(line).substr(eq + 1));
    // An inline comment needs whitespace before it ("key = v # note").
    for (size_t i = 1; i < value.size(); ++i)
      if ((value[i] == '#' || value[i] == ';') && (value[i - 1] == ' ' || value[i - 1] == '\t')) {
        value = trim(std::string_view(value).substr(0, i));
        break;
      }
    out[section][trim(std::string_view(line).substr(0, eq))] = value;
  }
  return out;
}

bool is_known_region(const std::string& region) {
  for (std::string_view r : kRegions)
    if (r == region) return true;
  return false;
}

std::string known_regions() {
  std::string out;
  for (std::string_view r : kRegions) {
    if (!out.empty()) out += ", ";
    out += r;
  }
  return out;
}

AwsConfig resolve_config(const std::string& topology_region, const EnvLookup& env) {
  Files files = read_files(env);
  auto named = get(env, "AWS_PROFILE");
  if (!named) named = get(env, "AWS_DEFAULT_PROFILE");
  std::string profile = named.value_or("default");
  const auto* profile_config = config_section(files, profile);

  AwsConfig c;
  c.credentials = resolve_credentials(env, files, profile, named.has_value());

  if (!topology_region.empty()) {
    c.region = topology_region;
    c.region_source = "aws.region in the topology";
  } else if (auto r = get(env, "AWS_REGION")) {
    c.region = *r;
    c.region_source = "AWS_REGION";
  } else if (auto d = get(env, "AWS_DEFAULT_REGION")) {
    c.region = *d;
    c.region_source = "AWS_DEFAULT_REGION";
  } else if (std::string p = value_of(profile_config, "region"); !p.empty()) {
    c.region = p;
    c.region_source = "profile '" + profile + "' in " + files.config_path;
  } else {
    throw Error("no AWS region (hint: set aws.region in the topology, or AWS_REGION)");
  }
  if (!is_known_region(c.region))
    throw Error("unknown AWS region '" + c.region + "' (from " + c.region_source + ") (hint: valid regions: " +
                known_regions() + ")");

  c.ec2_endpoint = resolve_endpoint(Service::Ec2, c.region, env, profile_config);
  c.elb_endpoint = resolve_endpoint(Service::Elb, c.region, env, profile_config);
  return c;
}

}  // namespace kb::aws
