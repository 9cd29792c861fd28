// Image import into containerd after a healthy apply (see images.h).
#include "installer/images.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "base/error.h"
#include "installer/layout.h"
#include "installer/process.h"
#include "installer/run.h"
#include "base/unique_fd.h"

namespace kb::installer {

namespace {

using Clock = std::chrono::steady_clock;

// The last non-empty line of a command's output, for one-line reasons.
std::string last_line(const std::string& out) {
  std::string s = out;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  auto nl = s.find_last_of('\n');
  s = nl == std::string::npos ? s : s.substr(nl + 1);
  return s.size() > 400 ? s.substr(0, 400) + "..." : s;
}

std::string seconds_text(std::chrono::milliseconds d) {
  return std::to_string(d.count() / 1000) + "." + std::to_string(d.count() % 1000 / 100) + " s";
}

// Whether something accepts connections on the unix socket `path`.
bool socket_accepts(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return false;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return false;
  return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
}

std::string under(const std::string& root, const std::string& node_path) { return Layout(root).live(node_path); }

}  // namespace

std::string image_ref_from_url(const std::string& url) {
  auto at = url.rfind("/oci/");
  if (at == std::string::npos || !url.ends_with(".tar")) return "";
  std::string rest = url.substr(at + 5, url.size() - at - 5 - 4);  // registry/repository/tag
  auto slash = rest.rfind('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == rest.size() || rest.find('/') == slash) return "";
  std::string ref = rest.substr(0, slash) + ":" + rest.substr(slash + 1);
  // Only what a reference may hold: no spaces, quotes, "..", '@' or a second ':'.
  for (char c : ref)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || c == '/' || c == ':')) return "";
  if (ref.find("..") != std::string::npos || std::count(ref.begin(), ref.end(), ':') != 1) return "";
  return ref;
}

std::vector<ImageArchive> image_archives(const Manifest& m, const std::vector<std::string>& changed_paths) {
  std::vector<ImageArchive> out;
  const std::string dir = kImagesDir;
  for (const auto& e : m.entries) {
    if (e.type != EntryType::File || !e.path.starts_with(dir) || !e.path.ends_with(".tar")) continue;
    if (e.path.find('/', dir.size()) != std::string::npos) continue;  // only files directly in the directory
    ImageArchive a;
    a.path = e.path;
    a.ref = e.source ? image_ref_from_url(e.source->url) : "";
    a.changed = std::find(changed_paths.begin(), changed_paths.end(), e.path) != changed_paths.end();
    out.push_back(std::move(a));
  }
  return out;
}

bool needs_listing(const std::vector<ImageArchive>& archives) {
  return std::any_of(archives.begin(), archives.end(), [](const ImageArchive& a) { return !a.changed && !a.ref.empty(); });
}

std::vector<ImageArchive> images_to_import(const std::vector<ImageArchive>& archives, const std::set<std::string>& present) {
  std::vector<ImageArchive> out;
  for (const auto& a : archives)
    if (a.changed || (!a.ref.empty() && !present.count(a.ref))) out.push_back(a);
  return out;
}

std::vector<std::string> ctr_list_command(const std::string& root) {
  return {under(root, kCtrPath), "--address", under(root, kContainerdSocketPath), "-n", "k8s.io", "images", "ls", "-q"};
}

std::vector<std::string> ctr_import_command(const std::string& root, const ImageArchive& archive) {
  std::vector<std::string> argv = {under(root, kCtrPath), "--address", under(root, kContainerdSocketPath), "-n", "k8s.io",
                                   "images", "import"};
  if (!archive.ref.empty()) {
    argv.push_back("--base-name");
    argv.push_back(archive.ref.substr(0, archive.ref.rfind(':')));
  }
  argv.push_back(under(root, archive.path));
  return argv;
}

std::string import_images(Run& r, const Manifest& m, const std::vector<std::string>& changed_paths, const ImageLimits& limits) {
  auto archives = image_archives(m, changed_paths);
  if (archives.empty()) return "";
  if (r.opt.no_systemd) {
    r.say("image import skipped (--no-systemd): " + std::to_string(archives.size()) + " archives under " + kImagesDir +
          " not imported into containerd");
    return "";
  }
  const std::string root = r.opt.root;
  const std::string ctr = under(root, kCtrPath), sock = under(root, kContainerdSocketPath);
  if (::access(ctr.c_str(), X_OK) != 0)
    return ctr + ": not found or not executable: the bundle carries images under " + std::string(kImagesDir) +
           " but no ctr to import them (regenerate the bundle with a kbundle whose catalog has ctr)";

  // containerd is Type=notify, so its socket normally exists once the health checks passed.
  const auto start = Clock::now();
  while (!socket_accepts(sock)) {
    if (Clock::now() - start >= limits.socket_wait)
      return sock + ": containerd does not accept connections after " + seconds_text(limits.socket_wait) +
             " (is containerd.service running? see journalctl -u containerd)";
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }

  std::set<std::string> present;
  if (needs_listing(archives)) {
    auto argv = ctr_list_command(root);
    ProcessResult res = run_process(argv, limits.list);
    if (res.timed_out || res.status != 0)
      return command_text(argv) + ": " + (res.timed_out ? "no answer after " + seconds_text(limits.list) : "exit status " + std::to_string(res.status)) +
             (last_line(res.err + res.out).empty() ? "" : ": " + last_line(res.err + res.out));
    std::string line;
    for (char c : res.out + "\n") {
      if (c == '\n') {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (!line.empty()) present.insert(line);
        line.clear();
      } else {
        line += c;
      }
    }
  }

  auto todo = images_to_import(archives, present);
  nlohmann::json imported = nlohmann::json::array();
  for (const auto& a : todo) {
    auto argv = ctr_import_command(root, a);
    auto t0 = Clock::now();
    ProcessResult res = run_process(argv, limits.import_each, true);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    if (res.timed_out || res.status != 0)
      return "importing " + a.path + " into containerd failed: " + command_text(argv) + ": " +
             (res.timed_out ? "no result after " + seconds_text(limits.import_each) : "exit status " + std::to_string(res.status)) +
             (last_line(res.err + res.out).empty() ? "" : ": " + last_line(res.err + res.out));
    r.say("imported " + a.path + (a.ref.empty() ? "" : " as " + a.ref) + " into containerd (k8s.io) in " + seconds_text(took) +
          (a.changed ? "" : "; it was missing"));
    imported.push_back(a.path);
  }
  if (todo.empty()) r.say("images: all " + std::to_string(archives.size()) + " already in containerd (k8s.io)");
  r.report["imported"] = imported;
  return "";
}

}  // namespace kb::installer
