#pragma once
// Helpers shared by the bundles/ tests only: temp dirs, a sample bundle, and
// raw tar/compression access for building tampered and malicious archives.

#include <archive.h>
#include <archive_entry.h>
#include <cstdio>
#include <cstring>
#include <functional>
#include <sys/sysmacros.h>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <stdlib.h>
#include <string>
#include <vector>

#include "base/atomic_file.h"
#include "bundles/bundle_reader.h"
#include "bundles/bundle_writer.h"
#include "bundles/signing.h"

namespace kb::test {

// A fresh directory per test, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "kb-bundles-test.XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline const KeyPairPem& test_key() {
  static const KeyPairPem k = generate_signing_key();
  return k;
}
inline const KeyPairPem& other_key() {
  static const KeyPairPem k = generate_signing_key();
  return k;
}

inline Manifest sample_header() {
  Manifest m;
  m.cluster_name = "demo";
  m.cluster_id = "c0ffee00-1234";
  m.node_name = "cp-1";
  m.role = "control-plane";
  m.hostname = "cp-1";
  m.private_ip = "10.0.1.10";
  m.serial = 7;
  m.created_at = "2026-11-22T04:56:21Z";
  m.kubernetes_version = "v1.32.3";
  m.units = {"etcd.service", "kube-apiserver.service"};
  m.health_checks = {nlohmann::json{{"name", "etcd"}, {"kind", "etcd"}, {"target", "https://127.0.0.1:2379/health"},
                                    {"ca_file", "/etc/etcd/ca.crt"}, {"timeout_seconds", 60}}};
  return m;
}

inline ManifestEntry meta(const std::string& path, unsigned mode, EntryClass cls) {
  ManifestEntry e;
  e.path = path;
  e.mode = mode;
  e.cls = cls;
  return e;
}

inline std::string pem_like(const std::string& label, size_t n) {
  std::string s = "-----BEGIN " + label + "-----\n";
  for (size_t i = 0; i < n; ++i) s += "MIIBszCCAVmgAwIBAgIUZ" + std::to_string(i * 7919 % 10007) + "x\n";
  return s + "-----END " + label + "-----\n";
}

inline const std::string kSecretContent = "-----BEGIN PRIVATE KEY-----\nTOP-SECRET-KEY-MATERIAL\n-----END PRIVATE KEY-----\n";

// A small, realistic bundle: directories, secret/config/unit files and one binary read from disk.
inline BundleWriter sample_writer(const std::string& binary_path) {
  {
    std::string bin(300000, '\0');
    uint32_t x = 12345;
    for (auto& c : bin) c = static_cast<char>((x = x * 1103515245 + 12345) >> 24);
    write_file_atomic(binary_path, bin, 0755);
  }
  BundleWriter w(sample_header());
  w.add_directory("/var/lib/etcd", 0700);
  w.add_file(meta("/var/lib/kubernetes/ca.crt", 0644, EntryClass::Config), pem_like("CERTIFICATE", 20));
  w.add_file(meta("/var/lib/kubernetes/ca.key", 0600, EntryClass::Secret), kSecretContent);
  w.add_file(meta("/etc/systemd/system/etcd.service", 0644, EntryClass::Unit), "[Unit]\nDescription=etcd\n");
  w.add_file(meta("/etc/empty.conf", 0600, EntryClass::Config), "");
  ManifestEntry b = meta("/usr/local/bin/etcd", 0755, EntryClass::Binary);
  b.source = EntrySource{"https://example.com/etcd.tar.gz", std::string(64, 'a')};
  w.add_file_from_path(b, binary_path);
  return w;
}

// ---- raw access below the format -------------------------------------------------

