#include <unistd.h>

#include <CLI/CLI.hpp>
#include <ostream>

#include "base/exit_code.h"
#include "base/file_io.h"
#include "binaries/catalog.h"
#include "binaries/fetch.h"
#include "cli/commands.h"

namespace kb {

CLI::App* add_fetch_command(CLI::App& app, FetchOptions& o) {
  auto* cmd = app.add_subcommand("fetch", "Download and verify the node binaries and images into the offline cache; move it across an air gap");
  cmd->add_option("--version", o.version, "Kubernetes version: any published patch release of " + catalog_versions())->capture_default_str();
  cmd->add_option("--mirror", o.mirror, "Internal mirror: https://HOST/PATH is fetched as MIRROR/HOST/PATH (images need one)");
  cmd->add_option("--cache", o.cache_dir, "Cache directory (default: <state>/cache)");
  cmd->add_option("--state", o.state_dir, "State directory")->capture_default_str();
  auto* ex = cmd->add_option("--export", o.export_path, "Then write an air-gap kit (a tar) of the version's files, lock and catalog");
  cmd->add_option("--import", o.import_path, "Verify a kit (tar or directory) against its lock and add it to the cache; no network")
      ->excludes(ex);
  return cmd;
}

int run_fetch(const FetchOptions& options, std::ostream& out, std::ostream& err) {
  const std::string cache_dir = options.cache_dir.empty() ? options.state_dir + "/cache" : options.cache_dir;
  make_dirs(cache_dir, 0700);
  if (!options.import_path.empty()) {
    if (!options.export_path.empty() || !options.mirror.empty()) {
      err << "kbundle: error: --import reads no network and writes no kit: drop --mirror and --export\n";
      return kExitUsage;
    }
    import_kit(cache_dir, options.import_path, out);
    return kExitOk;
  }
  const CatalogEntry& entry = catalog_entry(options.version);
  DownloadOptions download;
  download.log = &err;
  download.progress_bar = ::isatty(STDERR_FILENO) == 1;
  LockFile lock = fetch_into_cache(cache_dir, entry, options.mirror, download, err);
  out << "fetch: Kubernetes " << lock.kubernetes_version << ": " << lock.binaries.size() << " binaries and " << lock.images.size()
      << " images verified in " << cache_dir << " (" << lock_path(cache_dir, lock.kubernetes_version) << ")\n";
  if (!options.export_path.empty()) {
    export_kit(cache_dir, lock.kubernetes_version, options.export_path);
    out << "fetch: wrote the air-gap kit " << options.export_path << "\n";
  }
  return kExitOk;
}

}  // namespace kb
