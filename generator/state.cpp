#include "generator/state.h"


// Crash safety of the first run: a marker file (.init-incomplete) is written before anything
// else and state.json is written last, then the marker is removed. open() returns only once
// state.json exists, so nothing made by an interrupted init was ever used; the next run sees the
// marker without state.json, discards the leftovers and initializes again. A directory without
// state.json that holds anything else is refused, never written to.

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "base/atomic_file.h"
#include "base/dir_lock.h"
#include "base/error.h"
#include "base/hash.h"
#include "bundles/bundle_error.h"
#include "bundles/signing.h"

namespace kb {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int kFormat = 1;
constexpr mode_t kDirMode = 0700;
constexpr mode_t kFileMode = 0600;
constexpr const char* kLockFile = DirLock::kFileName;
constexpr const char* kInitMarker = ".init-incomplete";
constexpr const char* kRolloverFile = "keys/rollover.json";
constexpr const char* kNextSuffix = ".next";  // a rotation's new files before its commit point
constexpr const char* kManifestsDir = "manifests";
constexpr const char* kRotationDir = "rotation";  // a rotation's new material (generator/rotation.h)
constexpr const char* kRotationsKey = "rotations";  // in state.json: the rotations in progress
// In state.json after a commit that removed rotation files: a crash before their unlink leaves them
// behind, and this list tells such leftovers from a file put there by hand.
constexpr const char* kRotationRemovedKey = "rotationFilesRemoved";

// Every file whose replacement would silently change whom the cluster trusts: pinned in
// state.json by its sha256 when it is made (kbundle never adopts a swapped CA or key).
const std::vector<std::string>& pinned_files() {
  static const std::vector<std::string> files = {
      "ca/kubernetes-ca.crt",      "ca/kubernetes-ca.key",      "ca/etcd-ca.crt",          "ca/etcd-ca.key",
      "ca/front-proxy-ca.crt",     "ca/front-proxy-ca.key",     "keys/service-account.key", "keys/service-account.pub",
      "keys/encryption.key",       "keys/bundle-signing.key",   "keys/bundle-signing.pub"};
  return files;
}
// A rotation file's name below rotation/: [a-z0-9.-]+, starting with a letter or digit (no path,
// no hidden or temp file, no ".next").
bool valid_rotation_rel(const std::string& rel) {
  if (rel.empty() || rel.size() > 64 || rel[0] == '.' || rel[0] == '-') return false;
  if (rel.size() >= 5 && rel.compare(rel.size() - 5, 5, kNextSuffix) == 0) return false;
  return std::all_of(rel.begin(), rel.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'; });
}
bool is_rotation_pin(const std::string& rel) {
  const std::string prefix = std::string(kRotationDir) + "/";
  return rel.rfind(prefix, 0) == 0 && valid_rotation_rel(rel.substr(prefix.size()));
}

// What a rotation replaces (kRolloverFile exists only after the first rotation).
const std::vector<std::string>& rotated_files() {
  static const std::vector<std::string> files = {"keys/bundle-signing.key", "keys/bundle-signing.pub", kRolloverFile};
  return files;
}

struct CaSpec {
  CaName which;
  const char* name;
};
constexpr std::array<CaSpec, 3> kCas{{{CaName::Kubernetes, "kubernetes-ca"},
                                      {CaName::Etcd, "etcd-ca"},
                                      {CaName::FrontProxy, "front-proxy-ca"}}};

size_t ca_index(CaName which) {
  switch (which) {
    case CaName::Kubernetes: return 0;
    case CaName::Etcd: return 1;
    case CaName::FrontProxy: return 2;
  }
  throw Error("unknown CA");
}

[[noreturn]] void damaged(const std::string& file, const std::string& why) {
  throw Error(file + ": damaged state: " + why +
              "; nothing was changed (restore it from a backup, or use another --state directory)");
}

bool exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(path, ec));
}

// Reads a state file that must be there; a missing one is damage, not a fresh start.
std::string read_required(const std::string& path, const std::string& why_missing = "is missing") {
  if (!exists(path)) damaged(path, why_missing);
  return read_file(path);
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw Error("cannot draw random bytes from OpenSSL");
  return out;
}

// Decoded length of standard padded base64, or nullopt when it is not base64.
std::optional<size_t> base64_decoded_size(const std::string& text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  size_t pad = 0;
  for (auto it = text.rbegin(); it != text.rend() && *it == '='; ++it) ++pad;
  return static_cast<size_t>(n) - pad;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// A random version-4 UUID: identifies the cluster in every bundle manifest.
std::string new_cluster_id() {
  std::string b = random_bytes(16);
  b[6] = static_cast<char>((b[6] & 0x0F) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3F) | 0x80);
  std::string hex = to_hex(reinterpret_cast<const uint8_t*>(b.data()), b.size());
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20);
}

json parse_json_file(const std::string& path) {
  std::string text = read_required(path);
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) damaged(path, "is not valid JSON");
  if (!j.is_object()) damaged(path, "is not a JSON object");
  return j;
}

// Entries a directory without state.json may hold: the lock, the binary cache, temp files of atomic writes and,
// after an interrupted init (marker present), what that init had written so far.
// A temp file of an atomic write (base/atomic_file.h) that a crash left behind.
bool is_temp_file(const std::string& name) { return name.size() > 1 && name[0] == '.' && name.find(".tmp-") != std::string::npos; }

bool is_leftover(const std::string& name, bool resuming) {
  if (name == kLockFile || name == kInitMarker) return true;
  // The binary cache `kbundle fetch` fills by default (<state>/cache) before any gen or aws up.
  if (name == "cache") return true;
  if (is_temp_file(name)) return true;
  return resuming && (name == "ca" || name == "keys" || name == "issued.json" || name == "serials.json" ||
                      name == kManifestsDir);
}

// Refuses a directory that has no state.json but holds something that is not ours.
// Returns true when an interrupted init is to be redone.
bool check_fresh(const std::string& dir) {
  bool resuming = exists(dir + "/" + kInitMarker);
  std::vector<std::string> foreign;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (!is_leftover(name, resuming)) foreign.push_back(name);
  }
  if (ec) throw Error(dir + ": cannot list: " + ec.message());
  if (!foreign.empty()) {
    std::string list;
    for (size_t i = 0; i < foreign.size() && i < 5; ++i) list += (i ? ", " : "") + foreign[i];
    if (foreign.size() > 5) list += ", ...";
    damaged(dir + "/state.json", "is missing, but " + dir + " is not empty (" + list +
                                     "), so it is not a kbundle state directory or its state.json was lost");
  }
  return resuming;
}

