#include "base/version.h"

#ifndef KB_VERSION
#define KB_VERSION "dev"
#endif

namespace kb {

const char* version() { return KB_VERSION; }

}  // namespace kb