struct ArchiveReadDel {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteDel {
  void operator()(archive* a) const { archive_write_free(a); }
};

// The decompressed tar stream of a bundle.
inline std::string decompress(const std::string& path) {
  std::unique_ptr<archive, ArchiveReadDel> a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 65536) != ARCHIVE_OK) throw std::runtime_error("open");
  archive_entry* e;
  if (archive_read_next_header(a.get(), &e) != ARCHIVE_OK) throw std::runtime_error("header");
  std::string out;
  char buf[65536];
  for (la_ssize_t n; (n = archive_read_data(a.get(), buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

// Compresses `data` as one zstd/gzip stream into `path` (no tar layer added).
inline void compress_to(const std::string& path, const std::string& data, Compression c = Compression::Zstd) {
  std::unique_ptr<archive, ArchiveWriteDel> a(archive_write_new());
  archive_write_set_format_raw(a.get());
  if (c == Compression::Zstd) archive_write_add_filter_zstd(a.get());
  else archive_write_add_filter_gzip(a.get());
  archive_write_set_bytes_in_last_block(a.get(), 1);
  if (archive_write_open_filename(a.get(), path.c_str()) != ARCHIVE_OK) throw std::runtime_error("open out");
  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), archive_entry_free);
  archive_entry_set_pathname(e.get(), "data");
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_size(e.get(), static_cast<la_int64_t>(data.size()));
  archive_write_header(a.get(), e.get());
  if (!data.empty() && archive_write_data(a.get(), data.data(), data.size()) != static_cast<la_ssize_t>(data.size()))
    throw std::runtime_error("write");
  archive_write_close(a.get());
}

struct TarMember {
  std::string name;
  size_t header = 0;  // offset of the 512-byte header in the tar stream
  size_t data = 0;    // offset of the data
  size_t size = 0;
};

// Members of an uncompressed ustar stream; a long name is prefix "/" name.
inline std::vector<TarMember> tar_members(const std::string& tar) {
  std::vector<TarMember> out;
  size_t off = 0;
  while (off + 512 <= tar.size() && tar[off] != '\0') {
    TarMember m;
    m.name = std::string(tar.c_str() + off, strnlen(tar.c_str() + off, 100));
    std::string prefix(tar.c_str() + off + 345, strnlen(tar.c_str() + off + 345, 155));
    if (!prefix.empty()) m.name = prefix + "/" + m.name;
    m.header = off;
    m.data = off + 512;
    m.size = std::stoull(tar.substr(off + 124, 12), nullptr, 8);
    out.push_back(m);
    off = m.data + (m.size + 511) / 512 * 512;
  }
  return out;
}

inline void fix_tar_checksum(std::string& tar, size_t header) {
  unsigned sum = 0;
  for (size_t i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(tar[header + i]);
  char buf[8];
  std::snprintf(buf, sizeof buf, "%06o", sum);
  std::memcpy(&tar[header + 148], buf, 7);
  tar[header + 155] = ' ';
}

// A member for write_tar(): anything libarchive can express, hostile or not.
struct RawMember {
  std::string name;
  unsigned filetype = AE_IFREG;
  unsigned mode = 0644;
  std::string data;
  std::string symlink, hardlink;
  int64_t mtime = 0;
  int64_t uid = 0;
};

inline void write_tar(const std::string& path, const std::vector<RawMember>& members, Compression c = Compression::Zstd) {
  std::unique_ptr<archive, ArchiveWriteDel> a(archive_write_new());
  archive_write_set_format_ustar(a.get());
  if (c == Compression::Zstd) archive_write_add_filter_zstd(a.get());
  else archive_write_add_filter_gzip(a.get());
  archive_write_set_bytes_in_last_block(a.get(), 1);
  if (archive_write_open_filename(a.get(), path.c_str()) != ARCHIVE_OK) throw std::runtime_error("open out");
  for (const auto& m : members) {
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(e.get(), m.name.c_str());
    archive_entry_set_filetype(e.get(), m.filetype);
    archive_entry_set_perm(e.get(), m.mode);
    archive_entry_set_uid(e.get(), m.uid);
    archive_entry_set_gid(e.get(), 0);
    archive_entry_set_uname(e.get(), "root");
    archive_entry_set_gname(e.get(), "root");
    archive_entry_set_mtime(e.get(), m.mtime, 0);
    if (!m.symlink.empty()) archive_entry_set_symlink(e.get(), m.symlink.c_str());
    if (!m.hardlink.empty()) archive_entry_set_hardlink(e.get(), m.hardlink.c_str());
    if (m.filetype == AE_IFCHR) archive_entry_set_rdev(e.get(), makedev(1, 3));
    bool has_data = m.filetype == AE_IFREG && m.hardlink.empty();
    archive_entry_set_size(e.get(), has_data ? static_cast<la_int64_t>(m.data.size()) : 0);
    if (archive_write_header(a.get(), e.get()) < ARCHIVE_WARN) throw std::runtime_error(archive_error_string(a.get()));
    if (has_data && !m.data.empty()) archive_write_data(a.get(), m.data.data(), m.data.size());
  }
  archive_write_close(a.get());
}

// The members of a good bundle, as RawMembers that write_tar() reproduces.
inline std::vector<RawMember> members_of(const std::string& bundle) {
  std::string tar = decompress(bundle);
  std::vector<RawMember> out;
  for (const auto& m : tar_members(tar)) {
    RawMember r;
    r.name = m.name;
    r.filetype = tar[m.header + 156] == '5' ? AE_IFDIR : AE_IFREG;
    r.mode = static_cast<unsigned>(std::stoul(tar.substr(m.header + 100, 8), nullptr, 8));
    r.mtime = std::stoll(tar.substr(m.header + 136, 12), nullptr, 8);
    r.data = tar.substr(m.data, m.size);
    out.push_back(r);
  }
  return out;
}

inline BundleErrc code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const BundleError& e) {
    return e.code();
  }
  throw std::runtime_error("expected a BundleError, got none");
}

}  // namespace kb::test
