#include "installer/bootstrap.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <functional>
#include <thread>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/hash.h"
#include "base/text_escape.h"
#include "base/time.h"
#include "installer/live_fs.h"

namespace kb::installer {

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr auto kFirstPause = milliseconds(250);
constexpr auto kMaxPause = milliseconds(10000);
constexpr auto kStepTimeout = milliseconds(10000);  // connect, and each read, at most
constexpr const char* kRetryCommand = "kbundle-installer bootstrap";

[[noreturn]] void refuse(const std::string& where, const std::string& place, const std::string& what) {
  throw InstallerError(ExitCode::BadBundle, where + ": " + place + ": " + what);
}

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || c == ':';
}

// One REST path segment: a DNS-ish name (RBAC names hold ':'), never "." or "..".
bool good_segment(const std::string& s) {
  return !s.empty() && s.size() <= 253 && s != "." && s != ".." && std::all_of(s.begin(), s.end(), is_name_char);
}

std::vector<std::string> split_path(const std::string& p) {
  std::vector<std::string> out;
  size_t start = 1;
  while (true) {
    size_t slash = p.find('/', start);
    out.push_back(p.substr(start, slash - start));
    if (slash == std::string::npos) return out;
    start = slash + 1;
  }
}

// A clean absolute node path: no "." or ".." component, no "//", no trailing "/", printable.
bool clean_node_path(const std::string& p) {
  if (p.size() < 2 || p.size() > 4096 || p[0] != '/' || p.back() == '/') return false;
  for (const auto& seg : split_path(p))
    if (seg.empty() || seg == "." || seg == ".." ||
        !std::all_of(seg.begin(), seg.end(), [](char c) { return c > 0x20 && c < 0x7f; }))
      return false;
  return true;
}

std::string string_field(const nlohmann::json& j, const char* key, const std::string& where, const std::string& place) {
  auto it = j.find(key);
  if (it == j.end()) refuse(where, place + key, "missing; add it (docs/bootstrap.md)");
  if (!it->is_string()) refuse(where, place + key, "is not a string");
  return it->get<std::string>();
}

void only_keys(const nlohmann::json& j, const std::vector<std::string>& keys, const std::string& where, const std::string& place) {
  for (const auto& [k, v] : j.items())
    if (std::find(keys.begin(), keys.end(), k) == keys.end())
      refuse(where, place + escape_text(k), "unknown field; remove it (allowed: version, api_server, ca_file, cert_file, key_file, field_manager, objects; per object: api_path, object)");
}

