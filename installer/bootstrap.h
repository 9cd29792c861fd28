#pragma once
// The bootstrap objects (docs/bootstrap.md, "The installer's side"). The designated control-plane
// node's bundle carries /var/lib/kubernetes/bootstrap/objects.json: the API server's address, the
// CA and client identity to reach it with, and Kubernetes objects in apply order. After an apply
// that committed with every health check passed, and on `kbundle-installer bootstrap`, each object
// is server-side applied to the node's own API server (PATCH, application/apply-patch+yaml,
// fieldManager, force), retried with bounded back-off, once per objects.json (its sha256), and
// the result recorded atomically in /var/lib/kbundle/bootstrap.json. A failure never rolls back
// the control plane: `status` reports it and says to run `kbundle-installer bootstrap`.
//
// objects.json comes from a signed bundle, yet it is read as hostile input: every field is checked
// before anything is sent (an https loopback address, paths of files the bundle itself installs,
// REST paths of one object each that match the object's own apiVersion, kind, namespace and name).

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bundles/bundle_reader.h"
#include "bundles/manifest.h"
#include "bundles/path_policy.h"
#include "https/http_client.h"
#include "installer/hooks.h"
#include "installer/run.h"

namespace kb::installer {

constexpr size_t kMaxBootstrapFile = 4u << 20;      // the whole objects.json
constexpr size_t kMaxBootstrapObjects = 256;
constexpr size_t kMaxBootstrapObjectBody = 1u << 20;  // one object as sent

struct BootstrapObject {
  std::string api_path;
  nlohmann::json object;
  std::string kind, name;  // from the object, for messages and the record
};

// The node's own API server and the identity to reach it with, as a bundle's request file names
// them (objects.json here, reencrypt-secrets.json in installer/reencrypt.h).
struct ApiAccess {
  std::string api_server;
  HttpUrl url;
  std::string ca_file, cert_file, key_file;  // node paths, each a file the manifest installs
};
// Reads and checks j's "api_server" (https, a loopback address, no path) and "ca_file", "cert_file",
// "key_file" (clean absolute paths of files `m` installs; the key 0600). Throws
// InstallerError(BadBundle) "<where>: <field>: <what is wrong and the fix>".
ApiAccess parse_api_access(const nlohmann::json& j, const std::string& where, const Manifest& m);
// The live bytes of a file the installed generation `m` put there (entry `e`), at most `max_size`;
// throws kb::Error naming the file when it is missing, too large or not what was installed (drift).
std::string read_installed_entry(Run& r, const Manifest& m, const ManifestEntry& e, size_t max_size);
// A sender to `a` with the live files (the key must be a 0600 file); throws kb::Error naming the file.
ApiSend api_sender(Run& r, const ApiAccess& a);

struct BootstrapSpec : ApiAccess {
  std::string field_manager;
  std::vector<BootstrapObject> objects;
};

// Parses and checks objects.json against the manifest that installs it. Throws
// InstallerError(BadBundle) "<where>: <place, e.g. objects[2].api_path>: <what is wrong and the fix>".
BootstrapSpec parse_bootstrap_objects(const std::string& bytes, const std::string& where, const Manifest& m);

// The server-side apply of one object:
// PATCH {api_path}?fieldManager={field_manager}&force=true, Content-Type: application/apply-patch+yaml,
// the object as JSON (JSON is YAML) as the body.
HttpRequest bootstrap_request(const BootstrapSpec& spec, const BootstrapObject& object);

// What one answer means for the apply.
struct BootstrapVerdict {
  enum class Kind { Done, Retry, Final };
  Kind kind = Kind::Final;
  std::string detail;                        // "HTTP 403 Forbidden: <the API's message>", "connection refused"
  std::chrono::milliseconds retry_after{0};  // a 429's (or 503's) Retry-After
  int status = 0;
};
// Done: 200, 201. Retry: no answer (refused, reset, timed out), 409 (a concurrent write's
// resourceVersion conflict or a create race: the same apply succeeds once the other write is in),
// 429, 5xx. Final: a server certificate that does not verify, any other status.
BootstrapVerdict classify_bootstrap_answer(const HttpResult& result);

// apply, after staging and before any live write: refuses (exit 3) a bundle whose objects.json is
// malformed or hostile. `staged_files` is the staging directory's files/ (node paths below it).
void check_staged_bootstrap(const Manifest& m, const std::string& staged_files, const std::string& bundle);

// `verify BUNDLE`: reads the payload like DiscardSink but keeps objects.json's bytes (and the
// re-encrypt request's, installer/reencrypt.h), then check() refuses the bundle as apply would.
class BootstrapCheckSink : public MemberSink {
 public:
  void begin(const ManifestEntry& entry) override {
    keep_ = entry.path == kBootstrapObjects ? &bytes_ : entry.path == kReencryptRequestFile ? &request_ : nullptr;
  }
  void write(std::string_view block) override {
    if (keep_) keep_->append(block);
  }
  void finish() override { keep_ = nullptr; }
  void check(const Manifest& m, const std::string& bundle) const;
  const std::string& reencrypt_request() const { return request_; }

 private:
  std::string* keep_ = nullptr;
  std::string bytes_, request_;
};

// apply, once the generation is committed (or was already installed): applies the objects unless
// already applied for this objects.json; with --no-systemd only records them pending (the health
// checks, which would have shown the API server up, were skipped). Ok, or BootstrapFailed.
ExitCode bootstrap_after_apply(Run& r, const Manifest& m);
// `kbundle-installer bootstrap`: the same now, --no-systemd or not.
ExitCode bootstrap_installed(Run& r, const Manifest& m);
// `status`: report["bootstrap"] and one line; null and nothing when the bundle has no objects.
void bootstrap_status(Run& r, const Manifest& m);

}  // namespace kb::installer