// The lock that keeps two runs out of one state directory; its file may exist in a fresh directory.
std::unique_ptr<DirLock> lock_state_dir(const std::string& dir) {
  return std::make_unique<DirLock>(dir, kFileMode, [&dir](const std::string& pid) {
    return Error("state directory " + dir + " is in use by another kbundle run (pid " +
                 (pid.empty() ? std::string("unknown") : pid) + "); wait for it to finish and try again");
  });
}

void write_secret(const std::string& path, const std::string& content) { write_file_atomic(path, content, kFileMode); }

// Creates every piece of a new state; state.json last (see the comment at the top).
void initialize(const std::string& dir, const Topology& topology, bool resuming, std::time_t now) {
  const Cluster& c = topology.cluster;
  write_secret(dir + "/" + kInitMarker, c.name + "\n");
  if (resuming) {
    remove_tree(dir + "/ca");
    remove_tree(dir + "/keys");
    remove_tree(dir + "/issued.json");
    remove_tree(dir + "/serials.json");
    remove_tree(dir + "/" + kManifestsDir);
  }
  if (::chmod(dir.c_str(), kDirMode) != 0) throw_errno("cannot chmod " + dir);
  make_dirs(dir + "/ca", kDirMode);
  make_dirs(dir + "/keys", kDirMode);

  for (const auto& spec : kCas) {
    CertificateAuthority ca = make_ca(spec.name, spec.name, c.key_type, c.ca_validity_days, now);
    write_secret(dir + "/ca/" + spec.name + ".key", ca.key_pem);
    write_secret(dir + "/ca/" + spec.name + ".crt", ca.cert_pem);
  }
  PkeyPtr sa = generate_key(c.key_type);
  write_secret(dir + "/keys/service-account.key", private_key_pem(sa.get()));
  write_secret(dir + "/keys/service-account.pub", public_key_pem(sa.get()));
  write_secret(dir + "/keys/encryption.key", base64_encode(random_bytes(32)) + "\n");
  PkeyPtr signing = generate_ed25519_key();
  write_secret(dir + "/keys/bundle-signing.key", private_key_pem(signing.get()));
  write_secret(dir + "/keys/bundle-signing.pub", public_key_pem(signing.get()));
  write_secret(dir + "/issued.json", "{}\n");
  write_secret(dir + "/serials.json", "{}\n");

  json pins = json::object();
  for (const auto& rel : pinned_files()) pins[rel] = sha256_hex(read_file(dir + "/" + rel));
  json state = {{"format", kFormat}, {"cluster", c.name}, {"clusterId", new_cluster_id()}, {"pins", pins}};
  write_secret(dir + "/state.json", state.dump(2) + "\n");
  if (::unlink((dir + "/" + kInitMarker).c_str()) != 0) throw_errno("cannot remove " + dir + "/" + kInitMarker);
  fsync_dir(dir);
}

// A private key file and its public key file that must belong together.
PkeyPtr load_key_pair(const std::string& key_path, const std::string& pub_path, std::string& key_pem,
                      std::string& pub_pem) {
  key_pem = read_required(key_path);
  pub_pem = read_required(pub_path);
  PkeyPtr key, pub;
  try {
    key = parse_private_key(key_pem, key_path);
  } catch (const Error&) {
    damaged(key_path, "is not a valid PEM private key");
  }
  try {
    pub = parse_public_key(pub_pem, pub_path);
  } catch (const Error&) {
    damaged(pub_path, "is not a valid PEM public key");
  }
  if (EVP_PKEY_eq(key.get(), pub.get()) != 1) damaged(pub_path, "does not match " + key_path);
  return key;
}

// The pins of state.json: an object naming exactly the pinned files (and the rollover chain
// after a rotation), each a sha256. Absent in a state made before pins existed.
void check_pins_shape(const json& pins, const std::string& state_path) {
  if (!pins.is_object()) damaged(state_path, "\"pins\" is not an object");
  for (const auto& [rel, pin] : pins.items()) {
    bool known = rel == kRolloverFile || is_rotation_pin(rel) ||
                 std::find(pinned_files().begin(), pinned_files().end(), rel) != pinned_files().end();
    if (!known) damaged(state_path, "\"pins\" names an unknown file \"" + rel + "\"");
    if (!pin.is_string() || !is_lower_hex(pin.get<std::string>(), 64))
      damaged(state_path, "the pin of \"" + rel + "\" is not 64 lowercase hex");
  }
  for (const auto& rel : pinned_files())
    if (!pins.contains(rel)) damaged(state_path, "\"pins\" has no pin for \"" + rel + "\"");
}

// A file must hash to its pin; anything else was put there by hand.
void check_pin(const std::string& dir, const std::string& rel, const json& pins, const std::string& state_path) {
  const std::string path = dir + "/" + rel;
  std::string have = sha256_hex(read_required(path));
  std::string want = pins[rel].get<std::string>();
  if (have != want)
    damaged(path, "replaced or changed: its sha256 is " + have + ", but " + state_path + " pinned " + want +
                      " when it was made; kbundle never adopts a swapped CA or key (every certificate and serial "
                      "would change), and only `kbundle rotate` changes a pin");
}

// Every file that may have a ".next" beside it after a commit cut short: the pinned files, the
// rollover chain, every pinned rotation file and every rotation/<rel>.next there is.
std::vector<std::string> next_candidates(const std::string& dir, const json* pins) {
  std::set<std::string> out(pinned_files().begin(), pinned_files().end());
  out.insert(rotated_files().begin(), rotated_files().end());
  if (pins)
    for (const auto& [rel, pin] : pins->items())
      if (is_rotation_pin(rel)) out.insert(rel);
  std::error_code ec;
  const std::string rdir = dir + "/" + kRotationDir;
  if (exists(rdir))
    for (const auto& entry : fs::directory_iterator(rdir, ec)) {
      std::string name = entry.path().filename().string();
      const size_t n = std::strlen(kNextSuffix);
      if (name.size() > n && name.compare(name.size() - n, n, kNextSuffix) == 0)
        out.insert(std::string(kRotationDir) + "/" + name.substr(0, name.size() - n));
    }
  return {out.begin(), out.end()};
}