// The host of api_server must be this node: the objects go to its own API server, and a bundle
// cannot send the node's bootstrap identity anywhere else.
bool loopback(const std::string& host) {
  if (host == "localhost" || host == "::1") return true;
  in_addr a{};
  return inet_pton(AF_INET, host.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

void check_api_path(const BootstrapObject& o, const std::string& where, const std::string& place) {
  const std::string& p = o.api_path;
  const std::string fix = "write the object's own REST path: /api/v1/[namespaces/NS/]PLURAL/NAME or "
                          "/apis/GROUP/VERSION/[namespaces/NS/]PLURAL/NAME";
  if (p.size() > 1024) refuse(where, place, "longer than 1024 characters");
  if (p.rfind("/api/", 0) != 0 && p.rfind("/apis/", 0) != 0) refuse(where, place, "'" + escape_text(p) + "' does not start with /api/ or /apis/; " + fix);
  std::vector<std::string> segs = split_path(p);
  for (const auto& s : segs)
    if (!good_segment(s))
      refuse(where, place, "'" + escape_text(p) + "' has an empty, '.', '..' or non-name segment (only letters, digits, '.', '-', '_', ':'; no query, no '%'); " + fix);
  std::string api_version;
  size_t rest = 0;
  if (segs[0] == "api") {
    if (segs.size() < 2 || segs[1] != "v1") refuse(where, place, "'" + escape_text(p) + "': the core API is /api/v1; " + fix);
    api_version = "v1";
    rest = 2;
  } else {
    if (segs.size() < 3) refuse(where, place, "'" + escape_text(p) + "': no group and version; " + fix);
    api_version = segs[1] + "/" + segs[2];
    rest = 3;
  }
  size_t n = segs.size() - rest;
  std::string ns;
  if (n == 4 && segs[rest] == "namespaces") {
    ns = segs[rest + 1];
  } else if (n != 2) {
    refuse(where, place, "'" + escape_text(p) + "' does not name one object (a subresource or a collection?); " + fix);
  }
  const nlohmann::json& meta = o.object["metadata"];
  if (o.object["apiVersion"] != api_version)
    refuse(where, place, "'" + escape_text(p) + "' is in " + api_version + " but the object's apiVersion is " + escape_text(o.object["apiVersion"].dump()));
  if (segs.back() != o.name)
    refuse(where, place, "'" + escape_text(p) + "' names " + escape_text(segs.back()) + " but the object's metadata.name is " + escape_text(o.name));
  auto got_ns = meta.find("namespace");
  if (!ns.empty()) {
    if (got_ns == meta.end() || *got_ns != ns)
      refuse(where, place, "'" + escape_text(p) + "' is in namespace " + escape_text(ns) + " but the object's metadata.namespace is " +
                               (got_ns == meta.end() ? std::string("absent") : escape_text(got_ns->dump())));
  } else if (got_ns != meta.end()) {
    refuse(where, place, "'" + escape_text(p) + "' is cluster-scoped but the object has metadata.namespace " + escape_text(got_ns->dump()));
  }
}

nlohmann::json read_record(Run& r) {
  std::string path = r.layout.bootstrap_record();
  if (inspect(path, false).kind == LiveState::Kind::Absent) return nullptr;
  nlohmann::json j = nlohmann::json::parse(read_file(path), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    r.warn(path + ": not a JSON object; treated as no record (the bootstrap objects will be applied again)");
    return nullptr;
  }
  return j;
}

void write_record(Run& r, const nlohmann::json& rec) { write_file_atomic(r.layout.bootstrap_record(), rec.dump(2) + "\n", 0600); }

std::string short_sha(const std::string& sha) { return sha.substr(0, 12); }

// What status and --json show of a record.
nlohmann::json summary(const nlohmann::json& rec) {
  nlohmann::json s = nlohmann::json::object();
  for (const char* k : {"status", "objects_sha256", "serial", "started_at", "finished_at", "attempts", "error", "run"})
    s[k] = rec.contains(k) ? rec[k] : nlohmann::json(nullptr);
  if (rec.contains("objects") && rec["objects"].is_array()) s["objects"] = rec["objects"].size();
  return s;
}

bool applied_for(const nlohmann::json& rec, const std::string& sha) {
  return rec.is_object() && rec.value("status", "") == "applied" && rec.value("objects_sha256", "") == sha;
}

std::string seconds_text(std::chrono::steady_clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", std::chrono::duration<double>(d).count());
  return buf;
}

// The apply itself: reads and checks the live objects.json, records "pending", sends each object.
ExitCode send_objects(Run& r, const Manifest& m, const ManifestEntry& entry) {
  const Hooks& h = r.hooks;
  nlohmann::json rec = {{"version", 1},     {"objects_sha256", entry.sha256}, {"serial", m.serial},
                        {"status", "pending"}, {"started_at", rfc3339_utc(h.now())}, {"finished_at", nullptr},
                        {"attempts", 0},     {"error", nullptr},              {"run", kRetryCommand},
                        {"objects", nlohmann::json::array()}};
  auto fail = [&](const std::string& why) {
    rec["status"] = "failed";
    rec["error"] = why;
    rec["finished_at"] = rfc3339_utc(h.now());
    write_record(r, rec);
    r.report["bootstrap"] = summary(rec);
    r.warn("the bootstrap objects were not applied: " + why + "; the control plane stays installed (nothing was rolled back); "
           "run `" + std::string(kRetryCommand) + "` to retry (`kbundle-installer status` shows this)");
    return ExitCode::BootstrapFailed;
  };

  const std::string path = r.layout.live(kBootstrapObjects);
  BootstrapSpec spec;
  try {
    spec = parse_bootstrap_objects(read_installed_entry(r, m, entry, kMaxBootstrapFile), path, m);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  for (const auto& o : spec.objects)
    rec["objects"].push_back({{"api_path", o.api_path}, {"kind", o.kind}, {"name", o.name}, {"result", "pending"}});
  // "pending" before the first request: a crash from here on leaves a record that the next
  // apply or `bootstrap` finishes (server-side apply is idempotent, so every object is sent again).
  write_record(r, rec);

  ApiSend send;
  try {
    send = api_sender(r, spec);
  } catch (const std::exception& e) {
    return fail(e.what());
  }

  SigpipeBlock no_sigpipe;
  const auto total = seconds(std::max(1, r.opt.bootstrap_deadline));
  // Each blocking step is bounded too, shorter when the whole deadline is short.
  const auto step = std::min<milliseconds>(kStepTimeout, std::max<milliseconds>(milliseconds(1000), total / 4));
  const auto start = h.monotonic();
  const auto deadline = start + total;
  auto pause_for = [&](milliseconds d) {
    if (h.sleep) h.sleep(d);
    else std::this_thread::sleep_for(d);
  };
  r.say("bootstrap: applying " + std::to_string(spec.objects.size()) + " objects to " + spec.api_server + " (deadline " +
        std::to_string(total.count()) + " s)");
  int attempts = 0;
  for (size_t i = 0; i < spec.objects.size(); ++i) {
    const BootstrapObject& o = spec.objects[i];
    const std::string label = o.kind + " " + o.name;
    const HttpRequest request = bootstrap_request(spec, o);
    auto pause = kFirstPause;
    while (true) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - h.monotonic());
      HttpLimits limits;
      limits.step_timeout = std::max(milliseconds(1), std::min(step, left));
      limits.deadline = std::chrono::steady_clock::now() + std::max(milliseconds(1), left);
      rec["attempts"] = ++attempts;
      BootstrapVerdict v = classify_bootstrap_answer(send(request, limits));
      auto& slot = rec["objects"][i];
      if (v.kind == BootstrapVerdict::Kind::Done) {
        slot["result"] = v.status == 201 ? "created" : "configured";
        slot["http_status"] = v.status;
        slot["at"] = rfc3339_utc(h.now());
        write_record(r, rec);
        r.say("bootstrap: " + label + ": " + slot["result"].get<std::string>() + " (HTTP " + std::to_string(v.status) + ")");
        h.faults.reached("bootstrap-after-object-" + std::to_string(i));
        break;
      }
      if (v.kind == BootstrapVerdict::Kind::Final) {
        slot["result"] = "failed";
        slot["http_status"] = v.status;
        return fail(label + " (" + o.api_path + "): " + v.detail);
      }
      auto wait = std::max(pause, v.retry_after);
      auto now = h.monotonic();
      if (now + wait >= deadline) {
        slot["result"] = "failed";
        return fail(label + " (" + o.api_path + "): the API server at " + spec.api_server + " did not accept it within " +
                    std::to_string(total.count()) + " s (" + std::to_string(attempts) + " attempts; last: " + v.detail +
                    "); --bootstrap-deadline SECONDS waits longer");
      }
      r.say("bootstrap: " + label + ": " + v.detail + "; retrying in " + seconds_text(wait) + " (" +
            seconds_text(now - start) + " of " + std::to_string(total.count()) + " s)");
      pause_for(wait);
      pause = std::min(kMaxPause, pause * 2);
    }
  }
  rec["status"] = "applied";
  rec["finished_at"] = rfc3339_utc(h.now());
  rec.erase("run");
  write_record(r, rec);
  r.report["bootstrap"] = summary(rec);
  r.say("bootstrap: applied " + std::to_string(spec.objects.size()) + " objects (objects.json sha256 " + short_sha(entry.sha256) +
        "), recorded in " + r.layout.bootstrap_record());
  return ExitCode::Ok;
}

// Already applied for this objects.json: say so and send nothing.
bool already_applied(Run& r, const ManifestEntry& e) {
  nlohmann::json rec = read_record(r);
  if (!applied_for(rec, e.sha256)) return false;
  r.say("bootstrap objects already applied (objects.json sha256 " + short_sha(e.sha256) + ", " + rec.value("finished_at", "?") +
        "); nothing sent");
  r.report["bootstrap"] = summary(rec);
  return true;
}

}  // namespace

