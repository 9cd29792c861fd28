// Fuzz target: the certificate inventory (bundles/cert_inventory.h) that `kbundle certs` and
// `kbundle-installer status` run on certificate files and kubeconfigs. Any input is listed or
// reported as problems; it never crashes, and problems stay bounded and one line each.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bundles/cert_inventory.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> problems;
  std::vector<kb::CertInfo> certs = kb::certificates_in("/fuzz/input.crt", bytes, &problems);
  if (problems.size() > 21) __builtin_trap();
  for (const auto& p : problems)
    if (p.find('\n') != std::string::npos) __builtin_trap();
  for (const auto& c : certs)
    if (c.source.rfind("/fuzz/input.crt", 0) != 0 || c.sha256_fingerprint.size() != 64) __builtin_trap();
  return 0;
}
