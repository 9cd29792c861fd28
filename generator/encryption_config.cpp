#include "generator/encryption_config.h"

namespace kb {

std::string render_encryption_config(EncryptionProvider provider, const std::string& key_base64) {
  // All three providers take a 32-byte key: aescbc and aesgcm as AES-256, secretbox as XSalsa20-Poly1305.
  return std::string(
             "apiVersion: apiserver.config.k8s.io/v1\n"
             "kind: EncryptionConfiguration\n"
             "resources:\n"
             "  - resources:\n"
             "      - secrets\n"
             "    providers:\n"
             "      - ") +
         to_string(provider) +
         ":\n"
         "          keys:\n"
         "            - name: key1\n"
         "              secret: " +
         key_base64 +
         "\n"
         "      - identity: {}\n";
}

}  // namespace kb
