#pragma once
// Helpers for the installer's unit tests: a temp root per test, bundles made
// with kb::BundleWriter, an in-process apply with the null service manager, and
// snapshots of a root (path, type, mode, owner, hash; optionally inode and mtime).

#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <vector>

#include "bundles/bundle_test_util.h"
#include "base/hash.h"
#include "installer/installer.h"

namespace kb::installer::test {

using kb::test::TempDir;

// A node root with the system directories a Debian node has.
inline std::string make_root(const TempDir& tmp, const std::string& name = "root") {
  std::string root = tmp / name;
  for (const char* d : {"", "/etc", "/etc/systemd", "/etc/systemd/system", "/var", "/var/lib", "/usr", "/usr/local",
                        "/usr/local/bin"})
    make_dirs(root + d, 0755);
  write_file_atomic(root + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\netcd:x:112:118::/var/lib/etcd:/usr/sbin/nologin\n", 0644);
  write_file_atomic(root + "/etc/group", "root:x:0:\netcd:x:118:\n", 0644);
  return root;
}

inline Manifest header(uint64_t serial, const std::string& node = "cp-1") {
  Manifest m = kb::test::sample_header();
  m.node_name = node;
  m.hostname = node;
  m.serial = serial;
  m.units = {"etcd.service", "kube-apiserver.service"};
  return m;
}

// Changes to write_bundle's bundle: the header (units, role) before the writer takes it, and
// entries after the usual ones (the path-policy tests make hostile, validly signed bundles).
struct BundleExtras {
  std::function<void(Manifest&)> header;
  std::function<void(BundleWriter&)> entries;
};

// A small control-plane bundle. `variant` changes the content of some files (a new generation);
// `drop_extra` leaves out /etc/kubernetes/config/extra.yaml (a file a newer generation removes).
inline void write_bundle(const std::string& path, uint64_t serial, const std::string& variant = "a",
                         const std::string& node = "cp-1", bool drop_extra = false,
                         const KeyPairPem& key = kb::test::test_key(), const BundleExtras& extras = {}) {
  using kb::test::meta;
  Manifest h = header(serial, node);
  if (extras.header) extras.header(h);
  BundleWriter w(h);
  w.add_directory("/etc/etcd", 0700);
  w.add_directory("/var/lib/etcd", 0700);
  w.add_directory("/var/lib/kubernetes", 0700);
  w.add_file(meta("/etc/etcd/ca.crt", 0644, EntryClass::Config), kb::test::pem_like("CERTIFICATE", 5));
  w.add_file(meta("/etc/etcd/server.key", 0600, EntryClass::Secret), "etcd-key");
  w.add_file(meta("/etc/systemd/system/etcd.service", 0644, EntryClass::Unit), "[Unit]\nDescription=etcd\n");
  w.add_file(meta("/etc/systemd/system/kube-apiserver.service", 0644, EntryClass::Unit), "[Unit]\nDescription=api " + variant + "\n");
  if (!drop_extra) w.add_file(meta("/etc/kubernetes/config/extra.yaml", 0600, EntryClass::Config), "extra: " + variant + "\n");
  w.add_file(meta("/var/lib/kubernetes/ca.key", 0600, EntryClass::Secret), kb::test::kSecretContent);
  w.add_file(meta("/var/lib/kubernetes/admin.kubeconfig", 0600, EntryClass::Secret), "kubeconfig " + variant);
  w.add_file(meta("/usr/local/bin/etcd", 0755, EntryClass::Binary), std::string(5000, 'e'));
  w.add_file(meta("/usr/local/bin/kube-apiserver", 0755, EntryClass::Binary), std::string(7000, 'k') + variant);
  if (extras.entries) extras.entries(w);
  SigningKey k(key.private_pem);
  w.write(path, k);
}

inline std::string trust_file(const TempDir& tmp, const KeyPairPem& key = kb::test::test_key(), const std::string& name = "trust.pub") {
  std::string p = tmp / name;
  write_file_atomic(p, key.public_pem, 0644);
  return p;
}

struct Result {
  ExitCode code;
  std::string out, err;
  std::vector<std::string> calls;  // the null service manager's
};

// Options for a test apply: the temp root, no systemd, --node cp-1.
inline Options options(const std::string& root, const std::string& trust_key = "") {
  Options o;
  o.root = root;
  o.no_systemd = true;
  o.node = "cp-1";
  o.trust_key_file = trust_key;
  return o;
}

inline Result run(const std::function<ExitCode(const Options&, const Hooks&, Io)>& cmd, const Options& opt,
                  HealthFn health = nullptr) {
  Result r;
  Hooks hooks;
  hooks.make_services = [&r](bool) { return make_null_manager(&r.calls); };
  hooks.health = std::move(health);
  std::ostringstream out, err;
  r.code = cmd(opt, hooks, Io{out, err});
  r.out = out.str();
  r.err = err.str();
  return r;
}

inline Result apply_bundle(const Options& opt, const std::string& bundle, HealthFn health = nullptr) {
  return run([&](const Options& o, const Hooks& h, Io io) { return apply(o, h, io, bundle); }, opt, std::move(health));
}

// path -> "type mode uid:gid hash" for everything under `root` except `exclude` (a relative path);
// with `times`, also inode, mtime and ctime (G12).
inline std::map<std::string, std::string> snapshot(const std::string& root, const std::string& exclude = "",
                                                   bool times = false) {
  std::map<std::string, std::string> out;
  std::function<void(const std::string&)> walk = [&](const std::string& rel) {
    std::string full = root + rel;
    struct stat st;
    if (::lstat(full.c_str(), &st) != 0) return;
    std::ostringstream s;
    s << std::oct << (st.st_mode & 0170000) << " " << (st.st_mode & 07777) << std::dec << " " << st.st_uid << ":" << st.st_gid;
    if (S_ISREG(st.st_mode)) s << " " << sha256_hex(read_file(full));
    if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t n = ::readlink(full.c_str(), buf, sizeof buf);
      s << " -> " << std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
    }
    if (times && !S_ISDIR(st.st_mode))
      s << " ino " << st.st_ino << " mtime " << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec << " ctime " << st.st_ctim.tv_sec
        << "." << st.st_ctim.tv_nsec;
    out[rel.empty() ? "/" : rel] = s.str();
    if (S_ISDIR(st.st_mode))
      for (const auto& e : std::filesystem::directory_iterator(full)) {
        std::string child = rel + "/" + e.path().filename().string();
        if (!exclude.empty() && child == "/" + exclude) continue;
        walk(child);
      }
  };
  walk("");
  return out;
}

inline mode_t mode_of(const std::string& path) {
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace kb::installer::test
