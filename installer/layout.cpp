#include "installer/layout.h"

#include <climits>
#include <cstdlib>

#include "base/error.h"

namespace kb::installer {

Layout::Layout(const std::string& root_dir) {
  if (root_dir.empty() || root_dir == "/") return;
  char buf[PATH_MAX];
  if (!::realpath(root_dir.c_str(), buf)) throw_errno("--root " + root_dir);
  root = buf;
  if (root == "/") root.clear();
}

}  // namespace kb::installer