// An interrupted rotate or rotation commit: a ".next" file that matches its pin was committed
// (state.json holds its pin), so it replaces the old file; one that does not was never committed
// and goes. Rotation files the last commit removed (listed in state.json, no longer pinned) go too.
void finish_rotation(const std::string& dir, const json* pins, const json* removed) {
  std::set<std::string> dirs;
  for (const auto& rel : next_candidates(dir, pins)) {
    const std::string path = dir + "/" + rel, next = path + kNextSuffix;
    if (!exists(next)) continue;
    if (pins && pins->contains(rel) && sha256_hex(read_file(next)) == (*pins)[rel].get<std::string>()) {
      if (::rename(next.c_str(), path.c_str()) != 0) throw_errno("cannot rename " + next);
    } else if (::unlink(next.c_str()) != 0) {
      throw_errno("cannot remove " + next);
    }
    dirs.insert(fs::path(path).parent_path().string());
  }
  if (removed && removed->is_array())
    for (const auto& r : *removed) {
      if (!r.is_string() || !is_rotation_pin(r.get<std::string>())) continue;
      const std::string rel = r.get<std::string>(), path = dir + "/" + rel;
      if ((pins && pins->contains(rel)) || !exists(path)) continue;
      if (::unlink(path.c_str()) != 0) throw_errno("cannot remove " + path);
      dirs.insert(fs::path(path).parent_path().string());
    }
  for (const auto& d : dirs) fsync_dir(d);
}

// The "rotations" array of state.json: each a known kind and name, its phase in range, no name twice.
std::vector<Rotation> parse_rotations(const json& state, const std::string& state_path) {
  std::vector<Rotation> out;
  if (!state.contains(kRotationsKey)) return out;
  const json& arr = state[kRotationsKey];
  if (!arr.is_array()) damaged(state_path, "\"rotations\" is not an array");
  for (const auto& r : arr) {
    const std::string where = "\"rotations\"[" + std::to_string(out.size()) + "]";
    if (!r.is_object() || !r.contains("kind") || !r["kind"].is_string() || !r.contains("name") ||
        !r["name"].is_string() || !r.contains("phase") || !r["phase"].is_number_integer() ||
        !r.contains("phaseStartedAt") || !r["phaseStartedAt"].is_string() || !r.contains("generated") ||
        !r["generated"].is_boolean())
      damaged(state_path, where + " needs kind, name, phase, phaseStartedAt and generated");
    Rotation rot;
    rot.name = r["name"].get<std::string>();
    try {
      rot.kind = rotation_kind_of(rot.name);
    } catch (const Error& e) {
      damaged(state_path, where + ": " + e.what());
    }
    if (r["kind"].get<std::string>() != to_string(rot.kind))
      damaged(state_path, where + ": kind \"" + r["kind"].get<std::string>() + "\" does not fit name \"" + rot.name + "\"");
    const int64_t phase = r["phase"].get<int64_t>();
    if (phase < 1 || phase > last_phase(rot.kind))
      damaged(state_path, where + ": phase " + std::to_string(phase) + " is not in 1.." +
                              std::to_string(last_phase(rot.kind)));
    rot.phase = static_cast<int>(phase);
    rot.phase_started_at = r["phaseStartedAt"].get<std::string>();
    rot.generated = r["generated"].get<bool>();
    for (const auto& o : out)
      if (o.name == rot.name) damaged(state_path, where + ": a second rotation of \"" + rot.name + "\"");
    out.push_back(std::move(rot));
  }
  return out;
}

json rotations_json(const std::vector<Rotation>& rotations) {
  json arr = json::array();
  for (const auto& r : rotations)
    arr.push_back({{"kind", to_string(r.kind)},
                   {"name", r.name},
                   {"phase", r.phase},
                   {"phaseStartedAt", r.phase_started_at},
                   {"generated", r.generated}});
  return arr;
}

// A CA made of a cert and key file pair; damage names the file.
std::unique_ptr<CertificateAuthority> load_ca(const std::string& name, const std::string& crt_path,
                                              const std::string& crt_pem, const std::string& key_path,
                                              const std::string& key_pem) {
  auto ca = std::make_unique<CertificateAuthority>();
  ca->name = name;
  ca->cert_pem = crt_pem;
  ca->key_pem = key_pem;
  try {
    ca->cert = parse_cert(ca->cert_pem, crt_path);
  } catch (const Error&) {
    damaged(crt_path, "is not a valid PEM certificate");
  }
  try {
    ca->key = parse_private_key(ca->key_pem, key_path);
  } catch (const Error&) {
    damaged(key_path, "is not a valid PEM private key");
  }
  if (!key_matches_cert(ca->key.get(), ca->cert.get())) damaged(key_path, "does not match " + crt_path);
  return ca;
}

}  // namespace

struct State::Impl {
  struct Leaf {
    std::string cert_pem, key_pem, issuer;
  };
  struct Serial {
    uint64_t serial = 0;
    std::string digest;
    std::string created_at;  // when this serial was assigned; keeps unchanged bundles byte-identical
  };

  std::unique_ptr<DirLock> lock;  // held for the State's lifetime
  json state_doc;                 // state.json as read (rewritten when pins change)
  std::time_t now = 0;            // the run's clock (State::open)
  std::array<CertificateAuthority, 3> cas;
  KeyType leaf_key_type = KeyType::EcdsaP256;
  int leaf_validity_days = 365;
  int renew_before_days = 30;

  std::mutex mu;  // guards everything below
  std::map<std::string, Leaf> issued;
  std::set<std::string> fresh_this_run;  // ids issued by this run
  std::map<std::string, Serial> serials;
  bool issued_dirty = false, serials_dirty = false;
  std::map<std::string, std::string> reissued;  // id -> reason, this run
  std::map<std::string, Manifest> manifests;    // by node
  std::set<std::string> manifests_dirty, manifests_forgotten;
  bool read_only = false;