ApiAccess parse_api_access(const nlohmann::json& j, const std::string& where, const Manifest& m) {
  ApiAccess s;
  s.api_server = string_field(j, "api_server", where, "");
  {
    const std::string& a = s.api_server;
    const std::string fix = "write https://127.0.0.1:PORT (the node's own API server)";
    if (a.rfind("https://", 0) != 0) refuse(where, "api_server", "'" + escape_text(a) + "' is not https://; " + fix);
    if (a.find_first_of("/?#@ ", 8) != std::string::npos || std::any_of(a.begin(), a.end(), [](char c) { return c < 0x21 || c > 0x7e; }))
      refuse(where, "api_server", "'" + escape_text(a) + "' has a path, query, user or odd character; " + fix);
    try {
      s.url = parse_http_url(a, true);
      url_address(s.url);
    } catch (const Error& e) {
      refuse(where, "api_server", std::string(e.what()) + "; " + fix);
    }
    if (!loopback(s.url.host)) refuse(where, "api_server", "'" + escape_text(a) + "' is not this node (a loopback address); " + fix);
  }
  struct FileField {
    const char* key;
    std::string* out;
  };
  for (FileField f : {FileField{"ca_file", &s.ca_file}, FileField{"cert_file", &s.cert_file}, FileField{"key_file", &s.key_file}}) {
    *f.out = string_field(j, f.key, where, "");
    if (!clean_node_path(*f.out)) refuse(where, f.key, "'" + escape_text(*f.out) + "' is not a clean absolute path");
    const ManifestEntry* e = find_file_entry(m, *f.out);
    if (!e) refuse(where, f.key, *f.out + " is not a file this bundle installs; name one of its files (the installer reads nothing else)");
    if (std::string(f.key) == "key_file" && (e->mode & 077) != 0)
      refuse(where, f.key, *f.out + " is installed with mode " + mode_string(e->mode) + "; a private key must be 0600");
  }
  return s;
}

