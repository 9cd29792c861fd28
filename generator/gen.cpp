#include "generator/gen.h"

#include "base/time.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>

#include "base/error.h"
#include "base/text_escape.h"
#include "bundles/signing.h"
#include "binaries/binary_cache.h"
#include "generator/bundle_output.h"
#include "generator/change_plan.h"
#include "generator/etcd_membership.h"
#include "generator/key_rotation.h"
#include "generator/output_dir.h"
#include "generator/parallel.h"
#include "generator/plan.h"
#include "generator/state.h"
#include "generator/version_skew.h"
#include "topology/apply_order.h"
#include "topology/topology.h"

namespace kb {

namespace {

using Clock = std::chrono::steady_clock;

// Prints diagnostics; returns the topology when it has no error.
std::optional<Topology> load_and_report(const std::string& path, std::ostream& err, nlohmann::json* json_out) {
  TopologyResult r = load_topology(path);
  for (const auto& d : r.diagnostics) err << d.format() << "\n";
  if (json_out) {
    auto& list = (*json_out)["diagnostics"] = nlohmann::json::array();
    for (const auto& d : r.diagnostics)
      list.push_back({{"severity", d.severity == Diagnostic::Severity::Error ? "error" : "warning"},
                      {"file", d.file},
                      {"line", d.line},
                      {"column", d.column},
                      {"message", d.message},
                      {"hint", d.hint}});
  }
  if (!r.ok()) {
    size_t errors = 0;
    for (const auto& d : r.diagnostics) errors += d.severity == Diagnostic::Severity::Error;
    err << "kbundle: error: " << escape_text(path) << ": " << errors << " problem" << (errors == 1 ? "" : "s")
        << " found; nothing was written\n";
  }
  return std::move(r.topology);
}

std::string relative_node_path(const std::string& node, const std::string& path) { return node + path; }

using BinariesByRole = std::map<std::pair<bool, bool>, std::vector<CachedBinary>>;

// The binaries and images each role combination of the topology needs, from the verified cache
// only. Resolved before anything is written, so a missing binary changes nothing.
BinariesByRole resolve_binaries(const Topology& t, const std::string& cache_dir) {
  BinariesByRole by_role;
  for (const auto& n : t.nodes) {
    auto key = std::make_pair(n.is_control_plane(), n.is_worker());
    if (by_role.count(key)) continue;
    try {
      auto files = binaries_for(cache_dir, t.cluster.kubernetes_version, key.first, key.second);
      auto images = images_for(cache_dir, t.cluster.kubernetes_version, key.first, key.second);
      files.insert(files.end(), images.begin(), images.end());
      by_role.emplace(key, std::move(files));
    } catch (const Error& e) {
      throw Error(std::string(e.what()) + " (or pass --no-binaries for config-only bundles)");
    }
  }
  return by_role;
}

void add_binaries(ClusterPlan& plan, const BinariesByRole& by_role) {
  for (auto& n : plan.nodes) {
    for (const auto& b : by_role.at({n.node.is_control_plane(), n.node.is_worker()})) {
      PlannedFile f;
      f.path = b.node_path;
      f.mode = b.mode;
      f.cls = FileClass::Binary;
      f.source_path = b.cache_path;
      f.source_url = b.url;
      f.source_sha256 = b.sha256;
      f.source_size = std::filesystem::file_size(b.cache_path);
      n.files.push_back(std::move(f));
    }
    std::sort(n.files.begin(), n.files.end(), [](const PlannedFile& a, const PlannedFile& b) { return a.path < b.path; });
  }
}

// The apply order of the nodes that get a new bundle (topology/apply_order.h).
std::vector<std::vector<std::string>> changed_order(const Topology& t, const ChangePlan& changes, size_t max_unavailable) {
  std::vector<std::string> changed;
  for (const auto& n : changes.nodes)
    if (n.status == "new" || n.status == "changed") changed.push_back(n.name);
  if (changed.empty()) return {};
  return apply_order(t, max_unavailable, changed);
}

// The version skew problems of this run (docs/upgrades.md): what each node runs now against what it
// will run once this run's bundles are applied.
std::vector<std::string> skew_problems(const Topology& t, const State& state, const std::vector<std::string>& only) {
  auto before = versions_before(state.previous_manifests());
  return version_skew_problems(before, versions_after(t, only, before));
}

// The etcd membership steps and problems as the change summary shows them (gen and plan alike).
void add_etcd_inputs(const EtcdMembershipChange& etcd, ChangeInputs& inputs) {
  for (const auto& line : etcd.describe())
    if (line.rfind("etcd: refused: ", 0) != 0) inputs.etcd.push_back(line);
  for (const auto& p : etcd.problems) inputs.problems.push_back("etcd: " + p);
}

}  // namespace

int run_validate(const std::string& topology_path, bool json, std::ostream& out, std::ostream& err,
                 const std::string& state_dir, std::time_t now) {
  nlohmann::json j;
  auto t = load_and_report(topology_path, err, json ? &j : nullptr);
  // With a state: an encryption provider changed without a rotation (gen refuses it; docs/rotation.md).
  if (t && !state_dir.empty() && std::filesystem::exists(state_dir + "/state.json")) {
    std::string p = encryption_provider_problem(*State::open_read_only(state_dir, *t, now), *t);
    if (!p.empty()) {
      // The message starts with the file's name, which the diagnostic prints already.
      if (p.rfind(topology_path + ": ", 0) == 0) p = p.substr(topology_path.size() + 2);
      Diagnostic d{Diagnostic::Severity::Warning, topology_path, 0, 0, p, ""};
      err << d.format() << "\n";
      if (json) j["diagnostics"].push_back({{"severity", "warning"}, {"file", d.file}, {"line", 0}, {"column", 0},
                                            {"message", p}, {"hint", ""}});
    }
  }
  if (json) {
    j["valid"] = t.has_value();
    out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";  // a file name need not be UTF-8
  } else if (t) {
    out << escape_text(topology_path) << ": valid: cluster " << t->cluster.name << ", " << t->control_planes().size()
        << " control-plane and " << t->workers().size() << " worker nodes\n";
  }
  return t ? kExitOk : kExitInvalidInput;
}

int run_gen(const GenOptions& o, std::ostream& out, std::ostream& err) {
  auto started = Clock::now();
  auto topology = load_and_report(o.topology_path, err, nullptr);
  if (!topology) return kExitInvalidInput;
  if (o.format != "dir" && o.format != "bundle") throw Error("--format " + o.format + ": unknown format; use bundle or dir");
  if (o.compression != "zstd" && o.compression != "gzip")
    throw Error("--compression " + o.compression + ": unknown; use zstd or gzip");
  if (o.restore && (o.format != "bundle" || !o.nodes.empty()))
    throw Error("restore: every control-plane node restores from the same snapshot: signed bundles for all nodes only");

  // Everything that can refuse the run is checked before the state or the output is touched.
  BinariesByRole binaries;
  if (!o.no_binaries) binaries = resolve_binaries(*topology, o.cache_dir.empty() ? o.state_dir + "/cache" : o.cache_dir);
  OutputDir output(o.out_dir);
  auto state = State::open(o.state_dir, *topology, o.now);
  if (!state->note().empty()) err << "kbundle: note: " << state->note() << "\n";
  // Refused before anything is written: a version skew the upgrade policy forbids (docs/upgrades.md) and
  // an etcd membership change of more than one member or below quorum (docs/etcd.md).
  auto skew = skew_problems(*topology, *state, o.nodes);
  for (const auto& p : skew) err << "kbundle: error: version skew: " << escape_text(p) << "\n";
  if (!skew.empty())
    err << "kbundle: error: " << skew.size() << " version skew problem" << (skew.size() == 1 ? "" : "s")
        << " (docs/upgrades.md); nothing was written\n";
  EtcdMembershipChange etcd = plan_etcd_membership(*state, *topology);
  if (etcd.changed() && !o.nodes.empty())
    etcd.problems.push_back("a --node run cannot change etcd membership: every control-plane bundle carries it; run gen "
                            "without --node");
  if (o.restore && etcd.changed())
    etcd.problems.push_back("a restore brings back the recorded members and cannot change them: restore with the "
                            "topology of the last gen, then make the membership change with gen");
  if (!etcd.problems.empty()) {
    for (const auto& line : etcd.describe()) err << "kbundle: " << line << "\n";
    err << "kbundle: error: " << escape_text(o.topology_path) << ": the etcd membership change is refused ("
        << etcd.problems.size() << " problem" << (etcd.problems.size() == 1 ? "" : "s") << "); nothing was written\n";
  }
  // A provider change without a rotation would drop the key every stored Secret needs (docs/rotation.md).
  std::string encryption = encryption_provider_problem(*state, *topology);
  if (!encryption.empty()) err << "kbundle: error: " << escape_text(encryption) << "; nothing was written\n";
  if (!skew.empty() || !etcd.problems.empty() || !encryption.empty()) return kExitInvalidInput;
  record_encryption_key_in_use(*state, *topology);
  ClusterPlan plan = make_cluster_plan(*topology, *state, o.nodes);
  if (!o.no_binaries) add_binaries(plan, binaries);
  if (o.restore) add_restore_files(plan, *topology, *o.restore);
  check_plan_policy(plan, topology->cluster.kubernetes_version);  // before anything is written

  std::vector<BundleInfo> bundles(plan.nodes.size());
  if (o.format == "dir") {
    for (const auto& n : plan.nodes) {
      for (const auto& f : n.files) {
        if (f.source_path.empty()) {
          output.write(relative_node_path(n.node.name, f.path), f.content, f.mode);
        } else {
          std::string to = output.staged_path(relative_node_path(n.node.name, f.path));
          std::filesystem::copy_file(f.source_path, to, std::filesystem::copy_options::overwrite_existing);
          std::filesystem::permissions(to, static_cast<std::filesystem::perms>(f.mode));
        }
      }
      for (const auto& d : n.directories) output.staged_path(relative_node_path(n.node.name, d) + "/");
    }
  } else {
    // Binaries shared by the nodes of a role are compressed once and their frames reused.
    FrameCache frames(output.staged_path(""));
    WriteOptions options;
    options.compression = o.compression == "gzip" ? Compression::Gzip : Compression::Zstd;
    if (options.compression == Compression::Zstd) options.cache = &frames;
    const std::string now = rfc3339_utc(o.created_at.value_or(o.now));
    parallel_for(plan.nodes.size(), [&](size_t i) {
      const NodePlan& n = plan.nodes[i];
      bundles[i] = write_node_bundle(plan, n, topology->cluster.kubernetes_version, *state,
                                     output.staged_path(n.node.name + ".kbundle"), now, options);
    });
  }
  // The trust anchor for kbundle-installer --trust-key and kbundle inspect, next to the bundles.
  std::string fingerprint = VerifyKey(state->signing_public_key_pem()).fingerprint();
  output.write("bundle-signing.pub", state->signing_public_key_pem(), 0644);
  output.write("bundle-signing.sha256", fingerprint + "\n", 0644);
  output.write("admin.kubeconfig", plan.admin_kubeconfig, 0600);
  if (!o.nodes.empty()) output.keep_unwritten_entries();

  // What `kbundle plan` compares the next run against (format bundle only, the manifests nodes verify),
  // and the same summary plan would have shown.
  std::optional<ChangePlan> changes;
  if (o.format == "bundle") {
    std::vector<Manifest> manifests;
    for (const auto& b : bundles) manifests.push_back(b.manifest);
    ChangeInputs inputs;
    add_etcd_inputs(etcd, inputs);
    changes = make_change_plan(plan.cluster_name, state->previous_manifests(), manifests, state->reissued(),
                               !o.nodes.empty(), std::move(inputs));
    changes->state_created = state->created();
    changes->inputs.order = changed_order(*topology, *changes, 1);
    for (const auto& b : bundles) state->record_manifest(b.manifest);
    if (o.nodes.empty()) {
      std::vector<std::string> gone;
      for (const auto& [name, m] : state->previous_manifests())
        if (std::none_of(topology->nodes.begin(), topology->nodes.end(), [&](const Node& n) { return n.name == name; }))
          gone.push_back(name);
      for (const auto& name : gone) state->forget_node(name);
    }
  }

  // A full gen has written the bundles of every rotation's current phase (`kbundle rotate --advance`
  // waits for it); a --node run has not.
  if (o.nodes.empty()) state->mark_rotations_generated();
  if (changes) changes->inputs.rotations = state->rotations();
  // The state first: output that names certs the state does not know would be reissued next time.
  state->commit();
  write_etcd_record(state->dir(), etcd.record);  // after the state it names; a --node run never changes it
  output.commit();

  double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  if (o.json) {
    nlohmann::json j;
    j["cluster"] = plan.cluster_name;
    j["clusterId"] = plan.cluster_id;
    j["state"] = {{"dir", o.state_dir}, {"created", state->created()}};
    j["out"] = o.out_dir;
    j["format"] = o.format;
    j["seconds"] = seconds;
    j["signingKeySha256"] = fingerprint;
    j["etcd"] = {{"epoch", etcd.epoch}, {"changed", etcd.changed()}, {"steps", etcd.describe()}};
    auto& nodes = j["nodes"] = nlohmann::json::array();
    for (size_t i = 0; i < plan.nodes.size(); ++i) {
      const NodePlan& n = plan.nodes[i];
      size_t bytes = 0;
      for (const auto& f : n.files) bytes += f.source_path.empty() ? f.content.size() : f.source_size;
      nlohmann::json node = {{"name", n.node.name},
                             {"role", to_string(n.node.role)},
                             {"files", n.files.size()},
                             {"bytes", bytes},
                             {"units", n.units}};
      if (o.format == "bundle") {
        node["bundle"] = n.node.name + ".kbundle";
        node["serial"] = bundles[i].serial;
      }
      nodes.push_back(node);
    }
    if (changes) j["changes"] = change_plan_json(*changes);
    out << j.dump(2) << "\n";
    return kExitOk;
  }
  if (changes && !changes->changes()) {
    out << "kbundle: " << no_changes_line(*changes) << "; " << o.out_dir << " is as it was; bundle signing key sha256:"
        << fingerprint << "\n";
    return kExitOk;
  }
  out << "kbundle: state " << o.state_dir << (state->created() ? " (created)" : " (reused)") << ", cluster "
      << plan.cluster_name << " (" << plan.cluster_id << ")\n";
  if (plan.nodes.size() <= 50) {
    for (size_t i = 0; i < plan.nodes.size(); ++i) {
      const NodePlan& n = plan.nodes[i];
      char line[256];
      std::snprintf(line, sizeof line, "  %-20s %-14s %3zu files", n.node.name.c_str(), to_string(n.node.role),
                    n.files.size());
      out << line;
      if (o.format == "bundle") out << ", " << n.node.name << ".kbundle serial " << bundles[i].serial;
      out << ", units:";
      for (const auto& u : n.units) out << " " << u;
      out << "\n";
    }
  }
  if (!changes)  // the bundle format says them in its change summary
    for (const auto& line : etcd.describe()) out << "kbundle: " << line << "\n";
  char summary[256];
  std::snprintf(summary, sizeof summary, "kbundle: wrote %zu node%s and admin.kubeconfig to %s in %.2f s\n",
                plan.nodes.size(), plan.nodes.size() == 1 ? "" : "s", o.out_dir.c_str(), seconds);
  out << summary;
  out << "kbundle: bundle signing key sha256:" << fingerprint << " (" << o.out_dir
      << "/bundle-signing.pub); pin it on each node with kbundle-installer --trust-key\n";
  if (changes) out << "kbundle: changes: " << change_plan_text(*changes);
  return kExitOk;
}

int run_plan(const PlanOptions& o, std::ostream& out, std::ostream& err) {
  auto topology = load_and_report(o.topology_path, err, nullptr);
  if (!topology) return kExitInvalidInput;
  // As gen does: the binaries come from the verified cache, before the state is read.
  BinariesByRole binaries;
  if (!o.no_binaries) binaries = resolve_binaries(*topology, o.cache_dir.empty() ? o.state_dir + "/cache" : o.cache_dir);
  auto state = State::open_read_only(o.state_dir, *topology, o.now);
  if (std::string p = encryption_provider_problem(*state, *topology); !p.empty()) {
    // Refused before a plan can be made (its config could not be written): said as plan says refusals.
    if (o.json)
      out << nlohmann::json{{"cluster", topology->cluster.name}, {"refused", true}, {"problems", {p}}}.dump(
                 2, ' ', false, nlohmann::json::error_handler_t::replace)
          << "\n";
    else
      out << "kbundle plan: refused (nothing may be written until these are fixed):\n  " << escape_text(p) << "\n";
    return kExitInvalidInput;
  }
  ClusterPlan plan = make_cluster_plan(*topology, *state, o.nodes);
  if (!o.no_binaries) add_binaries(plan, binaries);
  check_plan_policy(plan, topology->cluster.kubernetes_version);

  const std::string now = rfc3339_utc(o.created_at.value_or(o.now));
  std::vector<Manifest> manifests;
  for (const auto& n : plan.nodes)
    manifests.push_back(bundle_manifest(plan, n, topology->cluster.kubernetes_version, *state, now));
  ChangeInputs inputs;
  // etcd membership (docs/etcd.md): its steps, and its problems refuse the change.
  EtcdMembershipChange etcd = plan_etcd_membership(*state, *topology);
  add_etcd_inputs(etcd, inputs);
  for (const auto& p : skew_problems(*topology, *state, o.nodes))
    inputs.problems.push_back("version skew: " + p);
  inputs.rotations = state->rotations();
  ChangePlan changes = make_change_plan(plan.cluster_name, state->previous_manifests(), manifests, state->reissued(),
                                        !o.nodes.empty(), std::move(inputs));
  changes.state_created = state->created();
  changes.inputs.order = changed_order(*topology, changes, o.max_unavailable);

  if (o.json) {
    nlohmann::json j = change_plan_json(changes);
    j["state"] = {{"dir", o.state_dir}, {"exists", !state->created()}};
    out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";  // a --state path need not be UTF-8
  } else {
    out << "kbundle plan: " << change_plan_text(changes);
  }
  if (changes.refused()) return kExitInvalidInput;
  return changes.changes() ? kExitPlanChanges : kExitOk;
}

}  // namespace kb
