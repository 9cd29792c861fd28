#include "installer/trust.h"

#include <arpa/inet.h>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/hash.h"
#include "base/atomic_file.h"
#include "bundles/bundle_error.h"
#include "bundles/signing.h"
#include "installer/imds.h"
#include "installer/live_fs.h"

namespace kb::installer {

namespace {

Trust load_key(const std::string& path, const std::string& what) {
  Trust t;
  try {
    t.pem = read_file(path);
    t.fingerprint = VerifyKey(t.pem).fingerprint();
  } catch (const Error& e) {
    throw InstallerError(ExitCode::BadBundle, what + " " + path + ": " + e.what());
  }
  return t;
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

constexpr int kPinFormat = 1;

std::string make_pin_record(const std::string& pem, uint64_t serial) {
  return nlohmann::json{{"fingerprint", VerifyKey(pem).fingerprint()},
                        {"format", kPinFormat},
                        {"public_key", pem},
                        {"rollover_serial", serial}}
             .dump();
}

// The pin file, strictly: exactly its four keys, a key that loads, its own fingerprint.
Trust parse_pin(const std::string& text, const std::string& path) {
  auto damaged = [&](const std::string& why) {
    return InstallerError(ExitCode::BadBundle, path + ": damaged pin: " + why +
                                                   "; nothing was installed. Restore it, or run `kbundle-installer reset "
                                                   "--yes` and apply again with --trust-fingerprint of the current key");
  };
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.size() != 4 || !j.contains("format") || !j.contains("public_key") ||
      !j.contains("fingerprint") || !j.contains("rollover_serial"))
    throw damaged("not an object with exactly format, fingerprint, public_key and rollover_serial");
  if (!j["format"].is_number_unsigned() || j["format"].get<uint64_t>() != kPinFormat) throw damaged("format is not 1");
  if (!j["public_key"].is_string() || !j["fingerprint"].is_string() || !j["rollover_serial"].is_number_unsigned())
    throw damaged("a field has the wrong type");
  Trust t;
  t.pinned = true;
  t.pem = j["public_key"].get<std::string>();
  try {
    t.fingerprint = VerifyKey(t.pem).fingerprint();
  } catch (const Error& e) {
    throw damaged(std::string("public_key: ") + e.what());
  }
  if (t.fingerprint != j["fingerprint"].get<std::string>()) throw damaged("fingerprint is not public_key's");
  t.rollover_serial = j["rollover_serial"].get<uint64_t>();
  return t;
}

std::string describe(const Trust& t) {
  return "sha256:" + t.fingerprint + " (rollover serial " + std::to_string(t.rollover_serial.value_or(0)) + ")";
}

}  // namespace

std::optional<Trust> read_pin(const Layout& layout) {
  // trust.json wins: while a re-pin is between writing it and removing trust.pub, it is the pin.
  if (exists(layout.trust_pin())) return parse_pin(read_file(layout.trust_pin()), layout.trust_pin());
  if (exists(layout.trust_key())) {
    Trust t = load_key(layout.trust_key(), "pinned key");
    t.pinned = true;
    t.rollover_serial = 0;
    return t;
  }
  return std::nullopt;
}

std::unique_ptr<BundleReader> open_bundle(const Layout& layout, const Trust& trust, const std::string& bundle) {
  try {
    return std::make_unique<BundleReader>(bundle, trust.pem, trust.rollover_serial);
  } catch (const BundleError& e) {
    bool trust_refusal = e.code() == BundleErrc::BadSignature || e.code() == BundleErrc::UntrustedRollover ||
                         e.code() == BundleErrc::KeyMismatch;
    if (!trust.pinned || !trust_refusal) throw;
    throw BundleError(e.code(), std::string(e.what()) + ". This node pins sha256:" + trust.fingerprint + " at rollover serial " +
                                    std::to_string(trust.rollover_serial.value_or(0)) + " in " +
                                    (exists(layout.trust_pin()) ? layout.trust_pin() : layout.trust_key()) +
                                    ". A bundle signed by a newer key must carry the rollover chain from it: "
                                    "`kbundle rotate signing-key`, then `kbundle gen`. One signed by a retired or "
                                    "unknown key is refused: regenerate it from the cluster's current state");
  }
}

std::string pin_to_stage(const Trust& trust, const BundleReader& reader) {
  const ChainEnd& signer = reader.signer();
  if (trust.pinned && signer.fingerprint == trust.fingerprint) return "";
  return make_pin_record(signer.key_pem, signer.serial);
}

std::string staged_pin(const Layout& layout, const std::string& staging) {
  if (exists(staging + "/trust.json")) return read_file(staging + "/trust.json");
  if (exists(staging + "/trust.pub") && !read_pin(layout)) return make_pin_record(read_file(staging + "/trust.pub"), 0);
  return "";
}

std::string commit_pin(const Layout& layout, const std::string& record) {
  Trust t = parse_pin(record, layout.trust_pin());
  ensure_dir(parent_dir(layout.trust_pin()), 0755);
  write_file_atomic(layout.trust_pin(), record, 0644);
  if (::unlink(layout.trust_key().c_str()) != 0 && errno != ENOENT) throw_errno("cannot remove " + layout.trust_key());
  fsync_dir(parent_dir(layout.trust_pin()));
  return describe(t);
}

std::string normalize_fingerprint(const std::string& text) {
  std::string s = text.rfind("sha256:", 0) == 0 ? text.substr(7) : text;
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!is_lower_hex(s, 64))
    throw InstallerError(ExitCode::Usage, "--trust-fingerprint " + text + ": not 64 hex digits (sha256:<hex>)");
  return s;
}

