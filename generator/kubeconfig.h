#pragma once
// Kubeconfig files with everything embedded (CA, client cert and key):
// one cluster, one user, one context, current-context set.

#include <string>

namespace kb {

struct KubeconfigSpec {
  std::string cluster_name;
  std::string server;  // https://host:port
  std::string ca_pem;
  std::string user;    // the user entry's name, e.g. system:node:worker-0
  std::string client_cert_pem;
  std::string client_key_pem;
};

std::string render_kubeconfig(const KubeconfigSpec& spec);

}  // namespace kb
