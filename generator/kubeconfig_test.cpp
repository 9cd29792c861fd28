#include "generator/kubeconfig.h"

#include <catch2/catch.hpp>
#include <yaml-cpp/yaml.h>

#include "base/hash.h"


TEST_CASE("kubeconfig: one cluster, user and context, everything embedded", "[kubeconfig]") {
  kb::KubeconfigSpec spec{"kthw", "https://api.example.com:6443", "CA PEM\n", "system:node:worker-0",
                          "CERT PEM\n", "KEY PEM\n"};
  YAML::Node y = YAML::Load(kb::render_kubeconfig(spec));
  CHECK(y["apiVersion"].as<std::string>() == "v1");
  CHECK(y["kind"].as<std::string>() == "Config");
  REQUIRE(y["clusters"].size() == 1);
  CHECK(y["clusters"][0]["name"].as<std::string>() == "kthw");
  CHECK(y["clusters"][0]["cluster"]["server"].as<std::string>() == "https://api.example.com:6443");
  CHECK(y["clusters"][0]["cluster"]["certificate-authority-data"].as<std::string>() == kb::base64_encode("CA PEM\n"));
  REQUIRE(y["users"].size() == 1);
  CHECK(y["users"][0]["name"].as<std::string>() == "system:node:worker-0");
  CHECK(y["users"][0]["user"]["client-certificate-data"].as<std::string>() == kb::base64_encode("CERT PEM\n"));
  CHECK(y["users"][0]["user"]["client-key-data"].as<std::string>() == kb::base64_encode("KEY PEM\n"));
  REQUIRE(y["contexts"].size() == 1);
  CHECK(y["contexts"][0]["context"]["user"].as<std::string>() == "system:node:worker-0");
  CHECK(y["contexts"][0]["context"]["cluster"].as<std::string>() == "kthw");
  CHECK(y["current-context"].as<std::string>() == y["contexts"][0]["name"].as<std::string>());
}

TEST_CASE("kubeconfig: quotes survive", "[kubeconfig]") {
  kb::KubeconfigSpec spec{"a\"b\\c", "https://h:1", "x", "u: v #w", "y", "z"};
  YAML::Node y = YAML::Load(kb::render_kubeconfig(spec));
  CHECK(y["clusters"][0]["name"].as<std::string>() == "a\"b\\c");
  CHECK(y["users"][0]["name"].as<std::string>() == "u: v #w");
}

TEST_CASE("base64: RFC 4648 vectors", "[kubeconfig]") {
  CHECK(kb::base64_encode("") == "");
  CHECK(kb::base64_encode("f") == "Zg==");
  CHECK(kb::base64_encode("fo") == "Zm8=");
  CHECK(kb::base64_encode("foo") == "Zm9v");
  CHECK(kb::base64_encode("foobar") == "Zm9vYmFy");
}
