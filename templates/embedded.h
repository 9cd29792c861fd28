#pragma once
// The templates/ folder, compiled in (see cmake/embed_files.cmake).
#include <string_view>
#include <vector>

namespace kb {
struct EmbeddedTemplate {
  std::string_view name;  // file name, e.g. "etcd.service.mustache"
  std::string_view text;
};
const std::vector<EmbeddedTemplate>& embedded_templates();
}  // namespace kb
