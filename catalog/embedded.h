#pragma once
// The catalog/ folder, compiled in (see cmake/embed_files.cmake): one JSON file per
// supported Kubernetes minor. Parsed by generator/catalog.h.
#include <string_view>
#include <vector>

namespace kb {
struct EmbeddedFile {
  std::string_view name;  // file name, e.g. "v1.32.json"
  std::string_view data;
};
const std::vector<EmbeddedFile>& embedded_catalog_files();
}  // namespace kb