std::string read_installed_entry(Run& r, const Manifest& m, const ManifestEntry& e, size_t max_size) {
  const std::string path = r.layout.live(e.path);
  LiveState st = inspect(path, false);
  if (st.kind != LiveState::Kind::File) throw Error(path + ": missing or not a file; run `kbundle-installer verify` (drift)");
  if (st.size > max_size) throw Error(path + ": larger than " + std::to_string(max_size) + " bytes");
  std::string bytes = read_file(path);
  if (sha256_hex(bytes) != e.sha256)
    throw Error(path + ": differs from what serial " + std::to_string(m.serial) + " installed; run `kbundle-installer verify` (drift)");
  return bytes;
}

ApiSend api_sender(Run& r, const ApiAccess& a) {
  ApiEndpoint ep{a.url, r.layout.live(a.ca_file), r.layout.live(a.cert_file), r.layout.live(a.key_file)};
  LiveState st = inspect(ep.key_file, false);
  if (st.kind != LiveState::Kind::File) throw Error(ep.key_file + ": missing or not a file; run `kbundle-installer verify` (drift)");
  if ((st.mode & 077) != 0)
    throw Error(ep.key_file + ": mode " + mode_string(st.mode) +
                ": a private key must be 0600 (the bundle installs it so; `kbundle-installer verify` shows drift)");
  return r.hooks.api_client(ep);
}

