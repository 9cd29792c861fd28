#include "installer/cert_status.h"

#include <catch2/catch.hpp>
#include <regex>
#include <sys/stat.h>

#include "base/atomic_file.h"
#include "base/hash.h"
#include "bundles/bundle_writer.h"
#include "bundles/cert_test_util.h"
#include "bundles/signing.h"
#include "installer/installer_test_util.h"

using namespace kb;
using namespace kb::installer;
using namespace kb::installer::test;
using kb::test::make_cert;
using kb::test::Made;
using kb::test::meta;

namespace {

const std::time_t kNow = std::time(nullptr);
constexpr std::time_t kDay = 86400;

struct Certs {
  Made ca = make_cert("kubernetes-ca", true, kNow - 100 * kDay, 3650);
  Made next_ca = make_cert("kubernetes-ca-2", true, kNow, 3650);
  Made server = make_cert("control-0", false, kNow - 345 * kDay, 365, "DNS:control-0,IP:10.0.1.10");  // 20 days left
  Made peer = make_cert("control-0", false, kNow - 370 * kDay, 365, "DNS:control-0");                 // expired 5 days ago
  Made admin = make_cert("admin", false, kNow, 365, "", "system:masters");
};
const Certs& certs() {
  static Certs c;
  return c;
}

std::string kubeconfig_ok() {
  const Certs& c = certs();
  return kb::test::kubeconfig(base64_encode(c.ca.cert_pem), base64_encode(c.admin.cert_pem), base64_encode(c.admin.key_pem));
}

// The files of a small control-plane node: a trust bundle of two CAs, a server certificate inside
// the window, an expired one, a kubeconfig, keys (one holding junk that would be a problem if it
// were ever read) and a binary.
std::vector<std::pair<ManifestEntry, std::string>> node_files() {
  const Certs& c = certs();
  return {
      {meta("/etc/etcd/ca.crt", 0644, EntryClass::Config), c.ca.cert_pem + c.next_ca.cert_pem},
      {meta("/etc/etcd/server.crt", 0644, EntryClass::Config), c.server.cert_pem},
      {meta("/etc/etcd/server.key", 0600, EntryClass::Secret), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
      {meta("/etc/etcd/peer.crt", 0644, EntryClass::Config), c.peer.cert_pem},
      {meta("/var/lib/kubernetes/admin.kubeconfig", 0600, EntryClass::Secret), kubeconfig_ok()},
      {meta("/var/lib/kubernetes/ca.key", 0600, EntryClass::Secret), c.ca.key_pem},
      {meta("/usr/local/bin/etcd", 0755, EntryClass::Binary), std::string(5000, 'e')},
  };
}

// The files written under `root` and their manifest (as an installed generation would have them).
Manifest lay_out(const std::string& root) {
  Manifest m = header(1, "cp-1");
  for (auto& [e, content] : node_files()) {
    make_dirs(root + parent_dir(e.path), 0755);
    write_file_atomic(root + e.path, content, e.mode);
    ManifestEntry entry = e;
    entry.size = content.size();
    entry.sha256 = sha256_hex(content);
    m.entries.push_back(entry);
  }
  return m;
}

// `status` with the clock an hour after kNow: 19 days left for the server certificate, the peer's expired 6 days ago.
Result status_at(const Options& opt) {
  Result r;
  Hooks hooks;
  hooks.make_services = [&r](bool) { return make_null_manager(&r.calls); };
  hooks.now = [] { return static_cast<int64_t>(kNow + 3600); };
  std::ostringstream out, err;
  r.code = status(opt, hooks, Io{out, err});
  r.out = out.str();
  r.err = err.str();
  return r;
}

}  // namespace

TEST_CASE("node certificates: trust bundles, kubeconfigs, days left and the window; keys never read", "[cert_status]") {
  TempDir tmp;
  std::string root = make_root(tmp);
  Manifest m = lay_out(root);
  NodeCerts nc = node_certificates(Layout(root), m, kNow, 30);
  CHECK(nc.problems.empty());
  std::vector<std::string> sources;
  for (const auto& c : nc.certs) sources.push_back(c.info.source + " " + c.status);
  CHECK(sources == std::vector<std::string>{
                       "/etc/etcd/ca.crt[0] ok", "/etc/etcd/ca.crt[1] ok", "/etc/etcd/server.crt renew", "/etc/etcd/peer.crt expired",
                       "/var/lib/kubernetes/admin.kubeconfig#clusters[0].certificate-authority-data ok",
                       "/var/lib/kubernetes/admin.kubeconfig#users[0].client-certificate-data ok"});
  CHECK(nc.certs[2].days_left == 20);
  CHECK(nc.certs[3].days_left == -5);
  CHECK(nc.count("renew") == 1);
  CHECK(nc.count("expired") == 1);
  // A wider window takes more in; 0 only what has expired.
  CHECK(node_certificates(Layout(root), m, kNow, 4000).count("renew") == 5);
  CHECK(node_certificates(Layout(root), m, kNow, 0).count("renew") == 0);
}

TEST_CASE("node certificates: a tampered, missing or odd file is named and the rest still listed", "[cert_status]") {
  TempDir tmp;
  std::string root = make_root(tmp);
  Manifest m = lay_out(root);
  auto kc = [&] { return root + "/var/lib/kubernetes/admin.kubeconfig"; };
  struct Case {
    const char* name;
    std::function<void()> tamper;
    std::string problem;  // the start of the one problem line
    size_t certs;         // certificates still listed
  };
  std::string ok = kubeconfig_ok();
  std::vector<Case> cases = {
      {"junk base64 in a kubeconfig",
       [&] { write_file_atomic(kc(), kb::test::kubeconfig("%%%junk%%%", base64_encode(certs().admin.cert_pem), "x"), 0600); },
       "/var/lib/kubernetes/admin.kubeconfig: clusters[0].certificate-authority-data: not base64", 5},
      {"a key where the client certificate belongs",
       [&] { write_file_atomic(kc(), kb::test::kubeconfig(base64_encode(certs().ca.cert_pem), base64_encode(certs().admin.key_pem), "x"), 0600); },
       "/var/lib/kubernetes/admin.kubeconfig: users[0].client-certificate-data: holds no PEM certificate", 5},
      {"a truncated certificate", [&] { write_file_atomic(root + "/etc/etcd/server.crt", certs().server.cert_pem.substr(0, 200), 0644); },
       "/etc/etcd/server.crt: line 1: certificate block has no END line", 5},
      {"garbage", [&] { write_file_atomic(root + "/etc/etcd/server.crt", std::string("\x1b[2J\x00\xff", 6), 0644); },
       "/etc/etcd/server.crt: holds no certificate", 5},
      {"missing", [&] { REQUIRE(::unlink((root + "/etc/etcd/peer.crt").c_str()) == 0); }, "/etc/etcd/peer.crt: cannot read: No such file", 5},
      {"a directory in its place",
       [&] {
         REQUIRE(::unlink((root + "/etc/etcd/peer.crt").c_str()) == 0);
         make_dirs(root + "/etc/etcd/peer.crt", 0755);
       },
       "/etc/etcd/peer.crt: not a regular file", 5},
      {"a symlink in its place",
       [&] {
         REQUIRE(::unlink((root + "/etc/etcd/peer.crt").c_str()) == 0);
         REQUIRE(::symlink("/etc/shadow", (root + "/etc/etcd/peer.crt").c_str()) == 0);
       },
       "/etc/etcd/peer.crt: not a regular file", 5},
      {"huge", [&] { write_file_atomic(root + "/etc/etcd/peer.crt", std::string(kMaxCertFileBytes + 1, 'A'), 0644); },
       "/etc/etcd/peer.crt: 4194305 bytes, more than a certificate file holds", 5},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    TempDir t2;
    root = make_root(t2);
    lay_out(root);
    c.tamper();
    NodeCerts nc = node_certificates(Layout(root), m, kNow, 30);
    REQUIRE(nc.problems.size() == 1);
    CHECK_THAT(nc.problems[0], Catch::StartsWith(c.problem));
    CHECK(nc.certs.size() == c.certs);
    for (const auto& p : nc.problems) CHECK(p.find('\x1b') == std::string::npos);
  }
}

TEST_CASE("prometheus text: HELP and TYPE once, one sample per certificate, labels escaped, ends with a newline",
          "[cert_status]") {
  CHECK(prometheus_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\\\nd");  // made printable (\n -> \\n), then escaped
  CHECK(prometheus_label_value("CN=x\\,y") == "CN=x\\\\,y");
  CHECK(prometheus_label_value("\"") == "\\\"");
  TempDir tmp;
  std::string root = make_root(tmp);
  Manifest m = lay_out(root);
  NodeCerts nc = node_certificates(Layout(root), m, kNow, 30);
  std::string text = prometheus_text(nc, "cp-1", 30);
  REQUIRE(text.back() == '\n');
  const std::regex sample(R"re(^[a-zA-Z_:][a-zA-Z0-9_:]*\{node="[^"]*"(,[a-z]+="([^"\\]|\\["\\n])*")*\} -?[0-9]+$)re");
  const std::regex meta_line(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
  std::map<std::string, int> help, type;
  size_t samples = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    INFO(line);
    if (line.rfind("# ", 0) == 0) {
      CHECK(std::regex_match(line, meta_line));
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      ++(line[2] == 'H' ? help : type)[name];
    } else {
      CHECK(std::regex_match(line, sample));
      ++samples;
    }
  }
  CHECK(help.size() == 6);
  for (const auto& [name, n] : help) CHECK((n == 1 && type[name] == 1));
  CHECK(samples == 4 * nc.certs.size() + 2);
  CHECK_THAT(text, Catch::Contains("kbundle_certificate_expired{node=\"cp-1\",path=\"/etc/etcd/peer.crt\",source=\"/etc/etcd/peer.crt\","
                                   "subject=\"CN=control-0\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("kbundle_certificate_days_left{node=\"cp-1\",path=\"/etc/etcd/server.crt\",source=\"/etc/etcd/server.crt\","
                                   "subject=\"CN=control-0\"} 20\n"));
  CHECK_THAT(text, Catch::Contains("kbundle_certificate_renewal_due{node=\"cp-1\",path=\"/etc/etcd/ca.crt\",source=\"/etc/etcd/ca.crt[1]\","
                                   "subject=\"CN=kubernetes-ca-2\"} 0\n"));
  CHECK_THAT(text, Catch::Contains("kbundle_certificate_problems{node=\"cp-1\"} 0\n"));
  CHECK(text.find("PRIVATE KEY") == std::string::npos);
  CHECK(text.find(base64_encode(certs().admin.key_pem).substr(0, 30)) == std::string::npos);
}

TEST_CASE("status: every certificate, warnings inside the window, --json and an atomic --metrics-file", "[cert_status]") {
  TempDir tmp;
  std::string root = make_root(tmp);
  std::string bundle = tmp / "b.kbundle";
  {
    BundleWriter w(header(1, "cp-1"));
    w.add_directory("/etc/etcd", 0700);
    w.add_directory("/var/lib/kubernetes", 0700);
    for (auto& [e, content] : node_files()) w.add_file(e, content);
    w.write(bundle, SigningKey(kb::test::test_key().private_pem));
  }
  Options opt = options(root, trust_file(tmp));
  REQUIRE(apply_bundle(opt, bundle).code == ExitCode::Ok);

  std::string metrics_dir = tmp / "textfile_collector";
  make_dirs(metrics_dir, 0755);
  Options st = options(root);
  st.metrics_file = metrics_dir + "/kbundle.prom";
  auto r = status_at(st);
  CHECK(r.code == ExitCode::Ok);
  CHECK_THAT(r.out, Catch::Contains("  cert /etc/etcd/server.crt: CN=control-0, expires "));
  CHECK_THAT(r.out, Catch::Contains("(19 days) INSIDE the renewal window"));
  CHECK_THAT(r.out, Catch::Contains("  cert /var/lib/kubernetes/admin.kubeconfig#users[0].client-certificate-data: CN=admin,O=system:masters"));
  CHECK_THAT(r.err, Catch::Contains("warning: certificate /etc/etcd/server.crt (CN=control-0) expires in 19 days, inside the renewal window of 30 days"));
  CHECK_THAT(r.err, Catch::Contains("warning: certificate /etc/etcd/peer.crt (CN=control-0) expired 6 days ago"));
  CHECK(r.out.find("PRIVATE KEY") == std::string::npos);
  CHECK(mode_of(st.metrics_file) == 0644);
  std::string prom = read_file(st.metrics_file);
  CHECK_THAT(prom, Catch::Contains("kbundle_certificate_expired{node=\"cp-1\",path=\"/etc/etcd/peer.crt\""));
  // Only the metrics file is there: the temp file was renamed, not left behind.
  CHECK(std::distance(std::filesystem::directory_iterator(metrics_dir), std::filesystem::directory_iterator()) == 1);

  // --json: the list with days left and status; the window.
  st.json = true;
  st.renew_before_days = 10;
  auto j = nlohmann::json::parse(status_at(st).out);
  CHECK(j["renew_before_days"] == 10);
  REQUIRE(j["certificates"].size() == 6);
  auto by_source = [&](const std::string& source) {
    for (const auto& c : j["certificates"])
      if (c["source"] == source) return c;
    FAIL("no " << source);
    return nlohmann::json();
  };
  CHECK(by_source("/etc/etcd/server.crt")["status"] == "ok");  // 19 days, outside a 10-day window
  CHECK(by_source("/etc/etcd/server.crt")["days_left"] == 19);
  CHECK(by_source("/etc/etcd/peer.crt")["status"] == "expired");
  CHECK(by_source("/etc/etcd/peer.crt")["days_left"] == -6);
  CHECK(by_source("/var/lib/kubernetes/admin.kubeconfig#users[0].client-certificate-data")["subject"] == "CN=admin,O=system:masters");
  CHECK(j["certificate_problems"].empty());

  // A tampered kubeconfig: the rest is still reported, the bad file named; status still exits 0.
  write_file_atomic(root + "/var/lib/kubernetes/admin.kubeconfig", kb::test::kubeconfig("!!junk!!", "", ""), 0600);
  st.json = false;
  r = status_at(st);
  CHECK(r.code == ExitCode::Ok);
  CHECK_THAT(r.err, Catch::Contains("warning: certificate file /var/lib/kubernetes/admin.kubeconfig: clusters[0].certificate-authority-data: not base64"));
  CHECK_THAT(r.out, Catch::Contains("  cert /etc/etcd/server.crt:"));
  CHECK_THAT(read_file(st.metrics_file), Catch::Contains("kbundle_certificate_problems{node=\"cp-1\"} 2\n"));

  // A metrics file that cannot be written: exit 1, said.
  st.metrics_file = tmp / "no-such-dir/kbundle.prom";
  r = status_at(st);
  CHECK(r.code == ExitCode::Failure);
  CHECK_THAT(r.err, Catch::Contains("no-such-dir"));
}

TEST_CASE("status with nothing installed still writes an empty metrics file", "[cert_status]") {
  TempDir tmp;
  std::string root = make_root(tmp);
  Options st = options(root);
  st.metrics_file = tmp / "kbundle.prom";
  auto r = status_at(st);
  CHECK(r.code == ExitCode::Ok);
  std::string prom = read_file(st.metrics_file);
  CHECK_THAT(prom, Catch::Contains("kbundle_certificate_problems{node=\"\"} 0\n"));
  CHECK(prom.find("kbundle_certificate_expiry_timestamp_seconds{") == std::string::npos);
}

TEST_CASE("status flags: --renew-before-days and --metrics-file are parsed and checked", "[cert_status]") {
  auto cli = [](std::vector<std::string> args) {
    std::vector<char*> argv;
    args.insert(args.begin(), "kbundle-installer");
    for (auto& a : args) argv.push_back(a.data());
    std::ostringstream out, err;
    int rc = run_cli(static_cast<int>(argv.size()), argv.data(), Hooks{}, out, err);
    return std::make_pair(rc, err.str());
  };
  CHECK(cli({"--renew-before-days", "x", "status"}).first == 2);
  CHECK(cli({"--renew-before-days", "-1", "status"}).first == 2);
  CHECK(cli({"--renew-before-days", "9999999", "status"}).first == 2);
  CHECK(cli({"--metrics-file=", "status"}).first == 2);
}

TEST_CASE("status --json survives a certificate whose SAN is not UTF-8", "[cert_status]") {
  TempDir tmp;
  std::string root = make_root(tmp);
  std::string bundle = tmp / "b.kbundle";
  Made odd = make_cert("odd", false, kNow, 365, std::string("DNS:a\xff\x1b[2Jb"));
  {
    BundleWriter w(header(1, "cp-1"));
    w.add_directory("/etc/etcd", 0700);
    w.add_file(meta("/etc/etcd/server.crt", 0644, EntryClass::Config), odd.cert_pem);
    w.write(bundle, SigningKey(kb::test::test_key().private_pem));
  }
  REQUIRE(apply_bundle(options(root, trust_file(tmp)), bundle).code == ExitCode::Ok);
  Options st = options(root);
  st.json = true;
  Result r = status_at(st);
  CHECK(r.code == ExitCode::Ok);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["certificates"].size() == 1);
  CHECK(j["certificates"][0]["dns_names"][0] == "a\\xff\\x1b[2Jb");
}
