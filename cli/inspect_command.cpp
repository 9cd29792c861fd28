#include <filesystem>
#include <nlohmann/json.hpp>
#include <ostream>

#include "base/atomic_file.h"
#include "bundles/bundle_error.h"
#include "bundles/bundle_reader.h"
#include "bundles/manifest.h"
#include "bundles/path_policy.h"
#include "base/exit_code.h"
#include "cli/commands.h"

namespace kb {

int run_inspect(const std::string& bundle_path, const std::string& pubkey_path, bool json, std::ostream& out,
                std::ostream& err) {
  std::string key_path = pubkey_path;
  if (key_path.empty()) {
    key_path = (std::filesystem::path(bundle_path).parent_path() / "bundle-signing.pub").string();
    if (!std::filesystem::exists(key_path)) {
      err << "kbundle: error: " << bundle_path << ": no bundle-signing.pub next to it; pass --pubkey FILE "
          << "(the key `kbundle gen` wrote next to the bundles)\n";
      return kExitUsage;
    }
  }
  std::string key = read_file(key_path);
  try {
    // verify_bundle reads every member: the signature first, then each entry's size and sha256.
    Manifest m = verify_bundle(bundle_path, key);
    // A valid signature is not enough: the installer refuses what the path policy forbids.
    auto violations = path_policy_violations(m);
    if (json) {
      nlohmann::json j = manifest_listing_json(m);
      j["verified"] = true;
      j["policy"] = violations.empty() ? "ok" : "refused";
      auto& list = j["policy_violations"] = nlohmann::json::array();
      for (const auto& v : violations) list.push_back({{"path", v.path}, {"what", v.what}, {"rule", v.rule}});
      out << j.dump(2) << "\n";
    } else {
      out << manifest_listing_text(m);
      out << "verified: signature by sha256:" << m.signing_key_sha256 << ", " << m.entries.size()
          << " entries, every size and sha256 matches\n";
      if (violations.empty()) out << "policy: ok, every path, unit, mode and owner is one a bundle may have (FORMAT.md 5.3)\n";
    }
    for (const auto& v : violations) err << "kbundle: error: " << bundle_path << ": policy: " << v.message() << "\n";
    if (!violations.empty()) {
      err << "kbundle: error: " << bundle_path << ": refused (" << to_string(BundleErrc::PolicyViolation) << "): "
          << violations.size() << " violation" << (violations.size() == 1 ? "" : "s")
          << " of the path policy; kbundle-installer would refuse this bundle\n";
      return kExitFailure;
    }
    return kExitOk;
  } catch (const BundleError& e) {
    if (json) out << nlohmann::json{{"verified", false}, {"error", to_string(e.code())}, {"message", e.what()}}.dump(2) << "\n";
    err << "kbundle: error: " << bundle_path << ": refused (" << to_string(e.code()) << "): " << e.what() << "\n";
    return kExitFailure;
  }
}

}  // namespace kb
