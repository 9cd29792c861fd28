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

// Every file whose replacement would silently change whom the cluster trusts: pinned in
// state.json by its sha256 when it is made (kbundle never adopts a swapped CA or key).
const std::vector<std::string>& pinned_files() {
  static const std::vector<std::string> files = {
      "ca/kubernetes-ca.crt",      "ca/kubernetes-ca.key",      "ca/etcd-ca.crt",          "ca/etcd-ca.key",
      "ca/front-proxy-ca.crt",     "ca/front-proxy-ca.key",     "keys/service-account.key", "keys/service-account.pub",
      "keys/encryption.key",       "keys/bundle-signing.key",   "keys/bundle-signing.pub"};
  return files;
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
bool is_leftover(const std::string& name, bool resuming) {
  if (name == kLockFile || name == kInitMarker) return true;
  // The binary cache `kbundle fetch` fills by default (<state>/cache) before any gen or aws up.
  if (name == "cache") return true;
  if (name.size() > 1 && name[0] == '.' && name.find(".tmp-") != std::string::npos) return true;
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
    bool known = rel == kRolloverFile || std::find(pinned_files().begin(), pinned_files().end(), rel) != pinned_files().end();
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
                      "would change), and only `kbundle rotate signing-key` changes a pin");
}

// An interrupted rotate: a ".next" file that matches its pin was committed (state.json holds its
// pin), so it replaces the old file; one that does not was never committed and goes.
void finish_rotation(const std::string& dir, const json* pins) {
  bool changed = false;
  for (const auto& rel : rotated_files()) {
    const std::string path = dir + "/" + rel, next = path + kNextSuffix;
    if (!exists(next)) continue;
    if (pins && pins->contains(rel) && sha256_hex(read_file(next)) == (*pins)[rel].get<std::string>()) {
      if (::rename(next.c_str(), path.c_str()) != 0) throw_errno("cannot rename " + next);
    } else if (::unlink(next.c_str()) != 0) {
      throw_errno("cannot remove " + next);
    }
    changed = true;
  }
  if (changed) fsync_dir(dir + "/keys");
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
    if (name.size() > 1 && name[0] == '.' && name.find(".tmp-") != std::string::npos) continue;
    const std::string suffix = ".json";
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0 ||
        !fs::is_regular_file(fs::symlink_status(path, ec)))
      damaged(path, "is not a manifest kbundle wrote (only manifests/<node>.json files belong there); remove it");
    const std::string node = name.substr(0, name.size() - suffix.size());
    std::string text = read_file(path);
    if (text.size() > kMaxManifestSize) damaged(path, "is larger than any manifest (" + std::to_string(text.size()) + " bytes)");
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
  if (read_only) {
    for (const auto& rel : rotated_files())
      if (exists(dir + "/" + rel + kNextSuffix))
        throw Error(dir + "/" + rel + kNextSuffix + ": an interrupted `kbundle rotate signing-key` is not finished; "
                    "`kbundle plan` writes nothing, so run `kbundle gen` (or the rotation again) to finish it first");
  } else {
    finish_rotation(dir, legacy ? nullptr : &state["pins"]);
  }
  if (!legacy) {
    for (const auto& rel : pinned_files()) check_pin(dir, rel, state["pins"], state_path);
    if (state["pins"].contains(kRolloverFile)) check_pin(dir, kRolloverFile, state["pins"], state_path);
  }
  if (exists(dir + "/" + kRolloverFile) && (legacy || !state["pins"].contains(kRolloverFile)))
    damaged(dir + "/" + kRolloverFile, std::string("is not pinned in ") + state_path +
                                           ", so it was not made by `kbundle rotate signing-key`; remove it");

  // The CAs are kept whatever the topology's key type says now; only leaves follow it.
  for (const auto& spec : kCas) {
    std::string crt_path = dir + "/ca/" + spec.name + ".crt";
    std::string key_path = dir + "/ca/" + spec.name + ".key";
    CertificateAuthority& ca = cas[ca_index(spec.which)];
    ca.name = spec.name;
    ca.cert_pem = read_required(crt_path);
    ca.key_pem = read_required(key_path, "is missing, but its certificate " + crt_path + " is there");
    try {
      ca.cert = parse_cert(ca.cert_pem, crt_path);
    } catch (const Error&) {
      damaged(crt_path, "is not a valid PEM certificate");
    }
    try {
      ca.key = parse_private_key(ca.key_pem, key_path);
    } catch (const Error&) {
      damaged(key_path, "is not a valid PEM private key");
    }
    if (!key_matches_cert(ca.key.get(), ca.cert.get())) damaged(key_path, "does not match " + crt_path);
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

std::unique_ptr<State> State::open(const std::string& dir_arg, const Topology& topology, std::time_t now) {
  std::string dir = dir_arg;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (dir.empty()) throw Error("state directory: empty path");

  std::unique_ptr<State> s(new State());
  s->impl_ = std::make_unique<Impl>();
  s->impl_->now = now;
  s->dir_ = dir;

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
  std::string dir = dir_arg;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (dir.empty()) throw Error("state directory: empty path");

  std::unique_ptr<State> s(new State());
  s->impl_ = std::make_unique<Impl>();
  s->impl_->now = now;
  s->impl_->read_only = true;
  s->dir_ = dir;
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
  const CertificateAuthority& authority = ca(issuer);
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

void State::commit() {
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
}

}  // namespace kb
