#include "installer/etcd_members.h"

#include <algorithm>
#include <arpa/inet.h>
#include <thread>
#include <type_traits>

#include "base/error.h"
#include "base/file_io.h"
#include "base/hash.h"
#include "base/text_escape.h"
#include "bundles/path_policy.h"
#include "installer/checked_json.h"
#include "installer/live_fs.h"

namespace kb::installer {

namespace {

using std::chrono::milliseconds;
using json = nlohmann::json;

constexpr size_t kMaxMembershipFile = 64 * 1024;
constexpr size_t kMaxMembers = 64;
constexpr auto kPromoteDeadline = std::chrono::seconds(120);
constexpr auto kRetryDeadline = std::chrono::seconds(60);  // list, add, remove on a transient error
constexpr auto kFirstPause = milliseconds(250);
constexpr auto kMaxPause = milliseconds(5000);
constexpr const char* kEtcdUnit = "etcd.service";

using checked::good_name;
using checked::is_url;
using checked::only_keys;
using checked::refuse;
using checked::str;

std::string seconds_text(std::chrono::steady_clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", std::chrono::duration<double>(d).count());
  return buf;
}

// The spec of the installed file, checked against its manifest entry; nullopt when the bundle has none.
std::optional<EtcdMembershipSpec> live_spec(Run& r, const Manifest& m) {
  const ManifestEntry* e = find_file_entry(m, kEtcdMembershipFile);
  if (!e) return std::nullopt;
  const std::string path = r.layout.live(kEtcdMembershipFile);
  std::string bytes = read_file(path);
  if (sha256_hex(bytes) != e->sha256)
    throw Error(path + ": differs from what serial " + std::to_string(m.serial) + " installs; run `kbundle-installer verify` (drift)");
  return parse_etcd_membership(bytes, path, m);
}

bool data_dir_empty(Run& r) {
  const std::string dir = r.layout.live(kEtcdDataDirPath);
  if (inspect(dir, false).kind == LiveState::Kind::Absent) return true;
  return list_dir(dir).empty();
}

const EtcdMemberInfo* by_peer(const std::vector<EtcdMemberInfo>& v, const std::string& url) {
  for (const auto& m : v)
    if (std::find(m.peer_urls.begin(), m.peer_urls.end(), url) != m.peer_urls.end()) return &m;
  return nullptr;
}

std::vector<std::string> client_urls_except(const EtcdMembershipSpec& s, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& p : s.members)
    if (p.name != name) out.push_back(p.client_url);
  return out;
}

void pause(const Hooks& h, milliseconds d) {
  if (h.sleep) h.sleep(d);
  else std::this_thread::sleep_for(d);
}

// Runs `call` until it succeeds or fails for good, pausing with back-off after a transient error
// (etcd refuses membership changes for a few seconds after a member (re)connects).
template <typename Call>
auto with_retries(Run& r, const std::string& what, Call call) {
  const auto start = r.hooks.monotonic();
  auto wait = kFirstPause;
  while (true) {
    auto result = call();
    const EtcdCallError* e = nullptr;
    if constexpr (std::is_same_v<decltype(result), std::optional<EtcdCallError>>) e = result ? &*result : nullptr;
    else e = std::get_if<EtcdCallError>(&result);
    if (!e || !e->transient() || r.hooks.monotonic() + wait >= start + kRetryDeadline) return result;
    r.say("etcd: " + what + ": " + e->detail + "; retrying in " + seconds_text(wait));
    pause(r.hooks, wait);
    wait = std::min(kMaxPause, wait * 2);
  }
}

// Writes the epoch unless etcd already holds this one or a newer one.
void record_epoch(Run& r, EtcdGateway& gw, uint64_t epoch) {
  auto stored = gw.epoch();
  if (auto* e = std::get_if<EtcdCallError>(&stored)) {
    r.warn("etcd: cannot read the membership epoch (" + e->detail + "); not recorded");
    return;
  }
  if (std::get<uint64_t>(stored) >= epoch) return;
  if (auto e = gw.put_epoch(epoch)) r.warn("etcd: cannot record membership epoch " + std::to_string(epoch) + ": " + e->detail);
}

}  // namespace

