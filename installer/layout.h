#pragma once
// Where the installer keeps things, under a root ("/" on a node):
//   /etc/kbundle/trust.json                 the pin: the trusted Ed25519 public key, its fingerprint
//                                           and its rollover serial, one file replaced atomically (0644)
//   /etc/kbundle/trust.pub                  the pin as an older installer wrote it (key only, serial 0);
//                                           read when trust.json is absent, removed when it is written
//   /var/lib/kbundle/current/manifest.*     the installed generation (signed manifest)
//   /var/lib/kbundle/journal.json           present only while an apply or rollback runs
//   /var/lib/kbundle/staging-<serial>/      the verified payload of the bundle being applied
//   /var/lib/kbundle/generations/<serial>/  what an apply replaced when it left <serial>
//                                           ("none" for the first apply): backup.json, files/,
//                                           and the manifest of <serial>; the last two are kept
//   /var/lib/kbundle/bootstrap.json         the bootstrap objects' apply: status, per object, times
//                                           (installer/bootstrap.h; only on the designated node)
//   /var/lib/kbundle/created-dirs.json      the directories the installer created (a JSON list):
//                                           only these may be chmod'ed, chown'ed or removed by reset

#include <cstdint>
#include <optional>
#include <string>

namespace kb::installer {

struct Layout {
  std::string root;  // "" for "/", otherwise an absolute path without a trailing "/"

  explicit Layout(const std::string& root_dir);
  std::string live(const std::string& node_path) const { return root + node_path; }
  std::string state() const { return live("/var/lib/kbundle"); }
  std::string current() const { return state() + "/current"; }
  std::string journal() const { return state() + "/journal.json"; }
  std::string created_dirs() const { return state() + "/created-dirs.json"; }
  std::string bootstrap_record() const { return state() + "/bootstrap.json"; }
  std::string generations() const { return state() + "/generations"; }
  // Directories a rolled-back generation made and its services filled (transaction.cpp), kept for the operator.
  std::string discarded() const { return state() + "/discarded"; }
  std::string staging(uint64_t serial) const { return state() + "/staging-" + std::to_string(serial); }
  std::string generation(const std::optional<uint64_t>& serial) const {
    return generations() + "/" + (serial ? std::to_string(*serial) : std::string("none"));
  }
  std::string trust_key() const { return live("/etc/kbundle/trust.pub"); }
  std::string trust_pin() const { return live("/etc/kbundle/trust.json"); }
};

}  // namespace kb::installer
