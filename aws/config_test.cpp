#include "aws/config.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "base/error.h"

namespace {

using namespace kb::aws;
namespace fs = std::filesystem;

// A temp HOME with ~/.aws/credentials and ~/.aws/config, removed at the end.
struct Home {
  fs::path dir;
  Home(const std::string& credentials, const std::string& config) {
    char tmpl[] = "/tmp/kb-aws-config.XXXXXX";
    dir = ::mkdtemp(tmpl);
    fs::create_directories(dir / ".aws");
    std::ofstream(dir / ".aws/credentials") << credentials;
    std::ofstream(dir / ".aws/config") << config;
  }
  ~Home() { fs::remove_all(dir); }
};

}  // namespace

TEST_CASE("config: ini files as the AWS CLI reads them", "[config]") {
  auto ini = parse_ini(
      "# comment\n[default]\naws_access_key_id = AKIA1 \naws_secret_access_key=s1 # note\n; other\n"
      "[profile dev]\nregion = eu-west-1\ns3 =\n  max_concurrent_requests = 10\nendpoint_url=http://127.0.0.1:5000/\n"
      "orphan\n[broken\nkey=v\n");
  CHECK(ini["default"]["aws_access_key_id"] == "AKIA1");
  CHECK(ini["default"]["aws_secret_access_key"] == "s1");
  CHECK(ini["profile dev"]["region"] == "eu-west-1");
  CHECK(ini["profile dev"].count("max_concurrent_requests") == 0);
  CHECK(ini["profile dev"]["endpoint_url"] == "http://127.0.0.1:5000/");
  CHECK(ini.count("broken") == 0);
}

TEST_CASE("config: environment credentials win, with the session token", "[config]") {
  Home home("[default]\naws_access_key_id=FILE\naws_secret_access_key=FILESECRET\n", "");
  auto c = resolve_config("", map_env({{"HOME", home.dir}, {"AWS_ACCESS_KEY_ID", "ENV"},
                                       {"AWS_SECRET_ACCESS_KEY", "ENVSECRET"}, {"AWS_SESSION_TOKEN", "TOK"},
                                       {"AWS_REGION", "us-west-2"}, {"AWS_DEFAULT_REGION", "eu-west-1"}}));
  CHECK(c.credentials.access_key_id == "ENV");
  CHECK(c.credentials.session_token == "TOK");
  CHECK(c.credentials.source == "environment");
  CHECK(c.region == "us-west-2");
}

TEST_CASE("config: profiles from the credentials file, then the config file", "[config]") {
  Home home("[default]\naws_access_key_id=D\naws_secret_access_key=DS\n[ops]\naws_access_key_id=O\naws_secret_access_key=OS\n",
            "[default]\nregion=eu-central-1\n[profile cfg]\naws_access_key_id=C\naws_secret_access_key=CS\n"
            "region=ap-south-1\nendpoint_url=http://127.0.0.1:9/\n");
  auto base = std::map<std::string, std::string>{{"HOME", home.dir}};

  auto d = resolve_config("", map_env(base));
  CHECK(d.credentials.access_key_id == "D");
  CHECK(d.region == "eu-central-1");
  CHECK(d.ec2_endpoint == "https://ec2.eu-central-1.amazonaws.com");
  CHECK(d.elb_endpoint == "https://elasticloadbalancing.eu-central-1.amazonaws.com");

  auto ops = base;
  ops["AWS_PROFILE"] = "ops";
  auto o = resolve_config("us-east-2", map_env(ops));
  CHECK(o.credentials.access_key_id == "O");
  CHECK(o.region == "us-east-2");  // the topology's region wins
  CHECK(o.credentials.source.find("'ops'") != std::string::npos);

  auto cfg = base;
  cfg["AWS_PROFILE"] = "cfg";
  auto c = resolve_config("", map_env(cfg));
  CHECK(c.credentials.access_key_id == "C");
  CHECK(c.region == "ap-south-1");
  CHECK(c.ec2_endpoint == "http://127.0.0.1:9");

  auto missing = base;
  missing["AWS_PROFILE"] = "nope";
  CHECK_THROWS_WITH(resolve_config("", map_env(missing)), Catch::Contains("profile 'nope' not found"));

  auto files = base;
  files["AWS_SHARED_CREDENTIALS_FILE"] = (home.dir / "none").string();
  files["AWS_CONFIG_FILE"] = (home.dir / "none2").string();
  CHECK_THROWS_WITH(resolve_config("eu-west-1", map_env(files)), Catch::Contains("no AWS credentials"));
}

TEST_CASE("config: half-set credentials, missing and unknown regions are refused", "[config]") {
  Home home("", "");
  std::map<std::string, std::string> env = {{"HOME", home.dir}, {"AWS_ACCESS_KEY_ID", "A"}};
  CHECK_THROWS_WITH(resolve_config("eu-west-1", map_env(env)), Catch::Contains("AWS_SECRET_ACCESS_KEY"));
  env["AWS_SECRET_ACCESS_KEY"] = "S";
  CHECK_THROWS_WITH(resolve_config("", map_env(env)), Catch::Contains("no AWS region"));
  CHECK_THROWS_WITH(resolve_config("xx-nowhere-1", map_env(env)), Catch::Contains("unknown AWS region 'xx-nowhere-1'"));
  CHECK(is_known_region("eu-west-1"));
  CHECK(is_known_region("cn-north-1"));
  CHECK_FALSE(is_known_region("eu-west-99"));
}

TEST_CASE("config: endpoint overrides, per service first", "[config]") {
  Home home("", "");
  std::map<std::string, std::string> env = {{"HOME", home.dir}, {"AWS_ACCESS_KEY_ID", "A"},
                                            {"AWS_SECRET_ACCESS_KEY", "S"}, {"AWS_ENDPOINT_URL", "http://127.0.0.1:1/"}};
  auto all = resolve_config("eu-west-1", map_env(env));
  CHECK(all.ec2_endpoint == "http://127.0.0.1:1");
  CHECK(all.elb_endpoint == "http://127.0.0.1:1");

  env["AWS_ENDPOINT_URL_EC2"] = "http://127.0.0.1:2";
  env["AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING"] = "http://127.0.0.1:3";
  auto per = resolve_config("eu-west-1", map_env(env));
  CHECK(per.ec2_endpoint == "http://127.0.0.1:2");
  CHECK(per.elb_endpoint == "http://127.0.0.1:3");
  env["AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2"] = "http://127.0.0.1:4";
  CHECK(resolve_config("eu-west-1", map_env(env)).elb_endpoint == "http://127.0.0.1:4");

  env["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true";
  auto ignored = resolve_config("cn-north-1", map_env(env));
  CHECK(ignored.ec2_endpoint == "https://ec2.cn-north-1.amazonaws.com.cn");

  env.erase("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
  env["AWS_ENDPOINT_URL_EC2"] = "127.0.0.1:5000";
  CHECK_THROWS_WITH(resolve_config("eu-west-1", map_env(env)), Catch::Contains("not an http:// or https:// URL"));
}
