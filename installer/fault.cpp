#include "installer/fault.h"

#include <csignal>
#include <cstdio>
#include <unistd.h>

namespace kb::installer {

void FaultPoints::reached(const std::string& name) const {
  if (list) std::fprintf(stderr, "kb-fault-point: %s\n", name.c_str());
  if (!kill_at.empty() && name == kill_at) {
    std::fflush(nullptr);
    ::kill(::getpid(), SIGKILL);
  }
}

}  // namespace kb::installer