EtcdMembershipSpec parse_etcd_membership(const std::string& bytes, const std::string& where, const Manifest& m) {
  if (bytes.size() > kMaxMembershipFile) refuse(where, "the file", "larger than " + std::to_string(kMaxMembershipFile) + " bytes");
  json j = json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object()) refuse(where, "the top level", "not a JSON object");
  only_keys(j, {"version", "epoch", "name", "peer_url", "initial_cluster", "initial_cluster_state", "members", "remove"}, where, "");
  if (!j.contains("version") || j["version"] != 1) refuse(where, "version", "must be 1 (this installer reads version 1)");
  EtcdMembershipSpec s;
  if (!j.contains("epoch") || !j["epoch"].is_number_unsigned() || j["epoch"].get<uint64_t>() == 0)
    refuse(where, "epoch", "not a positive integer");
  s.epoch = j["epoch"].get<uint64_t>();
  s.name = str(j, "name", where, "");
  if (s.name != m.node_name) refuse(where, "name", "'" + escape_text(s.name) + "' is not this bundle's node " + m.node_name);
  s.peer_url = str(j, "peer_url", where, "");
  if (!is_url(s.peer_url, 2380)) refuse(where, "peer_url", "'" + escape_text(s.peer_url) + "' is not https://IPv4:2380");
  s.initial_cluster = str(j, "initial_cluster", where, "");
  s.initial_cluster_state = str(j, "initial_cluster_state", where, "");
  if (s.initial_cluster_state != "new" && s.initial_cluster_state != "existing")
    refuse(where, "initial_cluster_state", "'" + escape_text(s.initial_cluster_state) + "' is neither new nor existing");
  // --initial-cluster: NAME=https://IP:2380,... with this node in it.
  bool self_listed = false;
  for (size_t start = 0; start <= s.initial_cluster.size();) {
    size_t comma = s.initial_cluster.find(',', start);
    std::string item = s.initial_cluster.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t eq = item.find('=');
    if (eq == std::string::npos || !good_name(item.substr(0, eq)) || !is_url(item.substr(eq + 1), 2380))
      refuse(where, "initial_cluster", "'" + escape_text(item) + "' is not NAME=https://IPv4:2380");
    self_listed |= item == s.name + "=" + s.peer_url;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (!self_listed) refuse(where, "initial_cluster", "does not list this node as " + s.name + "=" + s.peer_url);

  auto peers = [&](const char* key, bool client) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_array()) refuse(where, key, "missing or not a list");
    if (it->size() > kMaxMembers) refuse(where, key, "more than " + std::to_string(kMaxMembers) + " members");
    std::vector<EtcdPeer> out;
    for (size_t i = 0; i < it->size(); ++i) {
      const json& p = (*it)[i];
      const std::string place = std::string(key) + "[" + std::to_string(i) + "].";
      if (!p.is_object()) refuse(where, place, "not a JSON object");
      if (client) only_keys(p, {"name", "peer_url", "client_url"}, where, place);
      else only_keys(p, {"name", "peer_url"}, where, place);
      EtcdPeer e{str(p, "name", where, place), str(p, "peer_url", where, place), client ? str(p, "client_url", where, place) : ""};
      if (!good_name(e.name)) refuse(where, place + "name", "'" + escape_text(e.name) + "' is not a node name");
      if (!is_url(e.peer_url, 2380)) refuse(where, place + "peer_url", "'" + escape_text(e.peer_url) + "' is not https://IPv4:2380");
      if (client && !is_url(e.client_url, 2379))
        refuse(where, place + "client_url", "'" + escape_text(e.client_url) + "' is not https://IPv4:2379");
      out.push_back(std::move(e));
    }
    return out;
  };
  s.members = peers("members", true);
  s.remove = peers("remove", false);
  if (std::none_of(s.members.begin(), s.members.end(), [&](const EtcdPeer& p) { return p.name == s.name && p.peer_url == s.peer_url; }))
    refuse(where, "members", "does not list this node (" + s.name + " " + s.peer_url + ")");
  for (const auto& rm : s.remove) {
    if (rm.peer_url == s.peer_url) refuse(where, "remove", "names this node's own peer URL " + s.peer_url);
    for (const auto& p : s.members)
      if (p.peer_url == rm.peer_url) refuse(where, "remove", rm.peer_url + " is also in members");
  }
  // The TLS files the gateway calls use must be files this bundle installs.
  for (const char* f : {kEtcdCaCertFile, kEtcdPeerCertFile, kEtcdPeerKeyFile})
    if (!find_file_entry(m, f)) refuse(where, "the bundle", std::string(f) + " is not a file it installs (the etcd membership step needs it)");
  return s;
}