  // Rotations (generator/rotation.h): the record and the files as this run sees them, and what
  // commit() has to write ("rotation/<rel>" or a pinned file -> content) or remove.
  std::vector<Rotation> rotations;
  std::map<std::string, std::string> rotation_files;  // rel below rotation/ -> content
  std::map<std::string, std::string> pending_writes;
  std::set<std::string> pending_removals;  // "rotation/<rel>"
  bool rotations_dirty = false;
  std::array<std::unique_ptr<CertificateAuthority>, 3> rotation_cas;  // parsed new CAs, by ca_index

  void load_rotation_files(const std::string& dir, const json& state, const std::string& state_path);
  void refresh_rotation_cas(const std::string& dir);

  void load(const std::string& dir, const Topology& topology, State& s);
  void load_manifests(const std::string& dir, const std::string& cluster, const std::string& cluster_id);
  void init_in_memory(const Topology& topology, State& s);
};

// manifests/<node>.json: each must be a canonical manifest of this cluster, for the node its name says.
// Temp files of an interrupted atomic write are ignored; anything else there is refused by name.
void State::Impl::load_manifests(const std::string& dir, const std::string& cluster, const std::string& cluster_id) {
  const std::string mdir = dir + "/" + kManifestsDir;
  if (!exists(mdir)) return;
  std::error_code ec;
  if (!fs::is_directory(fs::symlink_status(mdir, ec))) damaged(mdir, "is not a directory");
  std::vector<std::string> names;  // sorted: the same damage is reported the same way every time
  for (const auto& entry : fs::directory_iterator(mdir, ec)) names.push_back(entry.path().filename().string());
  if (ec) throw Error(mdir + ": cannot list: " + ec.message());
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    const std::string path = mdir + "/" + name;
    if (is_temp_file(name)) continue;
    const std::string suffix = ".json";
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0 ||
        !fs::is_regular_file(fs::symlink_status(path, ec)))
      damaged(path, "is not a manifest kbundle wrote (only manifests/<node>.json files belong there); remove it");
    const std::string node = name.substr(0, name.size() - suffix.size());
    const auto size = fs::file_size(path, ec);
    if (ec || size > kMaxManifestSize) damaged(path, "is larger than any manifest (" + std::to_string(size) + " bytes)");
    std::string text = read_file(path);
    // Written with a trailing newline; the manifest itself is canonical JSON.
    if (!text.empty() && text.back() == '\n') text.pop_back();
    Manifest m;
    try {
      m = parse_manifest(text);
    } catch (const BundleError& e) {
      damaged(path, std::string("is not a valid bundle manifest (") + e.what() + ")");
    }
    if (m.cluster_name != cluster || m.cluster_id != cluster_id)
      damaged(path, "is a manifest of cluster '" + m.cluster_name + "' (id " + m.cluster_id + "), not of this state's '" +
                        cluster + "' (id " + cluster_id + ")");
    if (m.node_name != node) damaged(path, "is the manifest of node '" + m.node_name + "', not of '" + node + "'");
    manifests.emplace(node, std::move(m));
  }
}

