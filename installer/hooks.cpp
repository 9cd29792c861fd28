#include "installer/hooks.h"

#include <cstdlib>
#include <ctime>

namespace kb::installer {

int64_t system_clock_now() { return static_cast<int64_t>(std::time(nullptr)); }

Hooks hooks_from_environment() {
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v ? v : "");
  };
  Hooks h;
  h.faults.kill_at = env("KB_FAULT_POINT");
  h.faults.list = env("KB_FAULT_LIST") == "1";
  h.skip_space_check = env("KB_TEST_SKIP_SPACE_CHECK") == "1";
  h.imds_endpoint = env("KB_IMDS_ENDPOINT");
  h.null_services = env("KB_TEST_NULL_SERVICES") == "1";
  return h;
}

}  // namespace kb::installer
