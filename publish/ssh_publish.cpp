// kbundle publish --to ssh | scp://USER@HOST[:PORT]/DIR: SFTP over SSH through libcurl (libssh2).
// Every file goes to DIR/.NAME.part (created 0600), then is renamed over DIR/NAME and its size
// checked; the host key is checked before any authentication or transfer.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <ostream>
#include <sstream>

#include "base/text_escape.h"
#include "base/atomic_file.h"
#include "base/error.h"
#include "base/hash.h"
#include "curl/easy.h"
#include "topology/apply_order.h"
#include "topology/topology.h"
#include "publish/progress.h"
#include "publish/rollout.h"
#include "publish/ssh_exec.h"
#include "publish/ssh_target.h"
#include "publish/targets.h"

namespace kb {

namespace fs = std::filesystem;

namespace {

const char* key_type_name(curl_khtype t) {
  switch (t) {
    case CURLKHTYPE_ED25519: return "ssh-ed25519";
    case CURLKHTYPE_RSA: return "ssh-rsa";
    case CURLKHTYPE_ECDSA: return "ecdsa-sha2-nistp256";
    case CURLKHTYPE_DSS: return "ssh-dss";
    default: return "unknown";
  }
}

// What the host presented and how it compared with known_hosts.
struct HostKeyCheck {
  bool accept_new = false;
  enum class Result { NotChecked, Ok, Missing, Mismatch } result = Result::NotChecked;
  std::string type, blob_b64, fingerprint;  // fingerprint: "SHA256:..." as ssh-keygen -l prints it
};

int check_host_key(CURL*, const curl_khkey*, const curl_khkey* found, enum curl_khmatch match, void* user) {
  auto* c = static_cast<HostKeyCheck*>(user);
  std::string raw;
  if (found->len) raw.assign(found->key, found->len);
  c->type = key_type_name(found->keytype);
  c->blob_b64 = found->len ? base64_encode(raw) : found->key;
  if (found->len) {
    Sha256 h;
    h.update(raw);
    const auto md = h.digest();
    std::string f = base64_encode(std::string_view(reinterpret_cast<const char*>(md.data()), md.size()));
    while (f.ends_with('=')) f.pop_back();
    c->fingerprint = "SHA256:" + f;
  }
  switch (match) {
    case CURLKHMATCH_OK: c->result = HostKeyCheck::Result::Ok; return CURLKHSTAT_FINE;
    case CURLKHMATCH_MISMATCH: c->result = HostKeyCheck::Result::Mismatch; return CURLKHSTAT_REJECT;
    case CURLKHMATCH_MISSING:
      c->result = HostKeyCheck::Result::Missing;
      return c->accept_new ? CURLKHSTAT_FINE : CURLKHSTAT_REJECT;
    default: return CURLKHSTAT_REJECT;
  }
}

size_t read_file_cb(char* buffer, size_t size, size_t count, void* user) {
  return std::fread(buffer, 1, size * count, static_cast<FILE*>(user));
}

struct ProgressSink {
  Progress* bar;
  uint64_t total;
};
int progress_cb(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t ulnow) {
  auto* p = static_cast<ProgressSink*>(user);
  if (ulnow > 0) p->bar->update(static_cast<uint64_t>(ulnow), p->total);
  return 0;
}

// Double-quoted for libcurl's SFTP quote commands.
std::string quote_path(const std::string& p) {
  std::string out = "\"";
  for (char c : p) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string home() {
  const char* h = std::getenv("HOME");
  return h && *h ? h : "/root";
}

std::string known_hosts_name(const SshTarget& t) {
  return t.port == 22 ? t.host : "[" + t.host + "]:" + std::to_string(t.port);
}

// Appends one line to known_hosts atomically (temp file, fsync, rename), keeping its mode.
void add_known_host(const std::string& path, const std::string& line) {
  std::string content;
  mode_t mode = 0600;
  if (fs::exists(path)) {
    content = read_file(path);
    if (!content.empty() && !content.ends_with('\n')) content += '\n';
    mode = static_cast<mode_t>(fs::status(path).permissions() & fs::perms::mask);
  } else {
    make_dirs(fs::path(path).parent_path().string(), 0700);
  }
  write_file_atomic(path, content + line + "\n", mode);
}

class SftpSession {
 public:
  SftpSession(const PublishOptions& o, const SshTarget& t, HostKeyCheck& check)
      : o_(o), t_(t), check_(check) {
    identity_ = o.identity.empty() ? home() + "/.ssh/id_ed25519" : o.identity;
    known_hosts_ = o.known_hosts.empty() ? home() + "/.ssh/known_hosts" : o.known_hosts;
    if (!fs::exists(identity_))
      throw Error(identity_ + ": no such private key (hint: --identity FILE, an ed25519 key made with ssh-keygen -t ed25519)");
  }
  SftpSession(const SftpSession&) = delete;
  SftpSession& operator=(const SftpSession&) = delete;

  const std::string& known_hosts() const { return known_hosts_; }
  const std::string& identity() const { return identity_; }

  // Whether DIR/NAME already holds these bytes: its size matches and the digest file that the last
  // upload left beside it (DIR/.NAME.sha256, written after the file was complete) names this sha256.
  // A node verifies every bundle it applies anyway; this only saves sending the same bytes again.
  bool holds(const Artifact& a) {
    const std::string final_path = t_.dir + "/" + a.name;
    std::string digest;
    setup(t_.dir + "/." + a.name + ".sha256");
    curl_.set(CURLOPT_WRITEFUNCTION, append_cb);
    curl_.set(CURLOPT_WRITEDATA, &digest);
    curl::Result r = curl::perform(curl_);
    if (r.code == CURLE_REMOTE_FILE_NOT_FOUND) return false;
    if (!r.ok()) fail(r, "reading the digest beside " + final_path);
    if (digest != a.sha256 + "\n") return false;
    return remote_size(final_path) == static_cast<curl_off_t>(a.size);
  }

  // Uploads one file as DIR/NAME (0600), through DIR/.NAME.part and a rename, then its digest file.
  void upload(const Artifact& a, bool progress, std::ostream& err) {
    FILE* f = std::fopen(a.path.c_str(), "rb");
    if (!f) throw_errno(a.path);
    send(f, a.name, a.size, progress, err);
    std::string digest = a.sha256 + "\n";
    FILE* d = ::fmemopen(digest.data(), digest.size(), "rb");
    if (!d) throw_errno("fmemopen");
    send(d, "." + a.name + ".sha256", digest.size(), false, err);
  }

  // Whether `path` exists on the host (SFTP stat; nothing written).
  bool exists(const std::string& path) { return remote_size(path) >= 0; }

  int retries() const { return retries_; }
  std::string where() const { return t_.user + "@" + known_hosts_name(t_) + ":"; }

 private:
  static size_t append_cb(char* data, size_t size, size_t count, void* user) {
    auto* s = static_cast<std::string*>(user);
    if (s->size() + size * count > 4096) return 0;  // a digest file is 65 bytes
    s->append(data, size * count);
    return size * count;
  }

  curl_off_t remote_size(const std::string& path) {
    setup(path);
    curl_.set(CURLOPT_NOBODY, 1L);
    curl::Result r = curl::perform(curl_);
    if (r.code == CURLE_REMOTE_FILE_NOT_FOUND) return -1;
    if (!r.ok()) fail(r, "size check of " + path);
    curl_off_t size = -1;
    curl_easy_getinfo(curl_.get(), CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &size);
    return size;
  }

  // Sends `f` (closed here) as DIR/NAME, 0600, through DIR/.NAME.part and a rename; checks the size that landed.
  void send(FILE* f, const std::string& name, uint64_t bytes, bool progress, std::ostream& err) {
    const std::string final_path = t_.dir + "/" + name, part = t_.dir + "/." + name + ".part";
    Progress bar(err, progress, name);
    ProgressSink sink{&bar, bytes};
    curl::Slist pre({"*rm " + quote_path(part)});
    curl::Slist post({"*rm " + quote_path(final_path), "rename " + quote_path(part) + " " + quote_path(final_path)});
    curl::Result r;
    for (int attempt = 0; attempt < 3; ++attempt) {
      std::rewind(f);
      setup(part);
      curl_.set(CURLOPT_UPLOAD, 1L);
      curl_.set(CURLOPT_READFUNCTION, read_file_cb);
      curl_.set(CURLOPT_READDATA, f);
      curl_.set(CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(bytes));
      curl_.set(CURLOPT_NEW_FILE_PERMS, 0600L);
      curl_.set(CURLOPT_NEW_DIRECTORY_PERMS, 0700L);
      curl_.set(CURLOPT_FTP_CREATE_MISSING_DIRS, static_cast<long>(CURLFTP_CREATE_DIR));
      curl_.set(CURLOPT_QUOTE, pre.get());
      curl_.set(CURLOPT_POSTQUOTE, post.get());
      curl_.set(CURLOPT_XFERINFOFUNCTION, progress_cb);
      curl_.set(CURLOPT_XFERINFODATA, &sink);
      curl_.set(CURLOPT_NOPROGRESS, 0L);
      r = curl::perform(curl_);
      if (!transient(r.code)) break;
      retries_++;
    }
    std::fclose(f);
    if (!r.ok()) fail(r, "upload of " + name + " to " + final_path);
    // What landed has the size we sent.
    curl_off_t size = remote_size(final_path);
    if (size != static_cast<curl_off_t>(bytes))
      throw Error(where() + final_path + ": " + std::to_string(size) + " bytes after the upload, " + name + " has " +
                  std::to_string(bytes));
  }

  static bool transient(CURLcode rc) {
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_SEND_ERROR ||
           rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING;
  }

  void setup(const std::string& remote_path) {
    curl_.reset();  // keeps the connection
    std::string host = t_.host.find(':') != std::string::npos ? "[" + t_.host + "]" : t_.host;
    std::string path;
    for (char c : remote_path) {
      if (std::isalnum(static_cast<unsigned char>(c)) || std::string_view("/-._~").find(c) != std::string_view::npos) {
        path += c;
      } else {
        char buf[4];
        std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
        path += buf;
      }
    }
    url_ = "sftp://" + host + ":" + std::to_string(t_.port) + path;
    curl_.set(CURLOPT_URL, url_.c_str());
    curl_.set(CURLOPT_PROTOCOLS_STR, "sftp");
    curl_.set(CURLOPT_USERNAME, t_.user.c_str());
    curl_.set(CURLOPT_SSH_AUTH_TYPES, static_cast<long>(CURLSSH_AUTH_PUBLICKEY));
    curl_.set(CURLOPT_SSH_PRIVATE_KEYFILE, identity_.c_str());
    public_key_ = fs::exists(identity_ + ".pub") ? identity_ + ".pub" : "";
    curl_.set(CURLOPT_SSH_PUBLIC_KEYFILE, public_key_.c_str());
    if (!o_.host_fingerprint.empty()) {
      fingerprint_ = o_.host_fingerprint.substr(7);  // after "SHA256:"
      curl_.set(CURLOPT_SSH_HOST_PUBLIC_KEY_SHA256, fingerprint_.c_str());
    } else {
      curl_.set(CURLOPT_SSH_KNOWNHOSTS, known_hosts_.c_str());
      curl_.set(CURLOPT_SSH_KEYFUNCTION, check_host_key);
      curl_.set(CURLOPT_SSH_KEYDATA, &check_);
    }
    curl_.set(CURLOPT_CONNECTTIMEOUT, 10L);
    curl_.set(CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_.set(CURLOPT_LOW_SPEED_TIME, 30L);
  }

  [[noreturn]] void fail(const curl::Result& r, const std::string& what) {
    const std::string at = "ssh " + known_hosts_name(t_) + ": ";
    using R = HostKeyCheck::Result;
    if (check_.result == R::Mismatch)
      throw Error(at + "REFUSED: the host key (" + check_.type + " " + check_.fingerprint + ") does not match " +
                  known_hosts_ + " (hint: if the host was really reinstalled, ssh-keygen -R '" + known_hosts_name(t_) +
                  "' -f " + known_hosts_ + ", then check the new key)");
    if (check_.result == R::Missing && !check_.accept_new)
      throw Error(at + "unknown host: its key (" + check_.type + " " + check_.fingerprint + ") is not in " + known_hosts_ +
                  " (hint: compare it with ssh-keygen -lf on the host, then --host-fingerprint " + check_.fingerprint +
                  " or --accept-new)");
    const std::string& msg = r.error;
    if (r.code == CURLE_PEER_FAILED_VERIFICATION && !o_.host_fingerprint.empty())
      throw Error(at + "REFUSED: the host key is not " + o_.host_fingerprint + " (" + msg + ")");
    if (r.code == CURLE_LOGIN_DENIED)
      throw Error(at + "login as " + t_.user + " with " + identity_ + " denied (hint: is its .pub in the node's authorized_keys?)");
    throw Error(at + what + ": " + msg + (retries_ ? " (after retries)" : ""));
  }

  const PublishOptions& o_;
  const SshTarget& t_;
  HostKeyCheck& check_;
  curl::Easy curl_;
  std::string identity_, public_key_, known_hosts_, fingerprint_, url_;
  int retries_ = 0;
};

// With --accept-new, the key a host just presented (and the transfer accepted) goes into known_hosts
// once. Serialised: a worker batch uploads to several hosts at once.
void remember_new_host(const PublishOptions& o, const SftpSession& session, const SshTarget& t, HostKeyCheck& check,
                       std::ostream& err) {
  if (check.result != HostKeyCheck::Result::Missing || !o.accept_new) return;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  add_known_host(session.known_hosts(), known_hosts_name(t) + " " + check.type + " " + check.blob_b64);
  err << "kbundle: added " << known_hosts_name(t) << " (" << check.type << " " << check.fingerprint << ") to "
      << session.known_hosts() << "\n";
  check.result = HostKeyCheck::Result::Ok;
}

// Uploads `files` to t (skipping what it already holds unless --force): one line each to `out`
// (unless --json) and one record each in the returned list.
nlohmann::json upload_files(const PublishOptions& o, const SshTarget& t, SftpSession& session, HostKeyCheck& check,
                            const std::vector<const Artifact*>& files, bool progress, std::ostream& out,
                            std::ostream& err) {
  nlohmann::json uploaded = nlohmann::json::array();
  for (const Artifact* a : files) {
    auto start = std::chrono::steady_clock::now();
    if (!o.force && session.holds(*a)) {
      uploaded.push_back({{"name", a->name}, {"size", a->size}, {"sha256", a->sha256}, {"status", "unchanged"}});
      if (!o.json) out << "unchanged  " << session.where() << t.dir << "/" << a->name << "\n";
    } else {
      session.upload(*a, progress, err);
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      uploaded.push_back({{"name", a->name}, {"size", a->size}, {"sha256", a->sha256}, {"seconds", seconds}, {"status", "uploaded"}});
      if (!o.json) {
        char line[96];
        std::snprintf(line, sizeof line, " (%llu bytes, 0600, %.2f s, size verified)",
                      static_cast<unsigned long long>(a->size), seconds);
        out << "uploaded   " << session.where() << t.dir << "/" << a->name << line << "\n";
      }
    }
    remember_new_host(o, session, t, check, err);
  }
  return uploaded;
}

// What goes to a node: its bundle (every bundle for an scp:// target), the key, the installer.
std::vector<const Artifact*> files_for(const PublishSet& set, const SshTarget& t) {
  std::vector<const Artifact*> files;
  for (const auto& b : set.bundles)
    if (t.node.empty() || b.node == t.node) files.push_back(&b);
  files.push_back(&set.trust_key);
  if (set.installer) files.push_back(&*set.installer);
  return files;
}

// The installer as the node command runs it: the published one, installed at --remote-installer.
std::string node_installer(const PublishOptions& o, const PublishSet& set) {
  return set.installer ? o.remote_installer : "kbundle-installer";
}
std::string install_step(const PublishOptions& o, const PublishSet& set) {
  return set.installer ? "install -D -m 0755 kbundle-installer " + shell_quote(o.remote_installer) : "";
}

// Where the installer keeps the installed generation's manifest (installer/layout.h): its presence
// is what "installed" means to the rollout's first-install probe.
constexpr const char* kInstalledManifest = "/var/lib/kbundle/current/manifest.json";

// The rollout's nodes over SSH: SFTP (libcurl) for the probe and the upload, libssh2 for the
// installer, pinned to the host key the SFTP connection verified.
class SshRolloutNodes : public RolloutNodes {
 public:
  SshRolloutNodes(const PublishOptions& o, const PublishSet& set, const std::vector<SshTarget>& targets,
                  nlohmann::json& list, std::ostream& out, std::ostream& err)
      : o_(o), set_(set), list_(list), out_(out), err_(err) {
    for (const auto& t : targets) nodes_[t.node].target = t;
  }

  bool installed(const std::string& node) override {
    Node& n = nodes_.at(node);
    HostKeyCheck check;
    check.accept_new = o_.accept_new;
    SftpSession session(o_, n.target, check);
    bool found = session.exists(kInstalledManifest);
    remember(n, session, check);
    return found;
  }

  void upload(const std::string& node) override {
    Node& n = nodes_.at(node);
    HostKeyCheck check;
    check.accept_new = o_.accept_new;
    SftpSession session(o_, n.target, check);
    std::ostringstream lines;
    nlohmann::json j{{"node", node}, {"host", n.target.host}, {"port", n.target.port}, {"user", n.target.user},
                     {"dir", n.target.dir}};
    j["files"] = upload_files(o_, n.target, session, check, files_for(set_, n.target), false, lines, err_);
    j["retries"] = session.retries();
    remember(n, session, check);
    std::lock_guard<std::mutex> lock(mu_);
    out_ << lines.str() << std::flush;
    list_.push_back(j);
  }

  ExecResult apply(const std::string& node) override {
    Node& n = nodes_.at(node);
    const Artifact* bundle = nullptr;
    for (const auto& b : set_.bundles)
      if (b.node == node) bundle = &b;
    if (!bundle) throw Error(node + ": no bundle");
    // --json: the installer's last line says "unchanged" for nothing to do, and its error.
    const std::string flags = "--json" + (o_.apply_flags.empty() ? "" : " " + o_.apply_flags);
    const std::string cmd = node_command(set_, *bundle, n.target.dir, install_step(o_, set_), node_installer(o_, set_), flags);
    return ssh_exec(n.target, n.identity, fingerprint(n), cmd, std::chrono::seconds(600));
  }

  ExecResult health(const std::string& node) override {
    Node& n = nodes_.at(node);
    // --apply-flags select the installation apply used (--root, --no-systemd, --node): health looks at that one.
    const std::string flags = node_flags(o_.apply_flags, node);
    return ssh_exec(n.target, n.identity, fingerprint(n),
                    shell_quote(node_installer(o_, set_)) + " health" + (flags.empty() ? "" : " " + flags),
                    std::chrono::seconds(600));
  }

 private:
  struct Node {
    SshTarget target;
    std::string identity, fingerprint;  // set once SFTP has verified the host
  };
  void remember(Node& n, const SftpSession& session, const HostKeyCheck& check) {
    n.identity = session.identity();
    if (!check.fingerprint.empty()) n.fingerprint = check.fingerprint;
  }
  std::string fingerprint(const Node& n) const {
    // The host key the upload just verified, and no other.
    std::string fp = !o_.host_fingerprint.empty() ? o_.host_fingerprint : n.fingerprint;
    if (fp.empty()) throw Error("ssh " + known_hosts_name(n.target) + ": --apply: the host key was not recorded");
    return fp;
  }

  const PublishOptions& o_;
  const PublishSet& set_;
  nlohmann::json& list_;
  std::ostream& out_;
  std::ostream& err_;
  std::map<std::string, Node> nodes_;  // filled before any thread starts; each thread uses its own entry
  std::mutex mu_;
};

}  // namespace

void publish_ssh(const PublishOptions& o, const PublishSet& set, nlohmann::json& summary, std::ostream& out,
                 std::ostream& err, bool progress) {
  curl::global_init();
  if (!o.host_fingerprint.empty() && (!o.host_fingerprint.starts_with("SHA256:") || o.host_fingerprint.size() < 20))
    throw PublishUsageError("--host-fingerprint " + o.host_fingerprint + ": expected SHA256:<base64> as ssh-keygen -lf prints it");
  if (!o.host_fingerprint.empty() && o.accept_new)
    throw PublishUsageError("--host-fingerprint and --accept-new exclude each other");

  const bool rollout = o.to == "ssh";
  std::vector<SshTarget> targets;
  std::optional<Topology> topology;
  if (o.to == "ssh") {
    if (o.topology_path.empty()) throw PublishUsageError("--to ssh needs --topology (the nodes' addresses)");
    TopologyResult t = load_topology(o.topology_path);
    for (const auto& d : t.diagnostics) err << d.format() << "\n";
    if (!t.ok()) throw Error(o.topology_path + ": invalid (see above)");
    topology = std::move(t.topology);
    targets = ssh_targets_from_topology(*topology, set, o);
  } else {
    targets.push_back(parse_scp_url(o.to, o.ssh_user, o.remote_dir));
  }
  if (!o.host_fingerprint.empty() && targets.size() > 1)
    throw PublishUsageError("--host-fingerprint checks one host; --to ssh has " + std::to_string(targets.size()) +
                            " (use known_hosts, or --node NAME)");

  summary["target"] = o.to;
  auto& list = summary["targets"] = nlohmann::json::array();
  if (o.apply && rollout) {
    // A rolling apply (docs/rollout.md): the topology's order, gates, stop at the first failure.
    std::vector<std::string> names;
    for (const auto& b : set.bundles) names.push_back(b.node);
    const auto order = apply_order(*topology, static_cast<size_t>(o.max_unavailable > 0 ? o.max_unavailable : 1), names);
    std::set<std::string> control_plane;
    for (const auto& n : topology->nodes)
      if (n.is_control_plane()) control_plane.insert(n.name);
    SshRolloutNodes nodes(o, set, targets, list, o.json ? err : out, err);
    RolloutReport report = run_rollout(order, control_plane, nodes, o.json ? err : out);
    summary["rollout"] = report.to_json();
    if (!o.json) report.print(out);
    if (!report.ok()) {
      if (o.json) out << summary.dump(2) << "\n";
      throw Error("rollout stopped at " + report.failure +
                  " (the nodes after it were not contacted; see docs/rollout.md)");
    }
    return;
  }
  for (const auto& t : targets) {
    HostKeyCheck check;
    check.accept_new = o.accept_new;
    SftpSession session(o, t, check);
    std::vector<const Artifact*> files = files_for(set, t);
    nlohmann::json j{{"node", t.node}, {"host", t.host}, {"port", t.port}, {"user", t.user}, {"dir", t.dir}};
    j["files"] = upload_files(o, t, session, check, files, progress, out, err);
    j["retries"] = session.retries();
    // What to run there: check, pin and apply (the installer copied beside the bundle).
    std::vector<nlohmann::json> commands;
    for (const Artifact* a : files) {
      if (a->node.empty()) continue;
      std::string cmd = node_command(set, *a, t.dir, install_step(o, set), node_installer(o, set), o.apply_flags);
      std::string ssh = "ssh " + (t.port != 22 ? "-p " + std::to_string(t.port) + " " : std::string()) + t.user + "@" +
                        t.host + " " + shell_quote(cmd);
      nlohmann::json c{{"node", a->node}, {"serial", a->serial}, {"command", cmd}, {"ssh", ssh}};
      if (!o.json) out << "\n# " << a->node << " (serial " << a->serial << "):\n" << ssh << "\n";
      if (o.apply) {
        // The host key the upload just verified, and no other.
        const std::string fp = !o.host_fingerprint.empty() ? o.host_fingerprint : check.fingerprint;
        if (fp.empty()) throw Error("ssh " + known_hosts_name(t) + ": --apply: the host key was not recorded");
        ExecResult r = ssh_exec(t, session.identity(), fp, cmd, std::chrono::seconds(600));
        c["applyExitStatus"] = r.exit_status;
        c["applyOutput"] = r.output;
        if (!o.json) {
          out << "# " << a->node << ": kbundle-installer exited " << r.exit_status << "\n";
          for (size_t pos = 0; pos < r.output.size();) {
            size_t nl = r.output.find('\n', pos);
            if (nl == std::string::npos) nl = r.output.size();
            out << "  | " << r.output.substr(pos, nl - pos) << "\n";
            pos = nl + 1;
          }
        }
        if (r.exit_status != 0) {
          if (o.json) out << summary.dump(2) << "\n";
          throw Error(a->node + " (" + known_hosts_name(t) + "): the installer exited " + std::to_string(r.exit_status) +
                      ": " + (r.output.size() > 400 ? r.output.substr(r.output.size() - 400) : r.output) +
                      " (nothing more is applied; see docs/publish.md)");
        }
      }
      commands.push_back(c);
    }
    j["commands"] = commands;
    list.push_back(j);
  }
}

}  // namespace kb
