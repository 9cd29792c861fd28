#pragma once
// kbundle-installer's commands as library calls (installer/main.cpp only wires
// them to argv). Every command takes a root ("/" on a real node) and never
// touches anything outside it; the service manager, the health checks and the
// test-only seams come in through Hooks (installer/hooks.h) so that tests can run
// every path without systemd.

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "base/error.h"
#include "installer/hooks.h"

namespace kb::installer {

// The process exit codes (README.md, section 5).
enum class ExitCode {
  Ok = 0,
  Failure = 1,        // I/O, space, drift found, a crash that could not be recovered
  Usage = 2,          // bad command line
  BadBundle = 3,      // verification or trust refused the bundle (G1, G3, G6)
  HealthRolledBack = 4,  // a health check failed; the previous generation was restored (G9)
  Refused = 5,        // wrong node, lower serial, same serial with other content (G4, G5)
  BootstrapFailed = 6,  // the node is applied and healthy, but its bootstrap objects were not applied
                        // (docs/bootstrap.md): nothing was rolled back; `kbundle-installer bootstrap` retries
  EtcdRemoveFailed = 7,  // the node is applied and healthy, but an etcd member its bundle removes was not
                         // removed (docs/etcd.md): nothing was rolled back; applying the same bundle retries
  ReencryptFailed = 8,   // the node is applied and healthy, but not every Secret was rewritten with the new
                         // encryption key (docs/rotation.md): nothing was rolled back; applying the same bundle retries
};

// A refusal or failure with the exit code it maps to; what() is "<what>: <why>".
class InstallerError : public Error {
 public:
  InstallerError(ExitCode code, const std::string& what) : Error(what), code_(code) {}
  ExitCode code() const { return code_; }

 private:
  ExitCode code_;
};

struct Options {
  std::string root = "/";
  bool no_systemd = false;  // null service manager, health checks skipped
  bool dry_run = false;     // print what would change, write nothing
  bool json = false;        // one JSON object on stdout, progress on stderr
  std::string trust_key_file;     // PEM public key to pin on first apply
  std::string trust_fingerprint;  // or its fingerprint, with bundle-signing.pub next to the bundle
  std::string node;         // tests only: accept a bundle for this node name without the machine check
  bool yes = false;         // reset: really do it
  bool purge = false;       // reset: also remove /var/lib/etcd
  int bootstrap_deadline = 300;  // seconds the bootstrap objects' apply may retry in all (--bootstrap-deadline)
  int renew_before_days = 30;    // status: warn about certificates expiring within this many days (docs/certs.md)
  std::string metrics_file;      // status: also write the certificates as a Prometheus text file here (atomically)
};

// Where a command writes: `out` gets the human report (or the JSON object with
// --json), `err` gets warnings (and the progress lines with --json).
struct Io {
  std::ostream& out;
  std::ostream& err;
};

ExitCode apply(const Options& opt, const Hooks& hooks, Io io, const std::string& bundle);
// With a bundle: verify it (trust, signature, every hash) without installing.
// Without: check the installed files against the installed manifest (drift).
ExitCode verify(const Options& opt, const Hooks& hooks, Io io, const std::optional<std::string>& bundle);
ExitCode status(const Options& opt, const Hooks& hooks, Io io);
ExitCode rollback(const Options& opt, const Hooks& hooks, Io io);
ExitCode reset(const Options& opt, const Hooks& hooks, Io io);
// Finishes or undoes an interrupted apply/rollback from the journal; nothing to do is success.
ExitCode recover(const Options& opt, const Hooks& hooks, Io io);
// Runs the installed generation's health checks now, every one of them (no restart, nothing written);
// Ok when all pass, Failure when one fails or nothing is installed; with --no-systemd skipped and said
// so, as apply's gate does. `kbundle publish --apply` gates on it.
ExitCode health(const Options& opt, const Hooks& hooks, Io io);
// Applies the installed bundle's bootstrap objects now, unless already applied (docs/bootstrap.md).
ExitCode bootstrap(const Options& opt, const Hooks& hooks, Io io);

// argv front end: parses global flags and the command, runs it, prints
// "kbundle-installer: error: ..." on failure. Returns the process exit code.
int run_cli(int argc, char** argv, const Hooks& hooks, std::ostream& out, std::ostream& err);

}  // namespace kb::installer
