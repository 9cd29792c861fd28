#include "installer/reencrypt.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <thread>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/file_io.h"
#include "base/hash.h"
#include "base/text_escape.h"
#include "base/time.h"
#include "bundles/path_policy.h"
#include "installer/live_fs.h"

namespace kb::installer {

namespace {

using std::chrono::milliseconds;

constexpr auto kFirstPause = milliseconds(250);
constexpr auto kMaxPause = milliseconds(10000);
constexpr auto kStepTimeout = milliseconds(10000);
constexpr const char* kRetry = "apply the same bundle again";

[[noreturn]] void refuse(const std::string& where, const std::string& place, const std::string& what) {
  throw InstallerError(ExitCode::BadBundle, where + ": " + place + ": " + what);
}

// A Kubernetes object name or namespace (DNS subdomain): nothing else goes into a path.
bool good_name(const std::string& s) {
  return !s.empty() && s.size() <= 253 && s != "." && s != ".." &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.'; });
}

// The list's continue token goes into the query string: every byte but unreserved ones encoded.
std::string query_escape(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
    else out += {'%', hex[c >> 4], hex[c & 15]};
  }
  return out;
}

std::string record_path(const Run& r) { return r.layout.state() + "/reencrypt.json"; }

nlohmann::json read_record(Run& r) {
  const std::string path = record_path(r);
  if (inspect(path, false).kind == LiveState::Kind::Absent) return nullptr;
  nlohmann::json j = nlohmann::json::parse(read_file(path), nullptr, false);
  if (!j.is_object()) {
    r.warn(path + ": not a JSON object; treated as no record (every Secret will be rewritten again)");
    return nullptr;
  }
  return j;
}

void write_record(Run& r, const nlohmann::json& rec) { write_file_atomic(record_path(r), rec.dump(2) + "\n", 0600); }

// The API's words for a non-2xx answer (a Status object's message), or the transport failure.
struct Answer {
  int status = 0;  // 0: no answer
  nlohmann::json body;
  BootstrapVerdict verdict;
};

class Client {
 public:
  Client(Run& r, ApiSend send, const ReencryptSpec& spec)
      : r_(r), send_(std::move(send)), spec_(spec), total_(std::chrono::seconds(std::max(1, r.opt.bootstrap_deadline))) {}

  // One request, retried on no answer, 429 and 5xx until the deadline (per request); 409 and 404
  // come back to the caller. Throws kb::Error with the last answer when it gives up.
  Answer call(const std::string& method, const std::string& target, const std::string& body, size_t max_response) {
    HttpRequest q;
    q.method = method;
    q.target = target;
    q.host = spec_.url.host_header;
    q.headers = {{"User-Agent", "kbundle-installer"}, {"Accept", "application/json"}};
    if (!body.empty()) q.headers.push_back({"Content-Type", "application/json"});
    q.body = body;
    const Hooks& h = r_.hooks;
    const auto start = h.monotonic();
    const auto deadline = start + total_;
    const auto step = std::min<milliseconds>(kStepTimeout, std::max<milliseconds>(milliseconds(1000), total_ / 4));
    auto pause = kFirstPause;
    while (true) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - h.monotonic());
      HttpLimits limits;
      limits.step_timeout = std::max(milliseconds(1), std::min(step, left));
      limits.deadline = std::chrono::steady_clock::now() + std::max(milliseconds(1), left);
      limits.max_response = max_response;
      HttpResult res = send_(q, limits);
      ++requests;
      Answer a;
      a.verdict = classify_bootstrap_answer(res);
      if (const auto* resp = std::get_if<HttpResponse>(&res)) {
        a.status = resp->status;
        a.body = nlohmann::json::parse(resp->body, nullptr, false);
        if (a.status == 409 || a.status == 404) return a;
      }
      if (a.verdict.kind == BootstrapVerdict::Kind::Done) return a;
      if (a.verdict.kind == BootstrapVerdict::Kind::Final) throw Error(method + " " + target + ": " + a.verdict.detail);
      auto wait = std::max(pause, a.verdict.retry_after);
      if (h.monotonic() + wait >= deadline)
        throw Error(method + " " + target + ": the API server at " + spec_.api_server + " did not answer within " +
                    std::to_string(std::chrono::duration_cast<std::chrono::seconds>(total_).count()) +
                    " s (last: " + a.verdict.detail + "); --bootstrap-deadline SECONDS waits longer");
      r_.say("re-encrypt: " + method + " " + target + ": " + a.verdict.detail + "; retrying");
      if (h.sleep) h.sleep(wait);
      else std::this_thread::sleep_for(wait);
      pause = std::min(kMaxPause, pause * 2);
    }
  }

  int requests = 0;

 private:
  Run& r_;
  ApiSend send_;
  const ReencryptSpec& spec_;
  milliseconds total_;
};

std::string secret_path(const std::string& ns, const std::string& name) {
  return "/api/v1/namespaces/" + ns + "/secrets/" + name;
}

