#include "publish/ssh_target.h"

#include "base/error.h"
#include "publish/targets.h"

namespace kb {

namespace {

std::string clean_dir(std::string dir, const std::string& where) {
  if (!dir.starts_with('/')) throw PublishUsageError(where + ": the remote directory '" + dir + "' must be absolute");
  if (dir.find("/../") != std::string::npos || dir.ends_with("/.."))
    throw PublishUsageError(where + ": the remote directory '" + dir + "' must not contain ..");
  while (dir.size() > 1 && dir.ends_with('/')) dir.pop_back();
  return dir;
}

}  // namespace

SshTarget parse_scp_url(const std::string& url, const std::string& default_user, const std::string& default_dir) {
  const std::string hint = " (hint: scp://USER@HOST[:PORT]/DIR)";
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) throw PublishUsageError("--to '" + url + "': not a URL" + hint);
  std::string rest = url.substr(scheme + 3);
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  SshTarget t;
  t.user = default_user;
  if (size_t at = authority.rfind('@'); at != std::string::npos) {
    t.user = authority.substr(0, at);
    authority = authority.substr(at + 1);
  }
  std::string port;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string::npos) throw PublishUsageError("--to '" + url + "': unclosed [" + hint);
    t.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') port = authority.substr(close + 2);
  } else if (size_t colon = authority.find(':'); colon != std::string::npos) {
    t.host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  } else {
    t.host = authority;
  }
  if (t.host.empty() || t.user.empty()) throw PublishUsageError("--to '" + url + "': no host or user" + hint);
  if (!port.empty()) {
    try {
      size_t used = 0;
      t.port = std::stoi(port, &used);
      if (used != port.size() || t.port < 1 || t.port > 65535) throw std::out_of_range("port");
    } catch (const std::exception&) {
      throw PublishUsageError("--to '" + url + "': '" + port + "' is not a port" + hint);
    }
  }
  std::string dir = slash == std::string::npos || slash + 1 >= rest.size() ? default_dir : rest.substr(slash);
  t.dir = clean_dir(dir, "--to '" + url + "'");
  return t;
}

std::vector<SshTarget> ssh_targets_from_topology(const Topology& topology, const PublishSet& set, const PublishOptions& o) {
  std::vector<SshTarget> out;
  for (const auto& b : set.bundles) {
    const Node* node = nullptr;
    for (const auto& n : topology.nodes)
      if (n.name == b.node) node = &n;
    if (!node) throw Error(b.path + ": node '" + b.node + "' is not in " + o.topology_path + " (hint: --node NAME, or gen again)");
    SshTarget t;
    t.node = node->name;
    t.user = o.ssh_user;
    t.host = node->public_ip.empty() ? node->private_ip : node->public_ip;
    t.port = o.ssh_port;
    t.dir = clean_dir(o.remote_dir, "--remote-dir");
    out.push_back(t);
  }
  return out;
}

}  // namespace kb
