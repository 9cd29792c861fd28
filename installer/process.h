#pragma once
// Running a helper program (systemctl, ctr) from the installer: argv only (no shell), stdin from
// /dev/null, both outputs collected while it runs (so a full pipe cannot block it), and a time
// limit past which the child is killed (SIGKILL), so no helper can hang an apply.

#include <chrono>
#include <string>
#include <vector>

namespace kb::installer {

struct ProcessResult {
  int status = -1;         // exit code, or 128 + signal
  bool timed_out = false;  // killed at the limit
  std::string out, err;    // the first 1 MiB of each; with merge_stderr, both in `out`
};

// Throws kb::Error only when the program cannot be started.
ProcessResult run_process(const std::vector<std::string>& argv, std::chrono::milliseconds limit, bool merge_stderr = false);

// "argv[0] argv[1] ..." for messages.
std::string command_text(const std::vector<std::string>& argv);

}  // namespace kb::installer