BootstrapSpec parse_bootstrap_objects(const std::string& bytes, const std::string& where, const Manifest& m) {
  if (bytes.size() > kMaxBootstrapFile) refuse(where, "the file", "larger than " + std::to_string(kMaxBootstrapFile) + " bytes");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(bytes);
  } catch (const nlohmann::json::parse_error& e) {
    refuse(where, "byte " + std::to_string(e.byte), "not valid JSON; regenerate it with `kbundle gen`");
  }
  if (!j.is_object()) refuse(where, "the top level", "not a JSON object");
  only_keys(j, {"version", "api_server", "ca_file", "cert_file", "key_file", "field_manager", "objects"}, where, "");
  if (!j.contains("version") || j["version"] != 1) refuse(where, "version", "must be 1 (this installer reads version 1)");
  BootstrapSpec s;
  static_cast<ApiAccess&>(s) = parse_api_access(j, where, m);
  s.field_manager = string_field(j, "field_manager", where, "");
  if (s.field_manager.empty() || s.field_manager.size() > 128 ||
      !std::all_of(s.field_manager.begin(), s.field_manager.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':'; }))
    refuse(where, "field_manager", "'" + escape_text(s.field_manager) + "' must be 1-128 letters, digits, '-', '_', '.' or ':' (it goes into the query string)");
  auto objects = j.find("objects");
  if (objects == j.end() || !objects->is_array()) refuse(where, "objects", "missing or not a list");
  if (objects->empty()) refuse(where, "objects", "empty; a bundle without bootstrap objects carries no objects.json");
  if (objects->size() > kMaxBootstrapObjects) refuse(where, "objects", "more than " + std::to_string(kMaxBootstrapObjects) + " objects");
  for (size_t i = 0; i < objects->size(); ++i) {
    const std::string place = "objects[" + std::to_string(i) + "].";
    const nlohmann::json& item = (*objects)[i];
    if (!item.is_object()) refuse(where, "objects[" + std::to_string(i) + "]", "not a JSON object");
    only_keys(item, {"api_path", "object"}, where, place);
    BootstrapObject o;
    o.api_path = string_field(item, "api_path", where, place);
    auto obj = item.find("object");
    if (obj == item.end() || !obj->is_object()) refuse(where, place + "object", "missing or not a JSON object");
    o.object = *obj;
    std::string kind = string_field(o.object, "kind", where, place + "object.");
    string_field(o.object, "apiVersion", where, place + "object.");
    auto meta = o.object.find("metadata");
    if (meta == o.object.end() || !meta->is_object()) refuse(where, place + "object.metadata", "missing or not a JSON object");
    o.name = string_field(*meta, "name", where, place + "object.metadata.");
    if (kind.empty() || kind.size() > 63 || !std::all_of(kind.begin(), kind.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); }))
      refuse(where, place + "object.kind", "'" + escape_text(kind) + "' is not a Kubernetes kind");
    o.kind = kind;
    check_api_path(o, where, place + "api_path");
    if (o.object.dump().size() > kMaxBootstrapObjectBody)
      refuse(where, place + "object", "larger than " + std::to_string(kMaxBootstrapObjectBody) + " bytes");
    s.objects.push_back(std::move(o));
  }
  return s;
}

HttpRequest bootstrap_request(const BootstrapSpec& spec, const BootstrapObject& o) {
  HttpRequest q;
  q.method = "PATCH";
  // field_manager and api_path were checked to hold only name characters: nothing to encode.
  q.target = o.api_path + "?fieldManager=" + spec.field_manager + "&force=true";
  q.host = spec.url.host_header;
  q.headers = {{"User-Agent", "kbundle-installer"},
               {"Accept", "application/json"},
               {"Content-Type", "application/apply-patch+yaml"}};
  q.body = o.object.dump();
  return q;
}

BootstrapVerdict classify_bootstrap_answer(const HttpResult& result) {
  using Kind = BootstrapVerdict::Kind;
  BootstrapVerdict v;
  if (const auto* f = std::get_if<HttpFailure>(&result)) {
    v.detail = describe_http_failure(*f);
    // The server is not the one the CA vouches for: waiting will not change that.
    bool bad_cert = f->step == HttpFailure::Step::Tls && f->detail.rfind("certificate verify failed", 0) == 0;
    v.kind = bad_cert ? Kind::Final : Kind::Retry;
    if (bad_cert) v.detail = "the API server's certificate does not verify against ca_file: " + f->detail;
    return v;
  }
  const auto& r = std::get<HttpResponse>(result);
  v.status = r.status;
  if (r.status == 200 || r.status == 201) {
    v.kind = Kind::Done;
    v.detail = "HTTP " + std::to_string(r.status);
    return v;
  }
  // The API's own words: a Status object's message, else the start of the body.
  std::string message;
  nlohmann::json body = nlohmann::json::parse(r.body, nullptr, false);
  if (body.is_object() && body.value("kind", "") == "Status" && body.contains("message") && body["message"].is_string())
    message = body["message"].get<std::string>();
  else
    message = r.body.substr(0, 200);
  v.detail = "HTTP " + std::to_string(r.status) + (r.reason.empty() ? "" : " " + escape_text(r.reason)) +
             (message.empty() ? "" : ": " + escape_text(message.substr(0, 500)));
  bool retry = r.status == 409 || r.status == 429 || (r.status >= 500 && r.status <= 599);
  v.kind = retry ? Kind::Retry : Kind::Final;
  if (retry) {
    if (auto ra = r.header("retry-after"); ra && !ra->empty() && ra->size() <= 4 && ra->find_first_not_of("0123456789") == std::string::npos)
      v.retry_after = std::min<milliseconds>(seconds(std::stoi(*ra)), milliseconds(kMaxPause));
  }
  return v;
}

