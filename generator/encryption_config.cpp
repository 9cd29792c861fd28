#include "generator/encryption_config.h"

#include <set>

#include "base/error.h"

namespace kb {

std::string render_encryption_config(const std::vector<EncryptionKey>& keys) {
  if (keys.empty()) throw Error("internal error: an encryption config without a key");
  std::set<std::string> names;
  for (const auto& k : keys)
    if (!names.insert(k.name).second) throw Error("internal error: encryption key name " + k.name + " twice");
  // All three providers take a 32-byte key: aescbc and aesgcm as AES-256, secretbox as XSalsa20-Poly1305.
  std::string out =
      "apiVersion: apiserver.config.k8s.io/v1\n"
      "kind: EncryptionConfiguration\n"
      "resources:\n"
      "  - resources:\n"
      "      - secrets\n"
      "    providers:\n";
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i == 0 || keys[i].provider != keys[i - 1].provider)
      out += std::string("      - ") + to_string(keys[i].provider) + ":\n          keys:\n";
    out += "            - name: " + keys[i].name + "\n              secret: " + keys[i].secret_base64 + "\n";
  }
  return out + "      - identity: {}\n";
}

}  // namespace kb
