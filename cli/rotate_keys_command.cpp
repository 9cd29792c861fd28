// `kbundle rotate encryption-key|service-account-key`: the phases of generator/key_rotation.h
// (docs/rotation.md, "Encryption key" and "Service-account key").
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sys/stat.h>

#include "base/error.h"
#include "base/exit_code.h"
#include "base/text_escape.h"
#include "cli/commands.h"
#include "generator/bootstrap_objects.h"
#include "generator/key_rotation.h"
#include "generator/rotation.h"
#include "generator/state.h"
#include "topology/topology.h"

namespace kb {

void add_rotate_keys_commands(CLI::App* rotate, RotateKeysOptions& o) {
  struct Kind {
    const char* name;
    const char* help;
  };
  for (Kind k : {Kind{"encryption-key", "Rotate the key that encrypts Secrets at rest, in 4 phases (docs/rotation.md)"},
                 Kind{"service-account-key", "Rotate the key that signs service-account tokens, in 3 phases (docs/rotation.md)"}}) {
    auto* c = rotate->add_subcommand(k.name, k.help);
    c->add_option("--topology,-t", o.topology_path, "Topology file (YAML)")->required();
    c->add_option("--state", o.state_dir, "State directory made by `kbundle gen`")->capture_default_str();
    auto* adv = c->add_flag("--advance", o.advance, "Go to the next phase (after the last: complete the rotation)");
    auto* ab = c->add_flag("--abort", o.abort, "Drop the rotation (phase 1 only)");
    adv->excludes(ab);
    if (std::string(k.name) == "service-account-key")
      c->add_flag("--force", o.force, "With --advance from phase 2: drop the old public key before its tokens expired")
          ->needs(adv);
    c->add_flag("--json", o.json, "Print the result as JSON");
    std::string name = k.name;
    c->callback([&o, name] { o.what = name; });
  }
}

namespace {

// What to do after entering `r`'s phase.
std::vector<std::string> next_steps(const RotateKeysOptions& o, const Rotation& r, const Topology& t) {
  const std::string args = " --topology " + o.topology_path + " --state " + o.state_dir;
  std::vector<std::string> steps = {
      "`kbundle gen" + args + "`",
      "apply the bundles on every node (e.g. `kbundle publish --to ssh --apply`): every control-plane node must run "
      "this phase before the next one starts"};
  if (r.kind == RotationKind::EncryptionKey && r.phase == 3) {
    const Node* d = bootstrap_node(t);
    steps.push_back("the installer on " + (d ? d->name : std::string("the first control-plane node")) +
                    " rewrites every Secret with the new key once it is healthy (`kbundle-installer status` there "
                    "shows it); by hand: kubectl get secrets --all-namespaces -o json | kubectl replace -f -");
  }
  if (r.kind == RotationKind::ServiceAccountKey && r.phase == 2)
    steps.push_back("wait " + std::to_string(service_account_token_wait_seconds() / 3600) +
                    " h after every apiserver runs phase 2, so that tokens signed by the old key expire");
  steps.push_back("`kbundle rotate " + o.what + " --advance" + args + "`");
  return steps;
}

}  // namespace

int run_rotate_keys(const RotateKeysOptions& o, std::time_t now, std::ostream& out, std::ostream& err) {
  TopologyResult tr = load_topology(o.topology_path);
  for (const Diagnostic& d : tr.diagnostics) err << d.format() << "\n";
  if (!tr.ok()) return kExitInvalidInput;
  const Topology& t = *tr.topology;
  // Rotating needs a key to rotate: never create a state here.
  struct stat st;
  if (::stat((o.state_dir + "/state.json").c_str(), &st) != 0) {
    err << "kbundle: error: " << escape_text(o.state_dir) << "/state.json: no state to rotate a key in; run `kbundle gen --state "
        << escape_text(o.state_dir) << "` first (or name the right --state)\n";
    return kExitInvalidInput;
  }
  auto state = State::open(o.state_dir, t, now);
  if (!state->note().empty()) err << "kbundle: note: " << state->note() << "\n";

  KeyRotationStep step;
  try {
    if (o.advance) step = advance_key_rotation(*state, t, o.what, now, o.force);
    else if (o.abort) step = abort_key_rotation(*state, o.what);
    else step = start_key_rotation(*state, t, o.what, now);
  } catch (const RotationRefused& r) {
    err << "kbundle: error: " << escape_text(r.message) << "; nothing was changed\n";
    if (o.json)
      out << nlohmann::json{{"rotation", o.what}, {"action", "refused"}, {"error", r.message}}.dump(
                 2, ' ', false, nlohmann::json::error_handler_t::replace)
          << "\n";
    return kExitInvalidInput;
  }
  state->commit();

  const Rotation* r = state->rotation(o.what);
  std::vector<std::string> steps;
  if (r) steps = next_steps(o, *r, t);
  else if (step.entered == "completed")
    steps = {"`kbundle gen --topology " + o.topology_path + " --state " + o.state_dir +
             "`: the bundles are those of the last phase, nothing new to apply"};
  else
    steps = {"`kbundle gen --topology " + o.topology_path + " --state " + o.state_dir + "` and apply on every node"};
  if (o.json) {
    nlohmann::json j = {{"rotation", o.what}, {"action", o.advance ? "advanced" : o.abort ? "aborted" : "started"},
                        {"entered", step.entered}, {"notes", step.notes}, {"next", steps}};
    if (r) {
      j["phase"] = r->phase;
      j["lastPhase"] = last_phase(r->kind);
      j["title"] = phase_title(r->kind, r->phase);
      j["phaseStartedAt"] = r->phase_started_at;
    }
    out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return kExitOk;
  }
  for (const auto& n : step.notes) (n.rfind("warning:", 0) == 0 ? err : out) << "kbundle: " << n << "\n";
  out << "kbundle: " << o.what << " rotation: " << step.entered << "\n";
  for (size_t i = 0; i < steps.size(); ++i) out << "kbundle: next " << (i + 1) << ": " << steps[i] << "\n";
  return kExitOk;
}

}  // namespace kb