Trust resolve_trust(const Layout& layout, const Options& opt, const std::string& bundle) {
  std::string wanted = opt.trust_fingerprint.empty() ? "" : normalize_fingerprint(opt.trust_fingerprint);
  if (std::optional<Trust> pinned = read_pin(layout)) {
    Trust t = *pinned;
    // A pinned key is never replaced from the command line: that would defeat pinning.
    if (!opt.trust_key_file.empty() && load_key(opt.trust_key_file, "--trust-key").fingerprint != t.fingerprint)
      throw InstallerError(ExitCode::BadBundle, "--trust-key " + opt.trust_key_file + ": differs from the pinned key sha256:" +
                                                    t.fingerprint + "; refused (a new key is taken only through a rollover "
                                                    "statement in the bundle)");
    if (!wanted.empty() && wanted != t.fingerprint)
      throw InstallerError(ExitCode::BadBundle, "--trust-fingerprint differs from the pinned key sha256:" + t.fingerprint);
    return t;
  }
  if (!opt.trust_key_file.empty()) {
    Trust t = load_key(opt.trust_key_file, "--trust-key");
    if (!wanted.empty() && wanted != t.fingerprint)
      throw InstallerError(ExitCode::BadBundle, "--trust-key " + opt.trust_key_file + ": fingerprint sha256:" + t.fingerprint +
                                                    " is not the --trust-fingerprint given");
    return t;
  }
  if (!wanted.empty()) {
    // A fingerprint alone is no key: take the public key published next to the bundle, if it matches.
    std::string pub = parent_dir(bundle.empty() ? std::string("./x") : bundle) + "/bundle-signing.pub";
    if (!exists(pub))
      throw InstallerError(ExitCode::BadBundle, pub + ": missing; --trust-fingerprint needs the bundle-signing.pub that "
                                                      "kbundle gen writes next to the bundles (or use --trust-key)");
    Trust t = load_key(pub, "signing key");
    if (t.fingerprint != wanted)
      throw InstallerError(ExitCode::BadBundle, pub + ": fingerprint sha256:" + t.fingerprint + " is not the one given (sha256:" +
                                                    wanted + "); refused");
    return t;
  }
  throw InstallerError(ExitCode::BadBundle, layout.trust_pin() + ": no pinned signing key; the first apply needs "
                                            "--trust-key FILE or --trust-fingerprint HEX (fail closed)");
}

std::string instance_mismatch(const Manifest& m, const std::string& imds_endpoint_override,
                              const std::function<void(const std::string&)>& warn) {
  if (m.instance_id.empty()) return "";
  try {
    bool overridden = false;
    ImdsEndpoint ep = imds_endpoint(imds_endpoint_override, &overridden);
    if (overridden) warn("instance metadata asked at " + ep.ip + ":" + std::to_string(ep.port) + " (KB_IMDS_ENDPOINT, tests only)");
    std::string id = imds_instance_id(ep);
    if (id != m.instance_id)
      return "bundle is for EC2 instance " + m.instance_id + " (node " + m.node_name + "), this is " + id;
    return "";
  } catch (const std::exception& e) {
    return "bundle is bound to EC2 instance " + m.instance_id + " (node " + m.node_name + ") and this machine's identity cannot be read: " +
           e.what();
  }
}

std::string machine_mismatch(const Manifest& m) {
  char host[HOST_NAME_MAX + 1] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "cannot read this machine's hostname";
  std::string h = host, short_h = h.substr(0, h.find('.')), want_short = m.hostname.substr(0, m.hostname.find('.'));
  if (h != m.hostname && short_h != want_short)
    return "bundle is for host " + m.hostname + " (node " + m.node_name + "), this machine is " + h;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return "cannot list this machine's addresses";
  bool found = false;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    char buf[INET_ADDRSTRLEN] = {};
    sockaddr_in sin{};
    std::memcpy(&sin, i->ifa_addr, sizeof sin);
    if (::inet_ntop(AF_INET, &sin.sin_addr, buf, sizeof buf) && m.private_ip == buf) found = true;
  }
  ::freeifaddrs(list);
  if (!found) return "bundle is for address " + m.private_ip + " (node " + m.node_name + "), which this machine does not have";
  return "";
}

}  // namespace kb::installer
