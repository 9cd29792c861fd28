#pragma once
// A fresh directory under $TMPDIR (or /tmp), removed with everything in it when the object goes.
// For tests and benchmarks; written once so that every test folder makes its scratch space the same way.

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "base/error.h"

namespace kb {

struct TempDir {
  std::string path;
  explicit TempDir(std::string_view prefix = "kb-test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (std::string(prefix) + ".XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) throw_errno(tmpl + ": cannot make a temporary directory");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& rel) const { return path + "/" + rel; }
};

}  // namespace kb
