#pragma once
// A file compiled into a program (cmake/embed_files.cmake): the templates and the release catalog.
#include <string_view>
#include <vector>

namespace kb {
struct EmbeddedFile {
  std::string_view name;  // file name, e.g. "etcd.service.mustache" or "v1.32.json"
  std::string_view text;
};
const std::vector<EmbeddedFile>& embedded_templates();     // templates/
const std::vector<EmbeddedFile>& embedded_catalog_files();  // binaries/catalog/
}  // namespace kb
