#include "publish/artifacts.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "base/atomic_file.h"
#include "bundles/bundle_reader.h"
#include "base/error.h"
#include "base/hash.h"
#include "base/text_escape.h"
#include "bundles/signing.h"

namespace kb {

namespace fs = std::filesystem;

namespace {

Artifact describe(const std::string& name, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read");
  Sha256 h;
  std::vector<char> buf(1 << 16);
  uint64_t size = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    auto n = static_cast<size_t>(in.gcount());
    h.update(buf.data(), n);
    size += n;
  }
  Artifact a;
  a.name = name;
  a.path = path;
  a.size = size;
  a.sha256 = h.hex_digest();
  return a;
}

}  // namespace

PublishSet collect_artifacts(const std::string& out_dir, const std::vector<std::string>& nodes,
                             const std::string& installer_path) {
  PublishSet set;
  const std::string pub = (fs::path(out_dir) / "bundle-signing.pub").string();
  if (!fs::exists(pub))
    throw Error(pub + ": not found (hint: --out is the directory `kbundle gen` wrote, with the default --format bundle)");
  set.public_key_pem = read_file(pub);
  set.fingerprint = VerifyKey(set.public_key_pem).fingerprint();
  set.trust_key = describe("bundle-signing.pub", pub);

  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(out_dir))
    if (e.is_regular_file() && e.path().extension() == ".kbundle") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  if (files.empty())
    throw Error(out_dir + ": no *.kbundle files (hint: run `kbundle gen` without --format dir)");

  std::set<std::string> wanted(nodes.begin(), nodes.end()), seen;
  for (const auto& path : files) {
    std::string node = fs::path(path).stem().string();
    if (!wanted.empty() && !wanted.count(node)) continue;
    // Nothing leaves the machine that a node would refuse.
    Manifest m;
    try {
      m = verify_bundle(path, set.public_key_pem);
    } catch (const std::exception& e) {
      throw Error(path + ": does not verify with " + pub + ": " + e.what() + " (hint: run `kbundle gen` again)");
    }
    if (m.node_name != node)
      throw Error(path + ": the bundle is for node '" + m.node_name + "' (hint: do not rename bundles)");
    Artifact a = describe(node + ".kbundle", path);
    a.node = node;
    a.serial = m.serial;
    set.bundles.push_back(a);
    seen.insert(node);
  }
  for (const auto& n : wanted)
    if (!seen.count(n)) throw Error("--node " + n + ": no " + n + ".kbundle in " + out_dir);

  if (!installer_path.empty()) {
    if (!fs::is_regular_file(installer_path))
      throw Error("--installer " + installer_path + ": not found (hint: build it with `ninja kbundle-installer`, or --no-installer)");
    set.installer = describe("kbundle-installer", installer_path);
  }
  return set;
}

std::string default_installer_path(const std::string& self_exe) {
  if (self_exe.empty()) return {};
  std::error_code ec;
  fs::path self = fs::canonical(self_exe, ec);
  if (ec) return {};
  fs::path candidate = self.parent_path().parent_path() / "installer" / "kbundle-installer";
  if (fs::is_regular_file(candidate, ec)) return candidate.string();
  candidate = self.parent_path() / "kbundle-installer";
  if (fs::is_regular_file(candidate, ec)) return candidate.string();
  return {};
}

std::string node_flags(std::string flags, const std::string& node) {
  for (size_t at = 0; (at = flags.find("{node}", at)) != std::string::npos; at += node.size()) flags.replace(at, 6, node);
  return flags;
}

std::string node_command(const PublishSet& set, const Artifact& bundle, const std::string& dir,
                         const std::string& download, const std::string& installer, const std::string& apply_flags) {
  std::string cmd = "mkdir -p " + shell_quote(dir) + " && cd " + shell_quote(dir) + " && ";
  if (!download.empty()) cmd += download + " && ";
  cmd += "echo " + shell_quote(bundle.sha256 + "  " + bundle.name) + " | sha256sum -c - && printf '%s\\n'";
  std::istringstream lines(set.public_key_pem);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) cmd += " " + shell_quote(line);
  const std::string flags = node_flags(apply_flags, bundle.node);
  const bool plain = std::all_of(installer.begin(), installer.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("/._-").find(c) != std::string_view::npos;
  });
  cmd += " >bundle-signing.pub && " + (plain ? installer : shell_quote(installer)) +
         " apply --trust-fingerprint sha256:" + set.fingerprint + (flags.empty() ? "" : " " + flags) + " " +
         shell_quote(bundle.name);
  return cmd;
}

}  // namespace kb
