#include "publish/publish.h"

#include <iostream>
#include <unistd.h>

#include "base/error.h"
#include "publish/targets.h"

namespace kb {

int run_publish(const PublishOptions& o, std::ostream& out, std::ostream& err) {
  try {
    std::string installer = o.installer;
    if (o.no_installer && !installer.empty()) throw PublishUsageError("--installer and --no-installer exclude each other");
    if (!o.no_installer && installer.empty()) {
      installer = default_installer_path(o.self_exe.empty() ? "/proc/self/exe" : o.self_exe);
      if (installer.empty())
        err << "kbundle: note: no kbundle-installer found beside this kbundle; not publishing it "
               "(--installer PATH to publish one, --no-installer to silence this)\n";
    }
    if (o.max_unavailable != 0 && !(o.apply && o.to == "ssh"))
      throw PublishUsageError("--max-unavailable is for a rolling apply: --to ssh --apply");
    const bool s3 = o.to.starts_with("s3://");
    const bool ssh = o.to == "ssh" || o.to.starts_with("scp://") || o.to.starts_with("sftp://");
    if (!s3 && !ssh)
      throw PublishUsageError("--to '" + o.to + "': expected s3://BUCKET/PREFIX/, ssh or scp://USER@HOST[:PORT]/DIR");

    PublishSet set = collect_artifacts(o.out_dir, o.nodes, installer);
    nlohmann::json summary;
    summary["signingKeySha256"] = set.fingerprint;
    const bool progress = o.progress && !o.json && isatty(STDERR_FILENO);
    if (s3) publish_s3(o, set, summary, out, err, progress);
    else publish_ssh(o, set, summary, out, err, progress);
    if (o.json) out << summary.dump(2) << "\n";
    return 0;
  } catch (const PublishUsageError& e) {
    err << "kbundle: error: " << e.what() << "\n";
    return 2;
  }
}

}  // namespace kb
