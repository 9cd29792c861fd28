#pragma once
// Test-only fault injection: the crash tests (tests/integration/installer_crash.sh) kill the
// installer at each named point to prove that recovery works from there. Inert unless a test
// sets it; production never does (README.md, "Test-only hooks").
// Names: after-stage, after-journal-<n>, after-backup-<i>, after-file-<i>, after-daemon-reload,
// after-restart-<i>, before-commit, after-commit-current, after-commit-pin, after-commit-journal,
// after-restore-<i>, bootstrap-after-object-<i> (the i-th bootstrap object applied and recorded).

#include <string>

namespace kb::installer {

struct FaultPoints {
  std::string kill_at;  // the process kills itself with SIGKILL when it reaches this point
  bool list = false;    // every point reached is printed to stderr as "kb-fault-point: <name>"

  void reached(const std::string& name) const;
};

}  // namespace kb::installer