void State::Impl::load(const std::string& dir, const Topology& topology, State& s) {
  // state.json first: a foreign state is reported as such, not as damage.
  const std::string state_path = dir + "/state.json";
  json state = parse_json_file(state_path);
  if (!state.contains("format") || !state["format"].is_number_integer())
    damaged(state_path, "has no \"format\" number");
  if (state["format"].get<int64_t>() != kFormat)
    damaged(state_path, "has format " + state["format"].dump() + ", but this kbundle understands format " +
                            std::to_string(kFormat) + " only");
  if (!state.contains("cluster") || !state["cluster"].is_string() || state["cluster"].get<std::string>().empty())
    damaged(state_path, "has no \"cluster\" name");
  if (!state.contains("clusterId") || !state["clusterId"].is_string() ||
      state["clusterId"].get<std::string>().empty())
    damaged(state_path, "has no \"clusterId\"");
  std::string stored_cluster = state["cluster"].get<std::string>();
  if (stored_cluster != topology.cluster.name) {
    std::string source = topology.source_path.empty() ? "the topology" : topology.source_path;
    throw Error(state_path + ": this state belongs to cluster '" + stored_cluster + "', but " + source +
                " is for cluster '" + topology.cluster.name + "'; nothing was changed. Use another --state "
                "directory for '" + topology.cluster.name + "'");
  }
  s.cluster_id_ = state["clusterId"].get<std::string>();

  // The pins, before any file is believed: a swapped CA or key is refused here, by name.
  const bool legacy = !state.contains("pins");
  if (!legacy) check_pins_shape(state["pins"], state_path);
  if (state.contains(kRotationRemovedKey)) {
    const json& removed = state[kRotationRemovedKey];
    if (!removed.is_array() || !std::all_of(removed.begin(), removed.end(), [](const json& r) {
          return r.is_string() && is_rotation_pin(r.get<std::string>());
        }))
      damaged(state_path, std::string("\"") + kRotationRemovedKey + "\" is not a list of rotation/<name> files");
  }
  if (read_only) {
    for (const auto& rel : rotated_files())
      if (exists(dir + "/" + rel + kNextSuffix))
        throw Error(dir + "/" + rel + kNextSuffix + ": an interrupted `kbundle rotate signing-key` is not finished; "
                    "`kbundle plan` writes nothing, so run `kbundle gen` (or the rotation again) to finish it first");
    for (const auto& rel : next_candidates(dir, legacy ? nullptr : &state["pins"]))
      if (exists(dir + "/" + rel + kNextSuffix))
        throw Error(dir + "/" + rel + kNextSuffix + ": an interrupted commit of `kbundle rotate` or `kbundle gen` is "
                    "not finished; `kbundle plan` writes nothing, so run `kbundle gen` to finish it first");
  } else {
    finish_rotation(dir, legacy ? nullptr : &state["pins"],
                    state.contains(kRotationRemovedKey) ? &state[kRotationRemovedKey] : nullptr);
  }
  if (!legacy) {
    for (const auto& rel : pinned_files()) check_pin(dir, rel, state["pins"], state_path);
    if (state["pins"].contains(kRolloverFile)) check_pin(dir, kRolloverFile, state["pins"], state_path);
  }
  rotations = parse_rotations(state, state_path);
  load_rotation_files(dir, state, state_path);
  if (exists(dir + "/" + kRolloverFile) && (legacy || !state["pins"].contains(kRolloverFile)))
    damaged(dir + "/" + kRolloverFile, std::string("is not pinned in ") + state_path +
                                           ", so it was not made by `kbundle rotate signing-key`; remove it");

  // The CAs are kept whatever the topology's key type says now; only leaves follow it.
  for (const auto& spec : kCas) {
    std::string crt_path = dir + "/ca/" + spec.name + ".crt";
    std::string key_path = dir + "/ca/" + spec.name + ".key";
    std::string crt_pem = read_required(crt_path);
    std::string key_pem = read_required(key_path, "is missing, but its certificate " + crt_path + " is there");
    cas[ca_index(spec.which)] = std::move(*load_ca(spec.name, crt_path, crt_pem, key_path, key_pem));
  }

  load_key_pair(dir + "/keys/service-account.key", dir + "/keys/service-account.pub", s.sa_key_pem_, s.sa_pub_pem_);
  PkeyPtr signing = load_key_pair(dir + "/keys/bundle-signing.key", dir + "/keys/bundle-signing.pub",
                                  s.signing_key_pem_, s.signing_pub_pem_);
  if (EVP_PKEY_get_base_id(signing.get()) != EVP_PKEY_ED25519)
    damaged(dir + "/keys/bundle-signing.key", "is not an Ed25519 key");

  if (exists(dir + "/" + kRolloverFile)) {
    const std::string path = dir + "/" + kRolloverFile;
    try {
      s.rollover_ = parse_rollover_chain(read_file(path));
    } catch (const Error& e) {
      damaged(path, e.what());
    }
    if (s.rollover_.back().new_key_sha256 != key_fingerprint(signing.get()))
      damaged(path, "its last statement names key sha256:" + s.rollover_.back().new_key_sha256 +
                        ", not the signing key in keys/bundle-signing.key");
  }

  refresh_rotation_cas(dir);

  const std::string enc_path = dir + "/keys/encryption.key";
  s.encryption_key_b64_ = trim(read_required(enc_path));
  if (base64_decoded_size(s.encryption_key_b64_) != size_t{32})
    damaged(enc_path, "does not hold 32 bytes in base64");

  const std::string issued_path = dir + "/issued.json";
  const json issued_json = parse_json_file(issued_path);  // named: items() only refers to it
  for (const auto& [id, entry] : issued_json.items()) {
    if (!entry.is_object() || !entry.contains("cert") || !entry["cert"].is_string() || !entry.contains("key") ||
        !entry["key"].is_string())
      damaged(issued_path, "entry \"" + id + "\" has no cert and key");
    Leaf leaf{entry["cert"].get<std::string>(), entry["key"].get<std::string>(), entry.value("issuer", "")};
    issued.emplace(id, std::move(leaf));
  }

  const std::string serials_path = dir + "/serials.json";
  const json serials_json = parse_json_file(serials_path);
  for (const auto& [node, entry] : serials_json.items()) {
    if (!entry.is_object() || !entry.contains("serial") || !entry["serial"].is_number_unsigned() ||
        !entry.contains("digest") || !entry["digest"].is_string())
      damaged(serials_path, "entry \"" + node + "\" has no serial and digest");
    std::string created = entry.contains("createdAt") && entry["createdAt"].is_string() ? entry["createdAt"].get<std::string>() : "";
    serials.emplace(node, Serial{entry["serial"].get<uint64_t>(), entry["digest"].get<std::string>(), created});
  }

  load_manifests(dir, stored_cluster, s.cluster_id_);

  // A state made before pins existed: pin what is there now (it passed every check above).
  if (legacy && read_only)
    throw Error(state_path + ": made by an older kbundle without pins; `kbundle plan` writes nothing, so run "
                "`kbundle gen` once to pin its CA and key files, then plan again");
  if (legacy) {
    json pins = json::object();
    for (const auto& rel : pinned_files()) pins[rel] = sha256_hex(read_file(dir + "/" + rel));
    state["pins"] = pins;
    write_secret(state_path, state.dump(2) + "\n");
    s.note_ = state_path + ": made by an older kbundle without pins; pinned the sha256 of its " +
              std::to_string(pins.size()) + " CA and key files as they are now. From now on a replaced file is refused";
  }
  state_doc = state;

  leaf_key_type = topology.cluster.key_type;
  leaf_validity_days = topology.cluster.leaf_validity_days;
  renew_before_days = topology.cluster.renew_before_days;
}

// rotation/: every file there is pinned and matches its pin; every pinned one is there. Leftovers of
// a commit cut short were dealt with by finish_rotation() (plan, which may not remove them, skips them).
void State::Impl::load_rotation_files(const std::string& dir, const json& state, const std::string& state_path) {
  const std::string rdir = dir + "/" + kRotationDir;
  const json empty = json::object();
  const json& pins = state.contains("pins") ? state["pins"] : empty;
  std::set<std::string> removed;
  if (state.contains(kRotationRemovedKey) && state[kRotationRemovedKey].is_array())
    for (const auto& r : state[kRotationRemovedKey])
      if (r.is_string()) removed.insert(r.get<std::string>());
  if (exists(rdir)) {
    std::error_code ec;
    if (!fs::is_directory(fs::symlink_status(rdir, ec))) damaged(rdir, "is not a directory");
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(rdir, ec)) names.push_back(entry.path().filename().string());
    if (ec) throw Error(rdir + ": cannot list: " + ec.message());
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      const std::string rel = std::string(kRotationDir) + "/" + name, path = dir + "/" + rel;
      if (is_temp_file(name)) continue;
      if (pins.contains(rel)) {
        if (!fs::is_regular_file(fs::symlink_status(path, ec))) damaged(path, "is not a regular file");
        continue;
      }
      if (removed.count(rel)) continue;  // removed by the last commit (plan cannot unlink it)
      damaged(path, "is not pinned in " + state_path + ", so no `kbundle rotate` made it (a file put there by "
                    "hand or a foreign state); remove it, or restore the state from a backup");
    }
  }
  for (const auto& [rel, pin] : pins.items()) {
    if (!is_rotation_pin(rel)) continue;
    check_pin(dir, rel, pins, state_path);  // a missing or swapped file is refused by name
    rotation_files[rel.substr(std::strlen(kRotationDir) + 1)] = read_file(dir + "/" + rel);
  }
  // A CA rotation needs its new CA; other kinds check their own files (generator/rotation.h users).
  for (const auto& r : rotations) {
    if (r.kind != RotationKind::Ca) continue;
    for (const std::string& rel : {ca_rotation_cert_file(ca_by_name(r.name)), ca_rotation_key_file(ca_by_name(r.name))})
      if (!rotation_files.count(rel))
        damaged(state_path, "the rotation of " + r.name + " is in progress, but its file " + rdir + "/" + rel +
                                " is not pinned; restore the state from a backup");
  }
}

