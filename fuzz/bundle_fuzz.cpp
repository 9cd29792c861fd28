// Fuzz target: the bundle reader and extractor, on any file, with the corpus's signing key trusted.
// Whatever the bytes, the reader refuses them with a BundleError or accepts them; extraction writes
// only inside its own directory (a sentinel beside it must stay untouched) and leaves it empty on
// refusal. Mutations land in compressed frames, tar headers, the manifest and the signature.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include "bundles/bundle_error.h"
#include "bundles/bundle_reader.h"

namespace fs = std::filesystem;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Scratch {
  fs::path dir;
  std::string key;
  Scratch() {
    dir = fs::temp_directory_path() / ("kb-fuzz-bundle-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "sentinel") << "untouched";
    key = read_all(KB_SOURCE_DIR "/fuzz/corpus/bundle-signing.pub");
    if (key.empty()) __builtin_trap();
  }
  ~Scratch() { fs::remove_all(dir); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Scratch s;
  const std::string file = (s.dir / "input.kbundle").string(), out = (s.dir / "out").string();
  {
    std::ofstream f(file, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  fs::remove_all(out);
  bool accepted = false;
  try {
    kb::extract_bundle(file, s.key, out);
    accepted = true;
  } catch (const kb::BundleError&) {
  } catch (const kb::Error&) {
  }
  // Nothing outside `out`: the scratch dir holds exactly the sentinel, the input and `out`.
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(s.dir)) {
    (void)e;
    ++entries;
  }
  if (entries > 3 || read_all((s.dir / "sentinel").string()) != "untouched") __builtin_trap();
  // A refused bundle leaves its extraction directory empty.
  if (!accepted && fs::exists(out) && !fs::is_empty(out)) __builtin_trap();
  return 0;
}