// Writes one Secret back as read; on 409 reads it again and retries. Returns "rewritten" or "gone".
std::string rewrite(Client& c, nlohmann::json secret, const std::string& ns, const std::string& name, int& conflicts_seen) {
  const std::string path = secret_path(ns, name);
  for (int conflicts = 0;; ++conflicts) {
    // A list's items carry no kind and apiVersion; a PUT body must.
    secret["apiVersion"] = "v1";
    secret["kind"] = "Secret";
    Answer a = c.call("PUT", path, secret.dump(), 1u << 20);
    if (a.status == 404) return "gone";
    if (a.status != 409) return "rewritten";
    ++conflicts_seen;
    if (conflicts + 1 >= kMaxReencryptConflicts)
      throw Error("PUT " + path + ": " + std::to_string(kMaxReencryptConflicts) + " conflicts in a row (the Secret keeps changing): " +
                  a.verdict.detail);
    Answer g = c.call("GET", path, "", 2u << 20);
    if (g.status == 404) return "gone";
    if (!g.body.is_object()) throw Error("GET " + path + ": the answer is not a JSON object");
    secret = g.body;
  }
}

ReencryptSpec read_live_request(Run& r, const Manifest& m, const ManifestEntry& e) {
  return parse_reencrypt_request(read_installed_entry(r, m, e, kMaxReencryptFile), r.layout.live(e.path), m);
}

}  // namespace

ReencryptSpec parse_reencrypt_request(const std::string& bytes, const std::string& where, const Manifest& m) {
  if (bytes.size() > kMaxReencryptFile) refuse(where, "the file", "larger than " + std::to_string(kMaxReencryptFile) + " bytes");
  nlohmann::json j = nlohmann::json::parse(bytes, nullptr, false);
  if (j.is_discarded()) refuse(where, "the file", "not valid JSON; regenerate it with `kbundle gen`");
  if (!j.is_object()) refuse(where, "the top level", "not a JSON object");
  for (const auto& [k, v] : j.items())
    if (k != "version" && k != "api_server" && k != "ca_file" && k != "cert_file" && k != "key_file" && k != "write_key" &&
        k != "rotation_started")
      refuse(where, escape_text(k), "unknown field; remove it (allowed: version, api_server, ca_file, cert_file, key_file, write_key, rotation_started)");
  if (!j.contains("version") || j["version"] != 1) refuse(where, "version", "must be 1 (this installer reads version 1)");
  ReencryptSpec s;
  static_cast<ApiAccess&>(s) = parse_api_access(j, where, m);
  if (!j.contains("write_key") || !j["write_key"].is_string()) refuse(where, "write_key", "missing or not a string");
  s.write_key = j["write_key"].get<std::string>();
  if (s.write_key.empty() || s.write_key.size() > 64 ||
      !std::all_of(s.write_key.begin(), s.write_key.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == ':' || c == '-'; }))
    refuse(where, "write_key", "'" + escape_text(s.write_key) + "' must be PROVIDER:KEYNAME (letters, digits, '-')");
  return s;
}

namespace {

void check_request(const Manifest& m, const std::function<std::string()>& bytes, const std::string& bundle) {
  const ManifestEntry* e = find_file_entry(m, kReencryptRequestFile);
  if (!e) return;
  const std::string where = bundle + ": " + kReencryptRequestFile;
  try {
    if (e->size > kMaxReencryptFile) refuse(where, "the file", "larger than " + std::to_string(kMaxReencryptFile) + " bytes");
    parse_reencrypt_request(bytes(), where, m);
  } catch (const InstallerError& err) {
    throw InstallerError(ExitCode::BadBundle, std::string(err.what()) + "; refused, nothing was changed");
  }
}

}  // namespace

void check_staged_reencrypt(const Manifest& m, const std::string& staged_files, const std::string& bundle) {
  check_request(m, [&] { return read_file(staged_files + kReencryptRequestFile); }, bundle);
}

void check_bundle_reencrypt(const Manifest& m, const std::string& bytes, const std::string& bundle) {
  check_request(m, [&] { return bytes; }, bundle);
}

