// `kbundle rotate signing-key`: a new bundle-signing key, vouched for by the old one (docs/trust.md).
// `kbundle rotate ca --ca NAME`: the phased CA rotation (docs/rotation.md), on the shape every
// phased rotation shares (run_phased_rotation below).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sys/stat.h>

#include "base/error.h"
#include "base/exit_code.h"
#include "base/time.h"
#include "bundles/signing.h"
#include "cli/commands.h"
#include "generator/rotation.h"
#include "generator/state.h"
#include "topology/topology.h"

namespace kb {

namespace {

// The flags every phased rotation takes.
void add_phase_flags(CLI::App* cmd, RotateOptions& o) {
  cmd->add_option("--topology,-t", o.topology_path, "Topology file (YAML)")->required();
  cmd->add_option("--state", o.state_dir, "State directory made by `kbundle gen`")->capture_default_str();
  auto* advance = cmd->add_flag("--advance", o.advance,
                                "Go to the next phase (after its bundles were generated and applied on EVERY node); "
                                "after the last phase, complete the rotation");
  cmd->add_flag("--abort", o.abort, "Drop the rotation (phase 1 only: nothing was signed by the new material yet)")
      ->excludes(advance);
  cmd->add_flag("--json", o.json, "Print a machine-readable result");
}

// Opens the state to rotate in; never creates one. Null: the topology is invalid (reported).
std::unique_ptr<State> open_existing_state(const RotateOptions& o, std::time_t now, std::ostream& err,
                                           std::optional<Topology>* topology = nullptr) {
  TopologyResult r = load_topology(o.topology_path);
  for (const Diagnostic& d : r.diagnostics) err << d.format() << "\n";
  if (!r.ok()) return nullptr;
  struct stat st;
  if (::stat((o.state_dir + "/state.json").c_str(), &st) != 0)
    throw Error(o.state_dir + "/state.json: no state to rotate a key in; run `kbundle gen --state " + o.state_dir +
                "` first (or name the right --state)");
  auto state = State::open(o.state_dir, *r.topology, now);
  if (!state->note().empty()) err << "kbundle: note: " << state->note() << "\n";
  if (topology) *topology = *r.topology;
  return state;
}

int rotate_signing_key(const RotateOptions& o, std::time_t now, std::ostream& out, std::ostream& err) {
  auto state = open_existing_state(o, now, err);
  if (!state) return kExitInvalidInput;
  std::string old_fp = VerifyKey(state->signing_public_key_pem()).fingerprint();
  RolloverStatement s = state->rotate_signing_key(rfc3339_utc(now));
  out << "kbundle: rotated the bundle-signing key: sha256:" << old_fp << " -> sha256:" << s.new_key_sha256
      << " (rollover serial " << s.serial << ", signed by the old key)\n"
      << "kbundle: next: `kbundle gen` signs every bundle with the new key and adds the chain of " << s.serial
      << (s.serial == 1 ? " statement" : " statements")
      << "; installed nodes follow it on their next apply. A node not installed yet needs the new "
         "fingerprint: kbundle-installer apply --trust-fingerprint sha256:"
      << s.new_key_sha256 << "\n";
  return kExitOk;
}

// `kbundle rotate ca --ca NAME`: the new CA is made at the start and kept in the rotation files
// "<name>.crt"/"<name>.key" until completing makes it ca/<name>.crt/.key.
int rotate_ca(const RotateOptions& o, std::time_t now, std::ostream& out, std::ostream& err) {
  CaName which;
  try {
    which = ca_by_name(o.ca);
  } catch (const Error& e) {
    err << "kbundle: error: --ca " << o.ca << ": " << e.what() << "; nothing was changed\n";
    if (o.json)
      out << nlohmann::json{{"rotation", o.ca}, {"kind", "ca"}, {"action", "refused"}, {"error", e.what()}}.dump(2) << "\n";
    return kExitInvalidInput;
  }
  std::optional<Topology> topology;
  auto state = open_existing_state(o, now, err, &topology);
  if (!state) return kExitInvalidInput;
  const std::string name = ca_name(which);
  PhasedRotation r;
  r.kind = RotationKind::Ca;
  r.name = name;
  r.command = "kbundle rotate ca --ca " + name;
  r.start = [&](State& s) {
    start_ca_rotation(s, which, topology->cluster.key_type, topology->cluster.ca_validity_days, now);
  };
  r.complete = [&](State& s) { return complete_ca_rotation(s, which); };
  r.abort = [&](State& s) { abort_ca_rotation(s, which); };
  return run_phased_rotation(o, r, *state, now, out, err);
}

}  // namespace

CLI::App* add_rotate_command(CLI::App& app, RotateOptions& o) {
  auto* cmd = app.add_subcommand("rotate", "Replace a long-lived key or CA of the state (changes its pin)");
  cmd->require_subcommand(1);
  auto* signing = cmd->add_subcommand(
      "signing-key", "New bundle-signing key plus a rollover statement signed by the old one; nodes follow it");
  signing->add_option("--topology,-t", o.topology_path, "Topology file (YAML)")->required();
  signing->add_option("--state", o.state_dir, "State directory made by `kbundle gen`")->capture_default_str();
  signing->callback([&o] { o.what = "signing-key"; });
  auto* ca = cmd->add_subcommand(
      "ca", "Rotate a CA in three phases, each a gen applied on every node: trust old+new, reissue, drop old "
            "(docs/rotation.md)");
  ca->add_option("--ca", o.ca, "kubernetes-ca, etcd-ca or front-proxy-ca")->required();
  add_phase_flags(ca, o);
  ca->callback([&o] { o.what = "ca"; });
  return cmd;
}

int run_phased_rotation(const RotateOptions& o, const PhasedRotation& r, State& state, std::time_t now,
                        std::ostream& out, std::ostream& err) {
  const std::string where = state.dir() + "/state.json";
  const std::string flags = " --topology " + o.topology_path + " --state " + o.state_dir;
  const std::string gen = "`kbundle gen" + flags + "`";
  const std::string advance = "`" + r.command + " --advance" + flags + "`";
  const int last = last_phase(r.kind);
  nlohmann::json j = {{"rotation", r.name}, {"kind", to_string(r.kind)}, {"lastPhase", last}};

  auto refuse = [&](const std::string& why) {
    err << "kbundle: error: " << where << ": " << why << "; nothing was changed\n";
    if (o.json) {
      j["action"] = "refused";
      j["error"] = where + ": " + why;
      out << j.dump(2) << "\n";
    }
    return kExitInvalidInput;
  };
  auto phase_text = [&](int phase) { return std::to_string(phase) + "/" + std::to_string(last); };

  const Rotation* current = state.rotation(r.name);
  const int from = current ? current->phase : 0;
  std::string action, completed;
  Rotation next;
  if (!o.advance && !o.abort) {
    if (current)
      return refuse("a rotation of " + r.name + " is already in progress (phase " + phase_text(current->phase) +
                    ", " + (current->generated ? "generated" : "not generated yet") + "); continue it with " + advance +
                    (current->phase == 1 ? " or drop it with `" + r.command + " --abort" + flags + "`" : ""));
    r.start(state);
    next = {r.kind, r.name, 1, rfc3339_utc(now), false};
    state.set_rotation(next);
    action = "started";
  } else if (!current) {
    return refuse("no rotation of " + r.name + " is in progress; start one with `" + r.command + flags + "`");
  } else if (o.abort) {
    if (current->phase != 1)
      return refuse("the rotation of " + r.name + " is in phase " + phase_text(current->phase) +
                    ": certificates or data made with the new material are out there, so it can no longer be "
                    "dropped; finish it with " + advance);
    r.abort(state);
    state.clear_rotation(r.name);
    action = "aborted";
  } else if (!current->generated) {
    return refuse("phase " + phase_text(current->phase) + " of the rotation of " + r.name +
                  " has not been generated yet; run " + gen + ", apply its bundles on EVERY node (e.g. `kbundle "
                  "publish --to ssh --apply`), then advance");
  } else if (current->phase < last) {
    next = *current;
    next.phase = current->phase + 1;
    next.phase_started_at = rfc3339_utc(now);
    next.generated = false;
    state.set_rotation(next);
    action = "advanced";
  } else {
    completed = r.complete(state);
    state.clear_rotation(r.name);
    action = "completed";
  }
  state.commit();

  j["action"] = action;
  const bool in_progress = action == "started" || action == "advanced";
  std::string next_step;
  if (in_progress) {
    next_step = "run " + gen + ", apply the bundles on EVERY node (e.g. `kbundle publish --to ssh --apply`; "
                "`kbundle-installer status` on a node shows its serial), then " + advance;
    j["phase"] = next.phase;
    j["phaseTitle"] = phase_title(r.kind, next.phase);
    j["generated"] = false;
  } else {
    next_step = "run " + gen + " and apply the bundles on every node once more (docs/rotation.md)";
    j["phase"] = nullptr;
  }
  j["next"] = next_step;
  if (o.json) {
    out << j.dump(2) << "\n";
    return kExitOk;
  }
  if (action == "started")
    out << "kbundle: started the rotation of " << r.name << ": phase " << phase_text(1) << ": " << phase_title(r.kind, 1)
        << "\n";
  else if (action == "advanced")
    out << "kbundle: " << r.name << ": phase " << phase_text(from) << " -> " << phase_text(next.phase) << ": "
        << phase_title(r.kind, next.phase) << "\n";
  else if (action == "aborted")
    out << "kbundle: dropped the rotation of " << r.name << " in phase " << phase_text(1)
        << ": its new material left the state; the old one stays\n";
  else
    out << "kbundle: completed the rotation of " << r.name << ": " << completed << "\n";
  out << "kbundle: next: " << next_step << "\n";
  return kExitOk;
}

int run_rotate(const RotateOptions& o, std::time_t now, std::ostream& out, std::ostream& err) {
  if (o.what == "ca") return rotate_ca(o, now, out, err);
  return rotate_signing_key(o, now, out, err);
}

}  // namespace kb