namespace {

// objects.json of a bundle being applied or verified, with the refusal's last words.
void check_bundle_objects(const Manifest& m, const std::function<std::string()>& bytes, const std::string& bundle) {
  const ManifestEntry* e = find_file_entry(m, kBootstrapObjects);
  if (!e) return;
  if (e->size > kMaxBootstrapFile)
    refuse(bundle + ": " + kBootstrapObjects, "the file", "larger than " + std::to_string(kMaxBootstrapFile) + " bytes; refused, nothing was changed");
  try {
    parse_bootstrap_objects(bytes(), bundle + ": " + kBootstrapObjects, m);
  } catch (const InstallerError& err) {
    throw InstallerError(ExitCode::BadBundle, std::string(err.what()) + "; refused, nothing was changed");
  }
}

}  // namespace

void check_staged_bootstrap(const Manifest& m, const std::string& staged_files, const std::string& bundle) {
  check_bundle_objects(m, [&] { return read_file(staged_files + kBootstrapObjects); }, bundle);
}

void BootstrapCheckSink::check(const Manifest& m, const std::string& bundle) const {
  check_bundle_objects(m, [&] { return bytes_; }, bundle);
}

ExitCode bootstrap_after_apply(Run& r, const Manifest& m) {
  const ManifestEntry* e = find_file_entry(m, kBootstrapObjects);
  if (!e) return ExitCode::Ok;
  if (already_applied(r, *e)) return ExitCode::Ok;
  if (r.opt.no_systemd) {
    // Nothing was started and no health check saw the API server: do not wait for it here.
    nlohmann::json rec = {{"version", 1},  {"objects_sha256", e->sha256}, {"serial", m.serial}, {"status", "pending"},
                          {"started_at", nullptr}, {"finished_at", nullptr}, {"attempts", 0},
                          {"error", "not attempted: health checks were skipped (--no-systemd)"}, {"run", kRetryCommand}};
    write_record(r, rec);
    r.report["bootstrap"] = summary(rec);
    r.say("bootstrap: pending: health checks were skipped (--no-systemd), so the API server was not seen up; run `" +
          std::string(kRetryCommand) + "` once it answers");
    return ExitCode::Ok;
  }
  return send_objects(r, m, *e);
}

ExitCode bootstrap_installed(Run& r, const Manifest& m) {
  const ManifestEntry* e = find_file_entry(m, kBootstrapObjects);
  if (!e) {
    r.say("serial " + std::to_string(m.serial) + " of node " + m.node_name +
          " carries no bootstrap objects (only the first control-plane node's bundle does); nothing to do");
    r.report["bootstrap"] = nullptr;
    return ExitCode::Ok;
  }
  if (already_applied(r, *e)) return ExitCode::Ok;
  return send_objects(r, m, *e);
}

void bootstrap_status(Run& r, const Manifest& m) {
  const ManifestEntry* e = find_file_entry(m, kBootstrapObjects);
  if (!e) {
    r.report["bootstrap"] = nullptr;
    return;
  }
  nlohmann::json rec = read_record(r);
  nlohmann::json s;
  if (!rec.is_object() || rec.value("objects_sha256", "") != e->sha256) {
    s = summary(nlohmann::json{{"status", "pending"}, {"objects_sha256", e->sha256}, {"error", "not attempted yet"}, {"run", kRetryCommand}});
  } else {
    s = summary(rec);
  }
  r.report["bootstrap"] = s;
  std::string status = s["status"].is_string() ? s["status"].get<std::string>() : "unknown";
  std::string line = "bootstrap objects (sha256 " + short_sha(e->sha256) + "): " + status;
  if (status == "applied") {
    line += " at " + s["finished_at"].get<std::string>();
  } else {
    if (s["finished_at"].is_string()) line += " at " + s["finished_at"].get<std::string>();
    if (s["error"].is_string()) line += ": " + s["error"].get<std::string>();
    line += "; run `" + std::string(kRetryCommand) + "`";
  }
  r.say(line);
}

ApiSend https_api_client(const ApiEndpoint& ep) {
  auto ctx = std::make_shared<SslCtxPtr>(make_tls_client(ep.ca_file, ep.cert_file, ep.key_file));
  HttpTarget target;
  target.address = url_address(ep.url);
  target.tls = ctx->get();
  target.tls_host = ep.url.host == "localhost" ? "127.0.0.1" : ep.url.host;
  return [ctx, target](const HttpRequest& request, const HttpLimits& limits) {
    return http_exchange(target, format_http_request(request), limits);
  };
}

}  // namespace kb::installer