ExitCode reencrypt_after_apply(Run& r, const Manifest& m) {
  const ManifestEntry* e = find_file_entry(m, kReencryptRequestFile);
  if (!e) return ExitCode::Ok;
  const Hooks& h = r.hooks;
  nlohmann::json old = read_record(r);
  if (old.is_object() && old.value("status", "") == "done" && old.value("request_sha256", "") == e->sha256) {
    r.say("re-encrypt: every Secret was already rewritten for this request (" + old.value("finished_at", "?") + "); nothing sent");
    r.report["reencrypt"] = old;
    return ExitCode::Ok;
  }
  nlohmann::json rec = {{"version", 1},       {"request_sha256", e->sha256}, {"serial", m.serial},
                        {"status", "pending"}, {"write_key", nullptr},        {"started_at", rfc3339_utc(h.now())},
                        {"finished_at", nullptr}, {"secrets", 0}, {"rewritten", 0}, {"gone", 0}, {"conflicts", 0},
                        {"error", nullptr},    {"run", kRetry}};
  if (r.opt.no_systemd) {
    rec["error"] = "not attempted: health checks were skipped (--no-systemd)";
    write_record(r, rec);
    r.report["reencrypt"] = rec;
    r.say("re-encrypt: pending: health checks were skipped (--no-systemd); " + std::string(kRetry) + " once the API server answers");
    return ExitCode::Ok;
  }
  auto fail = [&](const std::string& why) {
    rec["status"] = "failed";
    rec["error"] = why;
    rec["finished_at"] = rfc3339_utc(h.now());
    write_record(r, rec);
    r.report["reencrypt"] = rec;
    r.warn("the Secrets were not all rewritten with the new encryption key: " + why +
           "; the node stays applied (nothing was rolled back); " + kRetry + " to retry, and do not remove the old key "
           "(`kbundle rotate encryption-key --advance`) before it succeeds");
    return ExitCode::ReencryptFailed;
  };
  write_record(r, rec);
  try {
    ReencryptSpec spec = read_live_request(r, m, *e);
    rec["write_key"] = spec.write_key;
    Client c(r, api_sender(r, spec), spec);
    SigpipeBlock no_sigpipe;
    r.say("re-encrypt: rewriting every Secret through " + spec.api_server + " so that " + spec.write_key + " encrypts it");
    std::string cont;
    int secrets = 0, rewritten = 0, gone = 0, conflicts = 0;
    do {
      std::string target = "/api/v1/secrets?limit=" + std::to_string(kReencryptPage) + (cont.empty() ? "" : "&continue=" + query_escape(cont));
      Answer a = c.call("GET", target, "", kMaxReencryptListAnswer);
      if (a.status != 200) throw Error("GET " + target + ": " + a.verdict.detail);
      if (!a.body.is_object() || !a.body["items"].is_array()) throw Error("GET " + target + ": the answer is not a SecretList");
      for (auto& item : a.body["items"]) {
        if (!item.is_object() || !item["metadata"].is_object() || !item["metadata"]["name"].is_string() ||
            !item["metadata"]["namespace"].is_string())
          throw Error("GET " + target + ": an item without metadata.name and metadata.namespace");
        std::string ns = item["metadata"]["namespace"].get<std::string>(), name = item["metadata"]["name"].get<std::string>();
        if (!good_name(ns) || !good_name(name))
          throw Error("GET " + target + ": '" + escape_text(ns) + "/" + escape_text(name) + "' is not a Kubernetes name");
        ++secrets;
        (rewrite(c, std::move(item), ns, name, conflicts) == "gone" ? gone : rewritten) += 1;
      }
      const auto& meta = a.body["metadata"];
      std::string next = meta.is_object() && meta.contains("continue") && meta["continue"].is_string() ? meta["continue"].get<std::string>() : "";
      // A server that hands back the same page (or an endless list) must not keep the node busy forever.
      if (!next.empty() && (next == cont || a.body["items"].empty() || next.size() > 4096))
        throw Error("GET " + target + ": the list does not advance (continue token repeated, too long, or an empty page)");
      cont = next;
      rec["secrets"] = secrets;
      rec["rewritten"] = rewritten;
      rec["gone"] = gone;
      rec["conflicts"] = conflicts;
      write_record(r, rec);
    } while (!cont.empty());
  } catch (const std::exception& ex) {
    return fail(ex.what());
  }
  rec["status"] = "done";
  rec["finished_at"] = rfc3339_utc(h.now());
  rec.erase("run");
  write_record(r, rec);
  r.report["reencrypt"] = rec;
  r.say("re-encrypt: rewrote " + std::to_string(rec["rewritten"].get<int>()) + " Secrets with " + rec["write_key"].get<std::string>() +
        " (" + std::to_string(rec["gone"].get<int>()) + " deleted meanwhile, " + std::to_string(rec["conflicts"].get<int>()) +
        " conflicts retried), recorded in " + record_path(r));
  return ExitCode::Ok;
}

void reencrypt_status(Run& r, const Manifest& m) {
  const ManifestEntry* e = find_file_entry(m, kReencryptRequestFile);
  if (!e) return;
  nlohmann::json rec = read_record(r);
  if (!rec.is_object() || rec.value("request_sha256", "") != e->sha256)
    rec = {{"status", "pending"}, {"request_sha256", e->sha256}, {"error", "not attempted yet"}, {"run", kRetry}};
  r.report["reencrypt"] = rec;
  std::string status = rec.value("status", "unknown");
  std::string line = "re-encrypt of every Secret (encryption-key rotation): " + status;
  if (rec.contains("rewritten") && rec["rewritten"].is_number()) line += ", " + std::to_string(rec["rewritten"].get<int>()) + " rewritten";
  if (rec.contains("finished_at") && rec["finished_at"].is_string()) line += " at " + rec["finished_at"].get<std::string>();
  if (status != "done") {
    if (rec.contains("error") && rec["error"].is_string()) line += ": " + rec["error"].get<std::string>();
    line += "; " + std::string(kRetry);
  }
  r.say(line);
}

}  // namespace kb::installer
