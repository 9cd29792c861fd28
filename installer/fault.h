#pragma once
// Test-only fault injection (compiled in always, inert unless the variable is set):
//   KB_FAULT_POINT=<name>  the process kills itself with SIGKILL when it reaches <name>
//   KB_FAULT_LIST=1        every point reached is printed to stderr as "kb-fault-point: <name>"
// Names: after-stage, after-journal-<n>, after-backup-<i>, after-file-<i>, after-daemon-reload,
// after-restart-<i>, before-commit, after-commit-current, after-commit-journal, after-restore-<i>.

#include <string>

namespace kb::installer {

void fault_point(const std::string& name);

}  // namespace kb::installer
