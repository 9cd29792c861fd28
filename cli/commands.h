#pragma once
// The wiring of kbundle's commands that are not a library's own driver: each adds its options to
// the command table (cli/cli.cpp) and runs by calling the library below it. Every run_* prints
// progress and results on `out`, diagnostics on `err`, and returns an exit code (base/exit_code.h);
// failures the user cannot fix by editing the input are thrown as kb::Error (exit 1).

#include <ctime>
#include <functional>
#include <iosfwd>
#include <string>

#include "generator/rotation.h"

namespace CLI {
class App;
}

namespace kb {

class State;

// `kbundle aws up|plan|status|down` (cli/aws_command.cpp): the cluster's AWS infrastructure, from
// the topology's `aws` section. The AWS side lives in aws/; this turns the topology into an
// aws::ClusterSpec, prints, and writes back what `gen` needs (see docs/aws.md).
struct AwsOptions {
  std::string command;  // "up", "plan", "status", "down"
  std::string topology_path;
  bool json = false;              // status: machine-readable
  bool yes = false;               // down: really delete
  bool keep_topology = false;     // up: do not write the load balancer's name and public IPs back
  int timeout_seconds = 900;      // up: instances running; down: everything deleted
  std::string state_dir = "state";  // up, plan: the signing key pinned in the user data (as gen's --state)
  std::string installer;          // up, plan: the kbundle-installer whose sha256 the user data pins
  std::string self_exe;           // this program, for the installer's default location
};

// Adds the `aws` command and its subcommands to `app`; returns it.
CLI::App* add_aws_command(CLI::App& app, AwsOptions& options);

// Runs one subcommand. Topology problems: kExitInvalidInput; AWS errors are thrown as kb::Error.
int run_aws(const AwsOptions& options, std::ostream& out, std::ostream& err);

// `kbundle fetch` (cli/fetch_command.cpp): fills the verified offline cache (binaries/fetch.h).
struct FetchOptions {
  std::string version = "v1.32.3";
  std::string mirror;         // empty: upstream URLs (images are then skipped)
  std::string cache_dir;      // empty: <state_dir>/cache
  std::string state_dir = "state";
  std::string export_path;    // write an air-gap kit after fetching
  std::string import_path;    // a kit (.tar) or a directory holding one unpacked; no network
};

// Adds the `fetch` command to `app`; returns it.
CLI::App* add_fetch_command(CLI::App& app, FetchOptions& options);

// Fetches (and exports) or imports; progress on `err` (a bar when it is a terminal), the summary on `out`.
int run_fetch(const FetchOptions& options, std::ostream& out, std::ostream& err);

// `kbundle lint` (cli/lint_command.cpp).
// Validates `topology_path` (diagnostics on `err`, exit 3 when invalid), then prints one
// warning per finding (or JSON) on `out`. Exit 0 whether or not anything is turned off.
int run_lint(const std::string& topology_path, bool json, std::ostream& out, std::ostream& err);

// `kbundle inspect` (cli/inspect_command.cpp): verifies a bundle (signature, every entry's hash) and lists it.
// `pubkey_path` empty: bundle-signing.pub next to the bundle.
int run_inspect(const std::string& bundle_path, const std::string& pubkey_path, bool json, std::ostream& out,
                std::ostream& err);

// `kbundle rotate signing-key` (cli/rotate_command.cpp): a new bundle-signing key and a rollover
// statement signed by the old one, kept in the state (generator/state.h); docs/trust.md.
// `kbundle rotate ca|...` (docs/rotation.md): the phased rotations of generator/rotation.h, one shape
// for every kind: no flag starts, --advance moves on (completes after the last phase), --abort drops
// it in phase 1.
struct RotateOptions {
  std::string what;  // "signing-key", "ca", ...
  std::string topology_path;
  std::string state_dir = "state";
  std::string ca;        // rotate ca: kubernetes-ca, etcd-ca or front-proxy-ca
  bool advance = false;  // phased rotations: move to the next phase
  bool abort = false;    // phased rotations: drop it (phase 1 only)
  bool json = false;     // phased rotations: machine-readable result
};
CLI::App* add_rotate_command(CLI::App& app, RotateOptions& options);
// What one kind of phased rotation does at its ends; the phases between only move the record.
// run_phased_rotation() does the rest the same way for every kind: refusals (exit 3, nothing
// written), the commit, the report (text or --json) and the next command to run.
struct PhasedRotation {
  RotationKind kind;
  std::string name;     // the record's name: "etcd-ca", "encryption-key", ...
  std::string command;  // how the user names it: "kbundle rotate ca --ca etcd-ca"
  std::function<void(State&)> start;     // puts the new material in the state (rotation files)
  // The new material becomes long-lived, the old one goes; returns one line for the report.
  std::function<std::string(State&)> complete;
  std::function<void(State&)> abort;  // drops the new material (phase 1)
};
int run_phased_rotation(const RotateOptions& options, const PhasedRotation& rotation, State& state, std::time_t now,
                        std::ostream& out, std::ostream& err);
int run_rotate(const RotateOptions& options, std::time_t now, std::ostream& out, std::ostream& err);

// `kbundle rotate encryption-key|service-account-key` (cli/rotate_keys_command.cpp): the phases of
// generator/key_rotation.h; docs/rotation.md.
struct RotateKeysOptions {
  std::string what;  // "encryption-key", "service-account-key"; empty: another rotate command
  std::string topology_path;
  std::string state_dir = "state";
  bool advance = false, abort = false, force = false, json = false;
};
void add_rotate_keys_commands(CLI::App* rotate, RotateKeysOptions& options);
int run_rotate_keys(const RotateKeysOptions& options, std::time_t now, std::ostream& out, std::ostream& err);

struct CertsOptions;
// `kbundle certs` (cli/certs_command.cpp): adds the command; generator/cert_report.h runs it.
CLI::App* add_certs_command(CLI::App& app, CertsOptions& options);

// `kbundle restore` (cli/restore_command.cpp, docs/backup.md): restore bundles from an etcd snapshot.
struct RestoreOptions {
  std::string snapshot, topology_path, state_dir = "state", out_dir = "out", cache_dir;
};
CLI::App* add_restore_command(CLI::App& app, RestoreOptions& options);
int run_restore(const RestoreOptions& options, std::time_t now, std::ostream& out, std::ostream& err);

struct PublishOptions;
// `kbundle publish` (cli/publish_command.cpp): adds the command; publish/publish.h runs it.
CLI::App* add_publish_command(CLI::App& app, PublishOptions& options);

}  // namespace kb
