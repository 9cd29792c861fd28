#pragma once
// The one exit-code table of both programs (docs/cli.md, checked by tests/integration/exit_codes.sh).
// A code means the same thing in kbundle and kbundle-installer; 4..8 are the installer's only.
// Two kbundle commands give 2 a meaning of their own, as `diff` does: `plan` (changes to apply) and
// `certs` (something inside the renewal window); their usage errors exit 1 instead.

namespace kb {

enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,           // I/O, network, a remote API, anything not the input's fault
  kExitUsage = 2,             // the command line: unknown command or flag, missing or bad value
  kExitInvalidInput = 3,      // the input was refused: topology, state, snapshot, bundle (verification, trust)
  kExitHealthRolledBack = 4,  // installer: a health check (or image import) failed; the previous generation is back
  kExitRefused = 5,           // installer: not for this node, a lower serial, the same serial with other content
  kExitBootstrapFailed = 6,   // installer: applied and healthy, but the bootstrap objects were not applied
  kExitEtcdRemoveFailed = 7,  // installer: applied and healthy, but an etcd member to remove was not removed
  kExitReencryptFailed = 8,   // installer: applied and healthy, but not every Secret was rewritten
};

}  // namespace kb