// The new CAs of the CA rotations in progress, parsed from the rotation files (damage names the file).
void State::Impl::refresh_rotation_cas(const std::string& dir) {
  for (const auto& spec : kCas) {
    auto& slot = rotation_cas[ca_index(spec.which)];
    const std::string crt = ca_rotation_cert_file(spec.which), key = ca_rotation_key_file(spec.which);
    bool rotating = std::any_of(rotations.begin(), rotations.end(),
                                [&](const Rotation& r) { return r.kind == RotationKind::Ca && r.name == spec.name; });
    auto c = rotation_files.find(crt), k = rotation_files.find(key);
    if (!rotating || c == rotation_files.end() || k == rotation_files.end()) {
      slot.reset();
      continue;
    }
    if (slot && slot->cert_pem == c->second && slot->key_pem == k->second) continue;
    const std::string rdir = dir + "/" + kRotationDir + "/";
    slot = load_ca(spec.name, rdir + crt, c->second, rdir + key, k->second);
  }
}

std::optional<std::string> read_signing_public_key(const std::string& dir, const std::string& cluster) {
  const std::string state_path = dir + "/state.json";
  if (!exists(state_path)) return std::nullopt;
  const json state = parse_json_file(state_path);
  if (!state.contains("cluster") || !state["cluster"].is_string()) damaged(state_path, "has no \"cluster\"");
  if (state["cluster"].get<std::string>() != cluster)
    throw Error(state_path + ": this state belongs to cluster '" + state["cluster"].get<std::string>() +
                "', not '" + cluster + "'; use the --state directory of cluster '" + cluster + "'");
  const std::string rel = "keys/bundle-signing.pub";
  std::string path = dir + "/" + rel;
  if (state.contains("pins")) {
    check_pins_shape(state["pins"], state_path);
    // A committed rotation whose rename was cut short: the pinned key is the ".next" file.
    const std::string next = path + kNextSuffix;
    if (exists(next) && sha256_hex(read_file(next)) == state["pins"][rel].get<std::string>()) path = next;
    else check_pin(dir, rel, state["pins"], state_path);
  }
  return read_required(path);
}

std::unique_ptr<State> State::blank(const std::string& dir_arg, std::time_t now) {
  std::string dir = dir_arg;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (dir.empty()) throw Error("state directory: empty path");

  std::unique_ptr<State> s(new State());
  s->impl_ = std::make_unique<Impl>();
  s->impl_->now = now;
  s->dir_ = dir;
  return s;
}

std::unique_ptr<State> State::open(const std::string& dir_arg, const Topology& topology, std::time_t now) {
  std::unique_ptr<State> s = blank(dir_arg, now);
  const std::string& dir = s->dir_;

  // Refuse a foreign directory before creating even the lock file in it.
  bool had_dir = exists(dir);
  if (had_dir && !exists(dir + "/state.json")) check_fresh(dir);
  if (!had_dir) make_dirs(dir, kDirMode);
  s->impl_->lock = lock_state_dir(dir);

  // Decide again under the lock: another run may have initialized meanwhile.
  if (!exists(dir + "/state.json")) {
    bool resuming = check_fresh(dir);
    initialize(dir, topology, resuming, now);
    s->created_ = true;
  }
  s->impl_->load(dir, topology, *s);
  return s;
}

// No state yet (plan before the first gen): what initialize() would make, in memory only.
void State::Impl::init_in_memory(const Topology& topology, State& s) {
  const Cluster& c = topology.cluster;
  for (const auto& spec : kCas) cas[ca_index(spec.which)] = make_ca(spec.name, spec.name, c.key_type, c.ca_validity_days, now);
  PkeyPtr sa = generate_key(c.key_type);
  s.sa_key_pem_ = private_key_pem(sa.get());
  s.sa_pub_pem_ = public_key_pem(sa.get());
  s.encryption_key_b64_ = base64_encode(random_bytes(32));
  PkeyPtr signing = generate_ed25519_key();
  s.signing_key_pem_ = private_key_pem(signing.get());
  s.signing_pub_pem_ = public_key_pem(signing.get());
  s.cluster_id_ = new_cluster_id();
  leaf_key_type = c.key_type;
  leaf_validity_days = c.leaf_validity_days;
  renew_before_days = c.renew_before_days;
}

std::unique_ptr<State> State::open_read_only(const std::string& dir_arg, const Topology& topology, std::time_t now) {
  std::unique_ptr<State> s = blank(dir_arg, now);
  const std::string& dir = s->dir_;
  s->impl_->read_only = true;
  // No lock: a lock file would be a write. Every state file is replaced atomically, so each one
  // read is whole; a gen running at the same time may make this plan stale, never wrong per file.
  if (exists(dir + "/state.json")) {
    s->impl_->load(dir, topology, *s);
  } else {
    if (exists(dir)) check_fresh(dir);  // a foreign directory is refused as open() would
    s->impl_->init_in_memory(topology, *s);
    s->created_ = true;
  }
  return s;
}

State::~State() = default;

const std::map<std::string, Manifest>& State::previous_manifests() const { return impl_->manifests; }

void State::record_manifest(const Manifest& m) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->manifests_forgotten.erase(m.node_name);
  auto it = impl_->manifests.find(m.node_name);
  if (it != impl_->manifests.end() && it->second == m) return;  // unchanged: the file stays as it is
  impl_->manifests[m.node_name] = m;
  impl_->manifests_dirty.insert(m.node_name);
}

void State::forget_node(const std::string& node) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->manifests.erase(node);
  impl_->manifests_dirty.erase(node);
  impl_->manifests_forgotten.insert(node);
}

std::map<std::string, std::string> State::reissued() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->reissued;
}

