#pragma once
// Internal to the installer library: one command's context and the steps that
// apply, rollback and recover share.

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "bundles/manifest.h"
#include "installer/installer.h"
#include "installer/layout.h"
#include "installer/transaction.h"

namespace kb::installer {

struct Run {
  const Options& opt;
  const Hooks& hooks;
  Io io;
  Layout layout;
  nlohmann::json report = nlohmann::json::object();
  int journal_writes = 0;
  std::unique_ptr<ServiceManager> services_;

  Run(const Options& o, const Hooks& h, Io i);
  void say(const std::string& line) const;   // progress (stdout, or stderr with --json)
  void warn(const std::string& line) const;  // always stderr
  ServiceManager& services();
  // Journal write + its fault point "after-journal-<n>".
  void journal(const Journal& j);
};

// The installed generation, if any.
struct Installed {
  Manifest manifest;
  std::string bytes;  // exactly as committed
};
std::optional<Installed> read_installed(const Layout& layout);
// Makes the generation saved in `dir` (manifest.json and, when saved, manifest.sig) the current one.
void restore_current_manifest(const Layout& layout, const std::string& dir);

// Finishes or undoes whatever the journal says was interrupted (README.md, "Crash safety").
// Returns true when there was something to recover. With --dry-run it only refuses to go on.
bool recover_if_needed(Run& r);

// Runs `body` with error mapping and the --json report; the one place a command's errors are printed.
ExitCode guarded(const Options& opt, const Hooks& hooks, Io io, const char* command,
                 const std::function<ExitCode(Run&)>& body);

void remove_journal(const Layout& layout);

// Runs the manifest's health checks in order, saying each result; stops at the first failure
// and returns "health check NAME failed: DETAIL", or "" when all pass. Skipped (and said so)
// with --no-systemd. With `results`, every check runs (the `health` command reports them all) and
// each is appended as {"name", "kind", "ok", "detail"}; the first failure is still returned.
std::string health_gate(Run& r, const Manifest& m, bool no_systemd, nlohmann::json* results = nullptr);

}  // namespace kb::installer
