// kb_e2e_rebundle: test-only tool that makes a modified, validly signed copy of a bundle, so the
// end-to-end tests can hand a node a bundle the generator would never write (e.g. a broken
// etcd.service). It verifies IN with the public key, extracts it, replaces the named files,
// optionally caps every health check's timeoutSeconds, and signs the result with the state's
// bundle-signing key under the given serial (+N: IN's serial plus N).
//
//   kb_e2e_rebundle --in IN.kbundle --pub bundle-signing.pub --key state/keys/bundle-signing.key
//                   --out OUT.kbundle --serial N|+N [--replace /node/path=LOCAL_FILE]...
//                   [--health-timeout SECONDS] [--add /node/path=LOCAL_FILE:MODE[:OWNER[:GROUP]]]...
//                   [--add-dir /node/path=MODE[:OWNER[:GROUP]]]... [--add-unit NAME]...
//                   [--health-only NAME[=TARGET]]
// --add replaces an entry of the same path. --add, --add-dir and --add-unit make hostile but validly signed bundles for the path-policy tests.
// --health-only keeps one health check (optionally pointed at TARGET): the bootstrap test runs the
// apply's health gate against a stand-in API server only.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <vector>
#include <stdlib.h>

#include "bundles/bundle_reader.h"
#include "bundles/bundle_writer.h"
#include "base/error.h"
#include "bundles/signing.h"

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw kb::Error(path + ": cannot read");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int run(int argc, char** argv) {
  std::string in, pub, key, out;
  std::string serial;
  int health_timeout = 0;
  std::string health_only;
  std::map<std::string, std::string> replace;
  std::vector<std::pair<std::string, std::string>> add, add_dir;
  std::vector<std::string> add_unit;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) throw kb::Error("usage: " + a + " needs a value");
    std::string v = argv[++i];
    if (a == "--in") in = v;
    else if (a == "--pub") pub = v;
    else if (a == "--key") key = v;
    else if (a == "--out") out = v;
    else if (a == "--serial") serial = v;
    else if (a == "--health-timeout") health_timeout = std::stoi(v);
    else if (a == "--replace" && v.find('=') != std::string::npos) replace[v.substr(0, v.find('='))] = v.substr(v.find('=') + 1);
    else if (a == "--add" && v.find('=') != std::string::npos) add.emplace_back(v.substr(0, v.find('=')), v.substr(v.find('=') + 1));
    else if (a == "--add-dir" && v.find('=') != std::string::npos) add_dir.emplace_back(v.substr(0, v.find('=')), v.substr(v.find('=') + 1));
    else if (a == "--add-unit") add_unit.push_back(v);
    else if (a == "--health-only") health_only = v;
    else throw kb::Error("usage: unknown argument " + a);
  }
  if (in.empty() || pub.empty() || key.empty() || out.empty() || serial.empty()) throw kb::Error("usage: see rebundle.cpp");

  char tmpl[] = "/tmp/kb-rebundle.XXXXXX";
  if (!::mkdtemp(tmpl)) throw kb::Error("mkdtemp failed");
  std::string tree = std::string(tmpl) + "/tree";
  struct Remove {
    std::string dir;
    ~Remove() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } remove{tmpl};

  kb::Manifest old = kb::extract_bundle(in, read_file(pub), tree);
  kb::Manifest header = old;
  header.entries.clear();
  header.signing_key_sha256.clear();
  header.serial = serial[0] == '+' ? old.serial + std::stoull(serial.substr(1)) : std::stoull(serial);
  for (const auto& u : add_unit) header.units.push_back(u);
  if (health_timeout > 0)
    for (auto& check : header.health_checks) check["timeoutSeconds"] = health_timeout;
  if (!health_only.empty()) {
    std::string name = health_only.substr(0, health_only.find('='));
    auto checks = header.health_checks;
    header.health_checks.clear();
    for (auto& check : checks)
      if (check.value("name", "") == name) {
        if (health_only.find('=') != std::string::npos) check["target"] = health_only.substr(health_only.find('=') + 1);
        header.health_checks.push_back(check);
      }
    if (header.health_checks.empty()) throw kb::Error("--health-only " + name + ": no such health check");
  }

  kb::BundleWriter writer(header);
  for (const auto& e : old.entries) {
    if (e.type == kb::EntryType::Directory) {
      writer.add_directory(e.path, e.mode, e.owner, e.group);
      continue;
    }
    // --add of a path the bundle already has replaces that entry (with the mode and owner given).
    if (std::any_of(add.begin(), add.end(), [&](const auto& a) { return a.first == e.path; })) continue;
    kb::ManifestEntry meta = e;
    auto r = replace.find(e.path);
    writer.add_file_from_path(meta, r == replace.end() ? tree + e.path : r->second);
    if (r != replace.end()) replace.erase(r);
  }
  if (!replace.empty()) throw kb::Error(replace.begin()->first + ": not in the bundle");
  // "A:B:C" -> {"A", "B", "C"}
  auto fields = [](const std::string& v) {
    std::vector<std::string> f;
    for (size_t start = 0;;) {
      size_t colon = v.find(':', start);
      f.push_back(v.substr(start, colon - start));
      if (colon == std::string::npos) return f;
      start = colon + 1;
    }
  };
  for (const auto& [path, spec] : add) {
    auto f = fields(spec);  // FILE:MODE[:OWNER[:GROUP]]
    if (f.size() < 2) throw kb::Error("--add " + path + "=" + spec + ": want FILE:MODE[:OWNER[:GROUP]]");
    kb::ManifestEntry meta;
    meta.path = path;
    meta.mode = static_cast<unsigned>(std::stoul(f[1], nullptr, 8));
    meta.owner = f.size() > 2 ? f[2] : "root";
    meta.group = f.size() > 3 ? f[3] : "root";
    meta.cls = path.rfind("/etc/systemd/", 0) == 0 ? kb::EntryClass::Unit : kb::EntryClass::Config;
    writer.add_file_from_path(meta, f[0]);
  }
  for (const auto& [path, spec] : add_dir) {
    auto f = fields(spec);  // MODE[:OWNER[:GROUP]]
    writer.add_directory(path, static_cast<unsigned>(std::stoul(f[0], nullptr, 8)), f.size() > 1 ? f[1] : "root",
                         f.size() > 2 ? f[2] : "root");
  }
  kb::SigningKey signing(read_file(key));
  kb::Manifest written = writer.write(out, signing);
  std::cout << out << ": serial " << written.serial << ", " << written.entries.size() << " entries\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "kb_e2e_rebundle: error: " << e.what() << "\n";
    return 1;
  }
}