std::map<std::string, std::string> State::leaf_certificates() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::map<std::string, std::string> out;
  for (const auto& [id, leaf] : impl_->issued) out[id] = leaf.cert_pem;
  return out;
}

bool State::read_only() const { return impl_->read_only; }

std::string State::serial_created_at(const std::string& node) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->serials.find(node);
  return it == impl_->serials.end() ? std::string() : it->second.created_at;
}

const CertificateAuthority& State::ca(CaName which) const { return impl_->cas[ca_index(which)]; }

uint64_t State::node_serial(const std::string& node, const std::string& content_digest, const std::string& now) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto& serials = impl_->serials;
  auto it = serials.find(node);
  if (it != serials.end() && it->second.digest == content_digest) return it->second.serial;
  uint64_t next = it == serials.end() ? 1 : it->second.serial + 1;
  serials[node] = Impl::Serial{next, content_digest, now};
  impl_->serials_dirty = true;
  return next;
}

IssuedCert State::leaf(const std::string& owner, const std::string& name, CaName issuer, const CertRequest& request) {
  const std::string id = owner + "/" + name;
  const CertificateAuthority& authority = signing_ca(*this, issuer);
  std::optional<Impl::Leaf> stored;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = impl_->issued.find(id);
    if (it != impl_->issued.end()) stored = it->second;
  }

  // Parsing, checking and issuing run outside the lock so that threads issue in parallel.
  std::string reason = "new";
  if (stored) {
    X509Ptr cert;
    PkeyPtr key;
    const std::string issued_path = dir_ + "/issued.json";
    try {
      cert = parse_cert(stored->cert_pem, issued_path);
      key = parse_private_key(stored->key_pem, issued_path);
    } catch (const Error&) {
      damaged(issued_path, "entry \"" + id + "\" does not hold a valid PEM certificate and private key");
    }
    reason = why_reissue(cert.get(), key.get(), authority, request, impl_->leaf_key_type, impl_->renew_before_days,
                         impl_->now);
    if (reason.empty()) return IssuedCert{stored->cert_pem, stored->key_pem, false, ""};
    // Reissued by the new CA of a rotation: say so (the issuer's names alone look like damage).
    if (&authority == impl_->rotation_cas[ca_index(issuer)].get() && reason.find("issuer changed") != std::string::npos)
      if (const Rotation* r = rotation(authority.name))
        reason = "CA rotation: " + r->name + " phase " + std::to_string(r->phase);
  }

  PkeyPtr key = generate_key(impl_->leaf_key_type);
  X509Ptr cert = issue_cert(authority, key.get(), request, impl_->leaf_validity_days, impl_->now);
  Impl::Leaf fresh{cert_pem(cert.get()), private_key_pem(key.get()), authority.name};
  std::lock_guard<std::mutex> lock(impl_->mu);
  // Certs shared by several nodes (admin, kube-proxy, ...) are asked for by several threads at
  // once: the first one issued in this run wins, so every node gets the same cert.
  if (!impl_->fresh_this_run.insert(id).second) {
    const Impl::Leaf& winner = impl_->issued.at(id);
    return IssuedCert{winner.cert_pem, winner.key_pem, true, reason};
  }
  IssuedCert out{fresh.cert_pem, fresh.key_pem, true, reason};
  impl_->issued[id] = std::move(fresh);
  impl_->reissued[id] = reason;
  impl_->issued_dirty = true;
  return out;
}

RolloverStatement State::rotate_signing_key(const std::string& created_at,
                                            const std::function<void(const std::string&)>& crash_at) {
  auto step = [&](const std::string& name) {
    if (crash_at) crash_at(name);
  };
  SigningKey old_key(signing_key_pem_);
  KeyPairPem fresh = generate_signing_key();
  RolloverStatement statement = sign_rollover(old_key, fresh.public_pem, signing_rollover_serial() + 1, created_at);
  RolloverChain chain = rollover_;
  chain.push_back(statement);
  const std::map<std::string, std::string> files = {{"keys/bundle-signing.key", fresh.private_pem},
                                                    {"keys/bundle-signing.pub", fresh.public_pem},
                                                    {kRolloverFile, serialize_rollover_chain(chain)}};
  // 1. The new files beside the old ones: nothing refers to them yet.
  for (const auto& [rel, content] : files) {
    write_secret(dir_ + "/" + rel + kNextSuffix, content);
    step("after-next-" + rel);
  }
  // 2. The commit point: state.json with the new pins.
  json state = impl_->state_doc;
  for (const auto& [rel, content] : files) state["pins"][rel] = sha256_hex(content);
  write_secret(dir_ + "/state.json", state.dump(2) + "\n");
  step("after-state");
  // 3. Into place (open() does this too when a crash came first).
  for (const auto& [rel, content] : files) {
    const std::string path = dir_ + "/" + rel;
    if (::rename((path + kNextSuffix).c_str(), path.c_str()) != 0) throw_errno("cannot rename " + path + kNextSuffix);
    step("after-rename-" + rel);
  }
  fsync_dir(dir_ + "/keys");
  impl_->state_doc = state;
  signing_key_pem_ = fresh.private_pem;
  signing_pub_pem_ = fresh.public_pem;
  rollover_ = std::move(chain);
  return statement;
}

const std::vector<Rotation>& State::rotations() const { return impl_->rotations; }

const Rotation* State::rotation(const std::string& name) const {
  for (const auto& r : impl_->rotations)
    if (r.name == name) return &r;
  return nullptr;
}

void State::set_rotation(const Rotation& r) {
  if (rotation_kind_of(r.name) != r.kind || r.phase < 1 || r.phase > last_phase(r.kind))
    throw Error("internal error: rotation " + r.name + " of kind " + to_string(r.kind) + " in phase " +
                std::to_string(r.phase));
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = std::find_if(impl_->rotations.begin(), impl_->rotations.end(), [&](const Rotation& o) { return o.name == r.name; });
  if (it == impl_->rotations.end()) impl_->rotations.push_back(r);
  else if (*it == r) return;
  else *it = r;
  impl_->rotations_dirty = true;
  impl_->refresh_rotation_cas(dir_);
}

void State::clear_rotation(const std::string& name) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto& v = impl_->rotations;
  auto it = std::remove_if(v.begin(), v.end(), [&](const Rotation& r) { return r.name == name; });
  if (it == v.end()) return;
  v.erase(it, v.end());
  impl_->rotations_dirty = true;
  impl_->refresh_rotation_cas(dir_);
}

