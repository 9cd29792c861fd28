#include "base/error.h"

#include <cerrno>
#include <cstring>

namespace kb {

void throw_errno(const std::string& what) { throw Error(what + ": " + std::strerror(errno)); }

}  // namespace kb
