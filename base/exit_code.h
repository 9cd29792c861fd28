#pragma once
// kbundle's exit codes (README.md, "Exit codes of kbundle"). kbundle-installer adds its own
// above kExitUsage (installer/installer.h).

namespace kb {

enum ExitCode : int { kExitOk = 0, kExitFailure = 1, kExitUsage = 2, kExitInvalidInput = 3 };

}  // namespace kb