std::optional<std::string> State::rotation_file(const std::string& rel) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->rotation_files.find(rel);
  if (it == impl_->rotation_files.end()) return std::nullopt;
  return it->second;
}

void State::set_rotation_file(const std::string& rel, std::string content) {
  if (!valid_rotation_rel(rel)) throw Error("internal error: rotation file name \"" + rel + "\" is not [a-z0-9.-]+");
  std::lock_guard<std::mutex> lock(impl_->mu);
  const std::string full = std::string(kRotationDir) + "/" + rel;
  impl_->pending_removals.erase(full);
  impl_->pending_writes[full] = content;
  impl_->rotation_files[rel] = std::move(content);
  impl_->rotations_dirty = true;
  impl_->refresh_rotation_cas(dir_);
}

void State::remove_rotation_file(const std::string& rel) {
  if (!valid_rotation_rel(rel)) throw Error("internal error: rotation file name \"" + rel + "\" is not [a-z0-9.-]+");
  std::lock_guard<std::mutex> lock(impl_->mu);
  const std::string full = std::string(kRotationDir) + "/" + rel;
  if (!impl_->rotation_files.erase(rel)) return;
  impl_->pending_writes.erase(full);
  impl_->pending_removals.insert(full);
  impl_->rotations_dirty = true;
  impl_->refresh_rotation_cas(dir_);
}

void State::replace_pinned_file(const std::string& rel, std::string content) {
  if (std::find(pinned_files().begin(), pinned_files().end(), rel) == pinned_files().end() ||
      std::find(rotated_files().begin(), rotated_files().end(), rel) != rotated_files().end())
    throw Error("internal error: " + rel + " is not a pinned file a rotation replaces");
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->pending_writes[rel] = std::move(content);
  impl_->rotations_dirty = true;
}

void State::mark_rotations_generated() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (auto& r : impl_->rotations)
    if (!r.generated) {
      r.generated = true;
      impl_->rotations_dirty = true;
    }
}

const CertificateAuthority* State::rotation_ca(CaName which) const { return impl_->rotation_cas[ca_index(which)].get(); }

void State::commit(const std::function<void(const std::string&)>& crash_at) {
  if (impl_->read_only) throw Error(dir_ + ": internal error: commit() on a state opened read-only (kbundle plan)");
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->issued_dirty) {
    json j = json::object();
    for (const auto& [id, leaf] : impl_->issued)
      j[id] = {{"cert", leaf.cert_pem}, {"key", leaf.key_pem}, {"issuer", leaf.issuer}};
    write_secret(dir_ + "/issued.json", j.dump(2) + "\n");
    impl_->issued_dirty = false;
  }
  if (impl_->serials_dirty) {
    json j = json::object();
    for (const auto& [node, serial] : impl_->serials) j[node] = {{"serial", serial.serial}, {"digest", serial.digest}, {"createdAt", serial.created_at}};
    write_secret(dir_ + "/serials.json", j.dump(2) + "\n");
    impl_->serials_dirty = false;
  }
  const std::string mdir = dir_ + "/" + kManifestsDir;
  if (!impl_->manifests_dirty.empty()) make_dirs(mdir, kDirMode);
  for (const auto& node : impl_->manifests_dirty)
    write_secret(mdir + "/" + node + ".json", serialize_manifest(impl_->manifests.at(node)) + "\n");
  bool removed = false;
  for (const auto& node : impl_->manifests_forgotten) {
    const std::string path = mdir + "/" + node + ".json";
    if (!exists(path)) continue;
    if (::unlink(path.c_str()) != 0) throw_errno("cannot remove " + path);
    removed = true;
  }
  if (removed) fsync_dir(mdir);
  impl_->manifests_dirty.clear();
  impl_->manifests_forgotten.clear();
  if (impl_->rotations_dirty) commit_rotations(crash_at);
}

// The rotate_signing_key() pattern: new files beside the old ones, state.json as the commit point,
// then the renames and removals (open() finishes them after a crash: finish_rotation()).
void State::commit_rotations(const std::function<void(const std::string&)>& crash_at) {
  auto step = [&](const std::string& name) {
    if (crash_at) crash_at(name);
  };
  Impl& m = *impl_;
  if (!m.pending_writes.empty()) make_dirs(dir_ + "/" + kRotationDir, kDirMode);
  // 1. Nothing refers to the ".next" files yet.
  for (const auto& [rel, content] : m.pending_writes) {
    write_secret(dir_ + "/" + rel + kNextSuffix, content);
    step("after-next-" + rel);
  }
  // 2. The commit point.
  json state = m.state_doc;
  for (const auto& [rel, content] : m.pending_writes) state["pins"][rel] = sha256_hex(content);
  for (const auto& rel : m.pending_removals) state["pins"].erase(rel);
  if (m.rotations.empty()) state.erase(kRotationsKey);
  else state[kRotationsKey] = rotations_json(m.rotations);
  if (m.pending_removals.empty()) state.erase(kRotationRemovedKey);
  else state[kRotationRemovedKey] = std::vector<std::string>(m.pending_removals.begin(), m.pending_removals.end());
  write_secret(dir_ + "/state.json", state.dump(2) + "\n");
  m.state_doc = state;
  step("after-state");
  // 3. Into place.
  std::set<std::string> dirs;
  for (const auto& [rel, content] : m.pending_writes) {
    const std::string path = dir_ + "/" + rel;
    if (::rename((path + kNextSuffix).c_str(), path.c_str()) != 0) throw_errno("cannot rename " + path + kNextSuffix);
    dirs.insert(fs::path(path).parent_path().string());
    step("after-rename-" + rel);
  }
  for (const auto& rel : m.pending_removals) {
    const std::string path = dir_ + "/" + rel;
    if (exists(path) && ::unlink(path.c_str()) != 0) throw_errno("cannot remove " + path);
    dirs.insert(fs::path(path).parent_path().string());
    step("after-remove-" + rel);
  }
  for (const auto& d : dirs) fsync_dir(d);
  m.pending_writes.clear();
  m.pending_removals.clear();
  m.rotations_dirty = false;
}

}  // namespace kb