void check_staged_etcd_membership(const Manifest& m, const std::string& staged_files, const std::string& bundle) {
  if (!find_file_entry(m, kEtcdMembershipFile)) return;
  parse_etcd_membership(read_file(staged_files + kEtcdMembershipFile), bundle + ": " + kEtcdMembershipFile, m);
}

EtcdGateway::EtcdGateway(const Hooks& hooks, const std::string& root, const std::vector<std::string>& client_urls,
                         milliseconds step_timeout)
    : hooks_(hooks), step_timeout_(step_timeout) {
  auto live = [&](const char* p) { return root == "/" || root.empty() ? std::string(p) : root + p; };
  for (const auto& u : client_urls) {
    try {
      ApiEndpoint ep{parse_http_url(u, true), live(kEtcdCaCertFile), live(kEtcdPeerCertFile), live(kEtcdPeerKeyFile)};
      endpoints_.emplace_back(u, hooks.api_client(ep));
    } catch (const std::exception& e) {
      unusable_.push_back(u + ": " + e.what());
    }
  }
}

std::variant<json, EtcdCallError> EtcdGateway::call(const std::string& path, const json& body) {
  EtcdCallError last;
  last.detail = "no member to ask";
  for (const auto& s : unusable_) last.detail = s;
  for (const auto& [url, send] : endpoints_) {
    HttpRequest q;
    q.method = "POST";
    q.target = path;
    q.host = url.substr(8);
    q.headers = {{"User-Agent", "kbundle-installer"}, {"Content-Type", "application/json"}, {"Accept", "application/json"}};
    q.body = body.dump();
    HttpLimits limits;
    limits.step_timeout = step_timeout_;
    limits.max_response = 1 << 20;
    HttpResult res = send(q, limits);
    if (const auto* f = std::get_if<HttpFailure>(&res)) {
      last = {url + ": " + describe_http_failure(*f), -1};
      continue;  // the next member may answer
    }
    const auto& resp = std::get<HttpResponse>(res);
    json j = json::parse(resp.body, nullptr, false);
    if (resp.status == 200 && j.is_object()) return j;
    EtcdCallError e;
    std::string message = j.is_object() && j.contains("message") && j["message"].is_string() ? j["message"].get<std::string>()
                                                                                             : resp.body.substr(0, 200);
    if (j.is_object() && j.contains("code") && j["code"].is_number_integer()) e.grpc_code = j["code"].get<int>();
    e.detail = url + ": HTTP " + std::to_string(resp.status) + ": " + escape_text(message);
    // etcd answered: its verdict stands (another member would say the same), except a member
    // without a leader (code 14, unavailable), which another member may not be.
    if (e.grpc_code != 14 && resp.status != 503) return e;
    last = e;
  }
  return last;
}

