#include "cli/cli.h"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include "base/error.h"
#include "base/text_escape.h"
#include "base/version.h"
#include "bundles/manifest.h"
#include "cli/commands.h"
#include "generator/cert_report.h"
#include "generator/gen.h"
#include "publish/publish.h"

namespace kb {

int run_cli(int argc, char** argv) {
  CLI::App app{"kbundle: a highly available Kubernetes cluster from one topology file, as one signed bundle per node"};
  app.set_version_flag("--version", std::string("kbundle ") + version());
  app.require_subcommand(1);

  GenOptions gen;
  auto* gen_cmd = app.add_subcommand("gen", "Generate every node's certificates, kubeconfigs, units and configs");
  gen_cmd->add_option("--topology,-t", gen.topology_path, "Topology file (YAML)")->required();
  gen_cmd->add_option("--state", gen.state_dir, "State directory: CAs and keys, created on first use")
      ->capture_default_str();
  gen_cmd->add_option("--out,-o", gen.out_dir, "Output directory, replaced atomically")->capture_default_str();
  gen_cmd->add_option("--node", gen.nodes, "Only this node (repeatable); other nodes' output is kept");
  gen_cmd->add_option("--format", gen.format, "bundle: one signed <node>.kbundle per node; dir: one tree per node")
      ->capture_default_str()
      ->check(CLI::IsMember({"bundle", "dir"}));
  gen_cmd->add_option("--compression", gen.compression, "Bundle compression: zstd or gzip")
      ->capture_default_str()
      ->check(CLI::IsMember({"zstd", "gzip"}));
  gen_cmd->add_option("--cache", gen.cache_dir, "Binary cache filled by `kbundle fetch` (default: <state>/cache)");
  gen_cmd->add_flag("--no-binaries", gen.no_binaries, "Config-only bundles: no Kubernetes, etcd or containerd binaries");
  gen_cmd->add_flag("--json", gen.json, "Print a machine-readable summary");

  PlanOptions plan;
  auto* plan_cmd = app.add_subcommand(
      "plan", "Show what gen would change, node by node, and the apply order; write nothing (exit 0 none, 2 changes)");
  plan_cmd->add_option("--topology,-t", plan.topology_path, "Topology file (YAML)")->required();
  plan_cmd->add_option("--state", plan.state_dir, "State directory (read only; need not exist yet)")->capture_default_str();
  plan_cmd->add_option("--node", plan.nodes, "Only this node (repeatable), as gen --node");
  plan_cmd->add_option("--cache", plan.cache_dir, "Binary cache filled by `kbundle fetch` (default: <state>/cache)");
  plan_cmd->add_flag("--no-binaries", plan.no_binaries, "Compare config-only bundles, as gen --no-binaries writes");
  plan_cmd->add_option("--max-unavailable", plan.max_unavailable, "Workers per batch in the apply order shown")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1000000}));
  plan_cmd->add_flag("--json", plan.json, "Print the plan as JSON (docs/plan.md)");

  std::string validate_path;
  bool validate_json = false;
  auto* validate_cmd = app.add_subcommand("validate", "Check a topology file; write nothing");
  validate_cmd->add_option("--topology,-t", validate_path, "Topology file (YAML)")->required();
  validate_cmd->add_flag("--json", validate_json, "Print diagnostics as JSON");
  std::string validate_state;
  validate_cmd->add_option("--state", validate_state, "State directory (read only): also warn about an encryption provider changed without a rotation");

  std::string lint_path;
  bool lint_json = false;
  auto* lint_cmd = app.add_subcommand("lint", "List the CIS Kubernetes Benchmark checks a topology's settings turn off");
  lint_cmd->add_option("--topology,-t", lint_path, "Topology file (YAML)")->required();
  lint_cmd->add_flag("--json", lint_json, "Print the findings as JSON");

  std::string inspect_bundle, inspect_pubkey;
  bool inspect_json = false;
  auto* inspect_cmd = app.add_subcommand("inspect", "Verify a bundle (signature, every file's hash) and list it");
  inspect_cmd->add_option("bundle", inspect_bundle, "The .kbundle file")->required();
  inspect_cmd->add_option("--pubkey", inspect_pubkey, "Signing public key (default: bundle-signing.pub beside the bundle)");
  inspect_cmd->add_flag("--json", inspect_json, "Print the listing as JSON");

  AwsOptions aws;
  aws.self_exe = argc > 0 ? argv[0] : "";
  auto* aws_cmd = add_aws_command(app, aws);

  FetchOptions fetch;
  auto* fetch_cmd = add_fetch_command(app, fetch);

  RotateOptions rotate;
  auto* rotate_cmd = add_rotate_command(app, rotate);
  RotateKeysOptions rotate_keys;
  add_rotate_keys_commands(rotate_cmd, rotate_keys);

  RestoreOptions restore;
  auto* restore_cmd = add_restore_command(app, restore);

  PublishOptions publish;
  publish.self_exe = argc > 0 ? argv[0] : "";
  auto* publish_cmd = add_publish_command(app, publish);

  CertsOptions certs;
  auto* certs_cmd = add_certs_command(app, certs);

  // Tests only (hidden): the run's clock for gen, plan and certs, e.g. a year on to see renewals.
  std::string now_flag;
  for (auto* cmd : {gen_cmd, plan_cmd, certs_cmd}) cmd->add_option("--now", now_flag)->group("");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    // plan's 2 means "changes" and nothing else (docs/plan.md): its usage errors exit 1.
    if (rc != 0 && argc > 1 && (std::string(argv[1]) == "plan" || std::string(argv[1]) == "certs")) return kExitFailure;
    return rc == 0 ? kExitOk : kExitUsage;
  }

  // The one place kbundle reads the clock. SOURCE_DATE_EPOCH (reproducible builds) fixes only
  // the bundles' creation time: certificates are always dated from the real clock.
  gen.now = std::time(nullptr);
  if (const char* epoch = std::getenv("SOURCE_DATE_EPOCH")) gen.created_at = static_cast<std::time_t>(std::strtoll(epoch, nullptr, 10));
  if (!now_flag.empty()) {
    auto t = parse_rfc3339_utc(now_flag);
    if (!t) {
      std::cerr << "kbundle: error: --now " << escape_text(now_flag) << ": want YYYY-MM-DDTHH:MM:SSZ\n";
      return *plan_cmd || *certs_cmd ? kExitFailure : kExitUsage;  // their 2 means something else
    }
    gen.now = static_cast<std::time_t>(*t);
  }
  plan.now = gen.now;
  plan.created_at = gen.created_at;
  certs.now = gen.now;

  try {
    if (*gen_cmd) return run_gen(gen, std::cout, std::cerr);
    if (*plan_cmd) return run_plan(plan, std::cout, std::cerr);
    if (*validate_cmd) return run_validate(validate_path, validate_json, std::cout, std::cerr, validate_state, gen.now);
    if (*lint_cmd) return run_lint(lint_path, lint_json, std::cout, std::cerr);
    if (*inspect_cmd) return run_inspect(inspect_bundle, inspect_pubkey, inspect_json, std::cout, std::cerr);
    if (*aws_cmd) return run_aws(aws, std::cout, std::cerr);
    if (*fetch_cmd) return run_fetch(fetch, std::cout, std::cerr);
    if (*publish_cmd) return run_publish(publish, std::cout, std::cerr);
    if (*rotate_cmd && !rotate_keys.what.empty()) return run_rotate_keys(rotate_keys, gen.now, std::cout, std::cerr);
    if (*rotate_cmd) return run_rotate(rotate, gen.now, std::cout, std::cerr);
    if (*certs_cmd) return run_certs(certs, std::cout, std::cerr);
    if (*restore_cmd) return run_restore(restore, gen.now, std::cout, std::cerr);
  } catch (const Error& e) {
    // Messages quote paths, names and remote answers: never let a control character through.
    std::cerr << "kbundle: error: " << escape_text(e.what()) << "\n";
    return kExitFailure;
  } catch (const std::exception& e) {
    std::cerr << "kbundle: error: " << escape_text(e.what()) << "\n";
    return kExitFailure;
  }
  return kExitUsage;
}

}  // namespace kb
