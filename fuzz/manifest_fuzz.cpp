// Fuzz target: the manifest parser. Any input is parsed or refused with a BundleError; whatever it
// accepts must be canonical (serialize_manifest gives back exactly the input bytes).
#include <cstddef>
#include <cstdint>
#include <string>

#include "bundles/bundle_error.h"
#include "bundles/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    kb::Manifest m = kb::parse_manifest(bytes);
    if (kb::serialize_manifest(m) != bytes) __builtin_trap();
  } catch (const kb::BundleError&) {
  }
  return 0;
}