namespace {

std::vector<std::string> strings(const json& j, const char* key) {
  std::vector<std::string> out;
  if (j.contains(key) && j[key].is_array())
    for (const auto& s : j[key])
      if (s.is_string()) out.push_back(s.get<std::string>());
  return out;
}

EtcdMemberInfo member_of(const json& m) {
  EtcdMemberInfo i;
  if (m.contains("ID") && m["ID"].is_string()) i.id = m["ID"].get<std::string>();
  else if (m.contains("ID") && m["ID"].is_number_unsigned()) i.id = std::to_string(m["ID"].get<uint64_t>());
  i.name = m.value("name", "");
  i.peer_urls = strings(m, "peerURLs");
  i.client_urls = strings(m, "clientURLs");
  i.learner = m.value("isLearner", false);
  return i;
}

bool good_id(const std::string& id) {
  return !id.empty() && id.size() <= 20 && id.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

std::variant<std::vector<EtcdMemberInfo>, EtcdCallError> EtcdGateway::list() {
  auto r = call("/v3/cluster/member/list", json::object());
  if (auto* e = std::get_if<EtcdCallError>(&r)) return *e;
  const json& j = std::get<json>(r);
  if (!j.contains("members") || !j["members"].is_array()) return EtcdCallError{"member list: the answer has no members", -1};
  std::vector<EtcdMemberInfo> out;
  for (const auto& m : j["members"]) {
    if (!m.is_object()) continue;
    EtcdMemberInfo i = member_of(m);
    if (!good_id(i.id)) return EtcdCallError{"member list: a member without a valid ID", -1};
    out.push_back(std::move(i));
  }
  return out;
}

std::variant<EtcdMemberInfo, EtcdCallError> EtcdGateway::add_learner(const std::string& peer_url) {
  auto r = call("/v3/cluster/member/add", {{"peerURLs", {peer_url}}, {"isLearner", true}});
  if (auto* e = std::get_if<EtcdCallError>(&r)) return *e;
  const json& j = std::get<json>(r);
  if (!j.contains("member") || !j["member"].is_object()) return EtcdCallError{"member add: the answer has no member", -1};
  EtcdMemberInfo i = member_of(j["member"]);
  if (!good_id(i.id)) return EtcdCallError{"member add: the answer has no valid member ID", -1};
  return i;
}

std::optional<EtcdCallError> EtcdGateway::promote(const std::string& id) {
  auto r = call("/v3/cluster/member/promote", {{"ID", id}});
  if (auto* e = std::get_if<EtcdCallError>(&r)) return *e;
  return std::nullopt;
}

std::optional<EtcdCallError> EtcdGateway::remove(const std::string& id) {
  auto r = call("/v3/cluster/member/remove", {{"ID", id}});
  if (auto* e = std::get_if<EtcdCallError>(&r)) {
    if (e->grpc_code == 5) return std::nullopt;  // "member not found": already removed
    return *e;
  }
  return std::nullopt;
}

std::variant<uint64_t, EtcdCallError> EtcdGateway::epoch() {
  auto r = call("/v3/kv/range", {{"key", base64_encode(kEtcdEpochKey)}});
  if (auto* e = std::get_if<EtcdCallError>(&r)) return *e;
  const json& j = std::get<json>(r);
  if (!j.contains("kvs") || !j["kvs"].is_array() || j["kvs"].empty()) return uint64_t{0};
  const json& kv = j["kvs"][0];
  auto value = kv.contains("value") && kv["value"].is_string() ? base64_decode(kv["value"].get<std::string>()) : std::nullopt;
  if (!value || value->empty() || value->size() > 19 || value->find_first_not_of("0123456789") != std::string::npos)
    return EtcdCallError{std::string(kEtcdEpochKey) + " in etcd does not hold a decimal epoch", -1};
  return std::stoull(*value);
}

std::optional<EtcdCallError> EtcdGateway::put_epoch(uint64_t epoch) {
  auto r = call("/v3/kv/put", {{"key", base64_encode(kEtcdEpochKey)}, {"value", base64_encode(std::to_string(epoch))}});
  if (auto* e = std::get_if<EtcdCallError>(&r)) return *e;
  return std::nullopt;
}

EtcdJoin etcd_join_before_start(Run& r, const Manifest& m) {
  EtcdJoin join;
  auto spec = live_spec(r, m);
  if (!spec || spec->initial_cluster_state != "existing") return join;
  if (!data_dir_empty(r)) {
    r.say("etcd: " + std::string(kEtcdDataDirPath) + " holds data: " + spec->name + " is already a member; no join");
    return join;
  }
  join.spec = *spec;
  join.active = true;
  const EtcdMembershipSpec& s = join.spec;
  EtcdGateway gw(r.hooks, r.opt.root, client_urls_except(s, s.name));
  auto listed = with_retries(r, "member list", [&] { return gw.list(); });
  if (auto* e = std::get_if<EtcdCallError>(&listed))
    throw Error("etcd join of " + s.name + ": cannot list the members through any existing member (" + e->detail +
                "); nothing was added");
  auto members = std::get<std::vector<EtcdMemberInfo>>(listed);
  // A stale bundle (a later generation changed membership since) never joins: it could bring back
  // a member that generation removed.
  auto stored = with_retries(r, "read the epoch", [&] { return gw.epoch(); });
  if (auto* e = std::get_if<EtcdCallError>(&stored))
    throw Error("etcd join of " + s.name + ": cannot read the membership epoch (" + e->detail + "); nothing was added");
  if (std::get<uint64_t>(stored) > s.epoch)
    throw Error("etcd join of " + s.name + ": the cluster is at membership epoch " + std::to_string(std::get<uint64_t>(stored)) +
                ", newer than this bundle's " + std::to_string(s.epoch) + ": the bundle is stale; apply the node's bundle "
                "from the latest gen; nothing was added");

  // A replacement: the same name with another peer URL is the machine this one replaces.
  for (const auto& mem : members) {
    if (mem.name != s.name || by_peer({mem}, s.peer_url)) continue;
    r.say("etcd: removing the replaced member " + mem.name + " (" + (mem.peer_urls.empty() ? "?" : mem.peer_urls[0]) + ", ID " +
          mem.id + ") before adding " + s.peer_url);
    if (auto e = with_retries(r, "remove " + mem.id, [&] { return gw.remove(mem.id); }))
      throw Error("etcd join of " + s.name + ": cannot remove the replaced member " + mem.id + " (" + e->detail + "); nothing was added");
    members.erase(std::remove_if(members.begin(), members.end(), [&](const EtcdMemberInfo& x) { return x.id == mem.id; }),
                  members.end());
    break;
  }

  if (const EtcdMemberInfo* self = by_peer(members, s.peer_url)) {
    // Added before (an earlier apply that stopped, or by hand): nothing to add.
    join.member_id = self->id;
    join.needs_promote = self->learner;
    r.say("etcd: " + s.name + " (" + s.peer_url + ") is already a member (ID " + self->id + (self->learner ? ", learner" : "") +
          "); not added again");
    return join;
  }

  // The cluster must be what this node's --initial-cluster says, less this node: etcd refuses to
  // start a joining member otherwise, so say it now, before anything changes.
  std::vector<std::string> want, have;
  for (size_t start = 0;;) {
    size_t comma = s.initial_cluster.find(',', start);
    std::string item = s.initial_cluster.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    std::string url = item.substr(item.find('=') + 1);
    if (url != s.peer_url) want.push_back(url);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  for (const auto& mem : members)
    for (const auto& u : mem.peer_urls) have.push_back(u);
  std::sort(want.begin(), want.end());
  std::sort(have.begin(), have.end());
  if (want != have) {
    auto list = [](const std::vector<std::string>& v) {
      std::string t;
      for (const auto& x : v) t += (t.empty() ? "" : ", ") + x;
      return t;
    };
    throw Error("etcd join of " + s.name + ": the cluster's members are [" + list(have) + "], but this bundle's --initial-cluster "
                "expects [" + list(want) + "] besides this node; apply the previous generation on every control-plane node "
                "first (a removal it lists may not have run), then apply this bundle again; nothing was added");
  }
  auto added = with_retries(r, "member add", [&] { return gw.add_learner(s.peer_url); });
  if (auto* e = std::get_if<EtcdCallError>(&added))
    throw Error("etcd join of " + s.name + ": member add (learner) failed: " + e->detail + "; nothing was added");
  join.added = true;
  join.member_id = std::get<EtcdMemberInfo>(added).id;
  join.needs_promote = true;
  r.say("etcd: added " + s.name + " (" + s.peer_url + ") as a learner, ID " + join.member_id);
  r.hooks.faults.reached("etcd-after-member-add");
  return join;
}

std::string etcd_join_after_start(Run& r, EtcdJoin& join) {
  if (!join.active) return "";
  const EtcdMembershipSpec& s = join.spec;
  EtcdGateway gw(r.hooks, r.opt.root, client_urls_except(s, s.name));
  if (join.needs_promote) {
    const auto start = r.hooks.monotonic();
    const auto deadline = start + kPromoteDeadline;
    auto wait = kFirstPause;
    int attempts = 0;
    while (true) {
      ++attempts;
      auto e = gw.promote(join.member_id);
      if (!e) break;
      auto now = r.hooks.monotonic();
      if (now + wait >= deadline)
        return "etcd: promoting learner " + s.name + " (ID " + join.member_id + ") failed for " + seconds_text(now - start) + " (" +
               std::to_string(attempts) + " attempts; last: " + e->detail + ")";
      r.say("etcd: promote " + s.name + ": " + e->detail + "; retrying in " + seconds_text(wait));
      pause(r.hooks, wait);
      wait = std::min(kMaxPause, wait * 2);
    }
    join.needs_promote = false;
    r.say("etcd: promoted " + s.name + " to a voting member after " + std::to_string(attempts) + " attempt" + (attempts == 1 ? "" : "s"));
  }
  record_epoch(r, gw, s.epoch);
  return "";
}

void etcd_abandon_join(Run& r, const EtcdJoin& join) {
  if (!join.active) return;
  // Only the member this apply added is removed: one found already there (an earlier apply cut
  // short) stays, and the next apply finds it again.
  if (join.added) {
    EtcdGateway gw(r.hooks, r.opt.root, client_urls_except(join.spec, join.spec.name));
    if (auto e = gw.remove(join.member_id))
      r.warn("etcd: could not remove the member this apply added (ID " + join.member_id + "): " + e->detail +
             "; remove it by hand: etcdctl member remove " + join.member_id);
    else
      r.say("etcd: removed the member this apply added (ID " + join.member_id + ")");
  }
  // The directory was empty when the join began and the rollback must find it so; its data belongs
  // to a member that is gone or never became a voter: the next join starts from an empty directory.
  try {
    r.services().stop(kEtcdUnit);
  } catch (const std::exception& e) {
    r.warn(std::string("etcd: cannot stop etcd.service: ") + e.what());
  }
  const std::string dir = r.layout.live(kEtcdDataDirPath);
  if (inspect(dir, false).kind == LiveState::Kind::Dir)
    for (const auto& name : list_dir(dir)) remove_tree(dir + "/" + name);
}

ExitCode etcd_remove_after_commit(Run& r, const Manifest& m) {
  std::optional<EtcdMembershipSpec> spec;
  try {
    spec = live_spec(r, m);
  } catch (const std::exception& e) {
    r.warn(std::string("etcd: ") + e.what());
    return ExitCode::EtcdRemoveFailed;
  }
  if (!spec || spec->remove.empty()) return ExitCode::Ok;
  if (r.opt.no_systemd) {
    r.say("etcd: member removal skipped (--no-systemd: etcd was not seen healthy)");
    return ExitCode::Ok;
  }
  const EtcdMembershipSpec& s = *spec;
  // This node's own etcd first: it just passed the health gate.
  std::vector<std::string> urls;
  for (const auto& p : s.members)
    if (p.name == s.name) urls.insert(urls.begin(), p.client_url);
    else urls.push_back(p.client_url);
  EtcdGateway gw(r.hooks, r.opt.root, urls);
  auto fail = [&](const std::string& why) {
    r.warn("etcd: " + why + "; the node stays at serial " + std::to_string(m.serial) +
           " (nothing was rolled back); apply the same bundle again to retry");
    r.report["etcd_remove"] = why;
    return ExitCode::EtcdRemoveFailed;
  };
  auto stored = with_retries(r, "read the epoch", [&] { return gw.epoch(); });
  if (auto* e = std::get_if<EtcdCallError>(&stored)) return fail("cannot read the membership epoch: " + e->detail);
  if (std::get<uint64_t>(stored) > s.epoch) {
    r.say("etcd: the cluster is at membership epoch " + std::to_string(std::get<uint64_t>(stored)) + ", newer than this bundle's " +
          std::to_string(s.epoch) + ": its removals are stale and skipped");
    return ExitCode::Ok;
  }
  for (const auto& rm : s.remove) {
    auto listed = with_retries(r, "member list", [&] { return gw.list(); });
    if (auto* e = std::get_if<EtcdCallError>(&listed)) return fail("cannot list the members: " + e->detail);
    const auto& members = std::get<std::vector<EtcdMemberInfo>>(listed);
    const EtcdMemberInfo* target = by_peer(members, rm.peer_url);
    if (!target) {
      r.say("etcd: member " + rm.name + " (" + rm.peer_url + ") is not in the cluster (already removed)");
      continue;
    }
    // Quorum: the voting members that stay and have started must be a quorum of the voters now.
    size_t voters = 0, staying = 0;
    for (const auto& mem : members) {
      if (mem.learner) continue;
      ++voters;
      if (mem.id != target->id && !mem.name.empty()) ++staying;
    }
    if (!target->learner && staying < voters / 2 + 1)
      return fail("not removing " + rm.name + " (" + rm.peer_url + "): " + std::to_string(staying) + " started voting members would "
                  "stay of " + std::to_string(voters) + ", below the quorum of " + std::to_string(voters / 2 + 1));
    if (auto e = with_retries(r, "remove " + target->id, [&] { return gw.remove(target->id); })) return fail("cannot remove member " + rm.name + " (" + rm.peer_url + "): " + e->detail);
    r.say("etcd: removed member " + rm.name + " (" + rm.peer_url + ", ID " + target->id + ")");
    r.hooks.faults.reached("etcd-after-member-remove");
  }
  record_epoch(r, gw, s.epoch);
  return ExitCode::Ok;
}

}  // namespace kb::installer
