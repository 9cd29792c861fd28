#include "generator/bundle_output.h"

#include <ctime>

#include "base/hash.h"
#include "base/error.h"
#include "bundles/manifest.h"
#include "bundles/path_policy.h"
#include "bundles/signing.h"
#include "generator/state.h"

namespace kb {

namespace {

EntryClass entry_class(FileClass c) {
  switch (c) {
    case FileClass::Secret: return EntryClass::Secret;
    case FileClass::Config: return EntryClass::Config;
    case FileClass::Unit: return EntryClass::Unit;
    case FileClass::Binary: return EntryClass::Binary;
  }
  return EntryClass::Config;
}

nlohmann::json health_check_json(const HealthCheck& h) {
  nlohmann::json j = {{"name", h.name}, {"kind", h.kind}, {"target", h.target}, {"timeoutSeconds", h.timeout_seconds}};
  if (!h.ca_file.empty()) j["caFile"] = h.ca_file;
  if (!h.cert_file.empty()) j["certFile"] = h.cert_file;
  if (!h.key_file.empty()) j["keyFile"] = h.key_file;
  return j;
}

// The entry for a planned file; size and sha256 are filled in by the caller or the writer.
ManifestEntry file_entry(const PlannedFile& f) {
  ManifestEntry e;
  e.path = f.path;
  e.mode = f.mode;
  e.owner = f.owner;
  e.group = f.group;
  e.cls = entry_class(f.cls);
  if (!f.source_url.empty()) e.source = EntrySource{f.source_url, f.source_sha256};
  return e;
}

}  // namespace

Manifest node_manifest(const ClusterPlan& plan, const NodePlan& node, const std::string& kubernetes_version) {
  Manifest m;
  m.cluster_name = plan.cluster_name;
  m.cluster_id = plan.cluster_id;
  m.node_name = node.node.name;
  m.role = to_string(node.node.role);
  m.hostname = node.node.hostname;
  m.instance_id = node.node.instance_id;
  m.private_ip = node.node.private_ip;
  m.kubernetes_version = kubernetes_version;
  m.units = node.units;
  for (const auto& h : node.health_checks) m.health_checks.push_back(health_check_json(h));
  for (const auto& d : node.directories) {
    ManifestEntry e;
    e.path = d;
    e.type = EntryType::Directory;
    e.mode = 0700;
    m.entries.push_back(e);
  }
  for (const auto& f : node.files) {
    ManifestEntry e = file_entry(f);
    e.size = f.source_path.empty() ? f.content.size() : f.source_size;
    e.sha256 = f.source_path.empty() ? sha256_hex(f.content) : f.source_sha256;
    m.entries.push_back(e);
  }
  std::sort(m.entries.begin(), m.entries.end(),
            [](const ManifestEntry& a, const ManifestEntry& b) { return a.path < b.path; });
  return m;
}

void check_plan_policy(const ClusterPlan& plan, const std::string& kubernetes_version) {
  std::string problems;
  size_t count = 0;
  for (const auto& n : plan.nodes)
    for (const auto& v : path_policy_violations(node_manifest(plan, n, kubernetes_version))) {
      problems += "\n  " + n.node.name + ": " + v.message();
      ++count;
    }
  if (count)
    throw Error("internal error: the plan breaks the bundle path policy (bundles/path_policy.cpp, FORMAT.md 5.3) in " +
                std::to_string(count) + " place" + (count == 1 ? "" : "s") + "; nothing was written:" + problems);
}

Manifest bundle_manifest(const ClusterPlan& plan, const NodePlan& node, const std::string& kubernetes_version,
                         State& state, const std::string& now) {
  Manifest m = node_manifest(plan, node, kubernetes_version);
  m.signing_key_sha256 = SigningKey(state.signing_key_pem()).fingerprint();

  // The content digest: the manifest with serial and time fixed, so that only content counts.
  Manifest probe = m;
  probe.serial = 1;
  probe.created_at = "1970-01-01T00:00:00Z";
  m.serial = state.node_serial(m.node_name, sha256_hex(serialize_manifest(probe)), now);
  m.created_at = state.serial_created_at(m.node_name);
  if (m.created_at.empty()) m.created_at = now;
  return m;
}

BundleInfo write_node_bundle(const ClusterPlan& plan, const NodePlan& node, const std::string& kubernetes_version,
                             State& state, const std::string& out_path, const std::string& now,
                             const WriteOptions& options) {
  SigningKey key(state.signing_key_pem());
  Manifest m = bundle_manifest(plan, node, kubernetes_version, state, now);

  BundleWriter writer(m);
  writer.set_rollover(state.rollover_chain());  // lets nodes that pin an older key follow the rotations
  for (const auto& d : node.directories) writer.add_directory(d, 0700);
  for (const auto& f : node.files) {
    if (f.source_path.empty())
      writer.add_file(file_entry(f), f.content);
    else
      writer.add_file_from_path(file_entry(f), f.source_path);
  }
  Manifest written = writer.write(out_path, key, options);
  return {written.serial, written.created_at, written.entries.size(), written};
}

}  // namespace kb
