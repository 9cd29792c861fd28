#include "installer/fault.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

namespace kb::installer {

void fault_point(const std::string& name) {
  if (const char* list = std::getenv("KB_FAULT_LIST"); list && std::string(list) == "1")
    std::fprintf(stderr, "kb-fault-point: %s\n", name.c_str());
  if (const char* point = std::getenv("KB_FAULT_POINT"); point && name == point) {
    std::fflush(nullptr);
    ::kill(::getpid(), SIGKILL);
  }
}

}  // namespace kb::installer
