#include "generator/kubeconfig.h"

#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

namespace kb {

std::string base64_encode(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string render_kubeconfig(const KubeconfigSpec& spec) {
  // yaml-cpp's emitter quotes whatever needs quoting (user names contain ':').
  YAML::Emitter y;
  y << YAML::BeginMap;
  y << YAML::Key << "apiVersion" << YAML::Value << "v1";
  y << YAML::Key << "kind" << YAML::Value << "Config";
  y << YAML::Key << "clusters" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  y << YAML::Key << "name" << YAML::Value << spec.cluster_name;
  y << YAML::Key << "cluster" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "certificate-authority-data" << YAML::Value << base64_encode(spec.ca_pem);
  y << YAML::Key << "server" << YAML::Value << spec.server;
  y << YAML::EndMap << YAML::EndMap << YAML::EndSeq;
  y << YAML::Key << "users" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  y << YAML::Key << "name" << YAML::Value << spec.user;
  y << YAML::Key << "user" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "client-certificate-data" << YAML::Value << base64_encode(spec.client_cert_pem);
  y << YAML::Key << "client-key-data" << YAML::Value << base64_encode(spec.client_key_pem);
  y << YAML::EndMap << YAML::EndMap << YAML::EndSeq;
  y << YAML::Key << "contexts" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  y << YAML::Key << "name" << YAML::Value << "default";
  y << YAML::Key << "context" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "cluster" << YAML::Value << spec.cluster_name;
  y << YAML::Key << "user" << YAML::Value << spec.user;
  y << YAML::EndMap << YAML::EndMap << YAML::EndSeq;
  y << YAML::Key << "current-context" << YAML::Value << "default";
  y << YAML::Key << "preferences" << YAML::Value << YAML::BeginMap << YAML::EndMap;
  y << YAML::EndMap;
  return std::string(y.c_str()) + "\n";
}

}  // namespace kb
