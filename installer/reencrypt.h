#pragma once
// Phase 3 of an encryption-key rotation (docs/rotation.md, "Encryption key"). The designated
// control-plane node's bundle then carries /var/lib/kubernetes/reencrypt-secrets.json: the API
// server and identity (as objects.json names them, installer/bootstrap.h) and the key that now
// writes. After an apply that committed with every health check passed, the installer lists every
// Secret (GET /api/v1/secrets, 100 a page) and writes each one back unchanged (PUT with the object
// as read, its resourceVersion included), so that the API server stores it again with the first
// key of its encryption config. A 409 (the Secret changed since the list) reads it again and puts
// it again; a 404 (deleted since) is skipped; no answer, 429 and 5xx are retried with bounded
// back-off within --bootstrap-deadline per request. Done once per request file (its sha256),
// recorded atomically in /var/lib/kbundle/reencrypt.json. A failure exits 8 and rolls nothing back:
// applying the same bundle again retries. The request file is hostile input: checked at staging
// (exit 3, nothing changed) and again before use.

#include <string>

#include "bundles/manifest.h"
#include "installer/bootstrap.h"
#include "installer/run.h"

namespace kb::installer {

constexpr size_t kMaxReencryptFile = 64u << 10;
constexpr size_t kReencryptPage = 100;               // Secrets per list request
constexpr size_t kMaxReencryptListAnswer = 64u << 20;  // one page as received (a Secret is at most 1 MiB)
constexpr int kMaxReencryptConflicts = 5;            // 409s in a row for one Secret

struct ReencryptSpec : ApiAccess {
  std::string write_key;  // "<provider>:<key name>", for messages and the record
};

// Throws InstallerError(BadBundle) "<where>: <place>: <what is wrong and the fix>".
ReencryptSpec parse_reencrypt_request(const std::string& bytes, const std::string& where, const Manifest& m);

// apply, after staging and before any live write: refuses (exit 3) a malformed or hostile request.
void check_staged_reencrypt(const Manifest& m, const std::string& staged_files, const std::string& bundle);
// `verify`: the same check of the bytes BootstrapCheckSink kept.
void check_bundle_reencrypt(const Manifest& m, const std::string& bytes, const std::string& bundle);

// apply, once the generation is committed and healthy: rewrites every Secret unless already done
// for this request file. With --no-systemd it only records "pending". Ok, or ReencryptFailed.
ExitCode reencrypt_after_apply(Run& r, const Manifest& m);

// `status`: report["reencrypt"] (the record, or pending) and one line; nothing when the installed
// bundle carries no request.
void reencrypt_status(Run& r, const Manifest& m);

}  // namespace kb::installer
