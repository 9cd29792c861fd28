#pragma once
// The kube-apiserver EncryptionConfiguration: `secrets` encrypted with the
// first key, every key able to decrypt, identity last so that secrets
// written before encryption was on stay readable.

#include <string>
#include <vector>

#include "generator/key_rotation.h"
#include "topology/topology.h"

namespace kb {

// `keys` in config order (generator/key_rotation.h): consecutive keys of one provider share its
// entry, in order; the first key of the first provider encrypts. Throws kb::Error on an empty list
// or a repeated key name.
std::string render_encryption_config(const std::vector<EncryptionKey>& keys);

}  // namespace kb
