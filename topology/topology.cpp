#include "topology/topology.h"

#include <string_view>

#include "base/release_version.h"
#include "base/text_escape.h"

namespace kb {

const char* to_string(Role r) {
  switch (r) {
    case Role::ControlPlane: return "control-plane";
    case Role::Worker: return "worker";
    case Role::Both: return "both";
  }
  return "?";
}

const char* to_string(KeyType k) {
  switch (k) {
    case KeyType::EcdsaP256: return "ecdsa-p256";
    case KeyType::Rsa2048: return "rsa-2048";
    case KeyType::Rsa3072: return "rsa-3072";
    case KeyType::Rsa4096: return "rsa-4096";
  }
  return "?";
}

const char* to_string(EncryptionProvider p) {
  switch (p) {
    case EncryptionProvider::Aescbc: return "aescbc";
    case EncryptionProvider::Secretbox: return "secretbox";
    case EncryptionProvider::Aesgcm: return "aesgcm";
  }
  return "?";
}


std::vector<const Node*> Topology::control_planes() const {
  std::vector<const Node*> out;
  for (const Node& n : nodes)
    if (n.is_control_plane()) out.push_back(&n);
  return out;
}

std::vector<const Node*> Topology::workers() const {
  std::vector<const Node*> out;
  for (const Node& n : nodes)
    if (n.is_worker()) out.push_back(&n);
  return out;
}

std::string Topology::api_service_ip() const {
  return Cidr::parse(cluster.service_cidr).value_or(Cidr{}).address_at(1);
}

std::string Topology::cluster_dns_ip() const {
  return Cidr::parse(cluster.service_cidr).value_or(Cidr{}).address_at(10);
}

std::string Topology::api_server_url() const {
  return "https://" + cluster.api_host + ":" + std::to_string(cluster.api_port);
}

std::string Diagnostic::format() const {
  std::string out;
  if (!file.empty()) {
    out += escape_text(file);
    if (line > 0) {
      out += ":" + std::to_string(line);
      if (column > 0) out += ":" + std::to_string(column);
    }
    out += ": ";
  }
  out += severity == Severity::Error ? "error: " : "warning: ";
  out += escape_text(message);
  if (!hint.empty()) out += " (hint: " + escape_text(hint) + ")";
  return out;
}

bool is_supported_kubernetes_version(const std::string& version) {
  // Any patch release of a supported minor (the release catalog resolves its URLs).
  auto v = parse_release_version(version);
  return v && (v->minor_string() == "v1.32" || v->minor_string() == "v1.33");
}

std::string supported_kubernetes_versions() { return "v1.32.x, v1.33.x"; }

}  // namespace kb
