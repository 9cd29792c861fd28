#pragma once
// The kube-apiserver EncryptionConfiguration: `secrets` encrypted with the
// chosen provider and the cluster's key, identity last so that secrets
// written before encryption was on stay readable.

#include <string>

#include "topology/topology.h"

namespace kb {

std::string render_encryption_config(EncryptionProvider provider, const std::string& key_base64);

}  // namespace kb
