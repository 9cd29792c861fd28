#include "generator/rotation.h"

#include "base/error.h"
#include "generator/state.h"

namespace kb {

int last_phase(RotationKind kind) {
  switch (kind) {
    case RotationKind::Ca: return 3;
    case RotationKind::EncryptionKey: return 4;
    case RotationKind::ServiceAccountKey: return 3;
  }
  throw Error("unknown rotation kind");
}

std::string phase_title(RotationKind kind, int phase) {
  switch (kind) {
    case RotationKind::Ca:
      switch (phase) {
        case 1: return "every trust bundle and kubeconfig trusts the old and the new CA; certificates are unchanged";
        case 2: return "every certificate and kubeconfig client certificate is reissued by the new CA; trust still holds both";
        case 3: return "the old CA leaves every trust bundle and kubeconfig; only the new CA is trusted";
      }
      break;
    case RotationKind::EncryptionKey:
      switch (phase) {
        case 1: return "the new key is added second: every apiserver can read with it, the old key still writes";
        case 2: return "the new key is first: new writes use it, the old key still reads";
        case 3: return "every Secret is re-encrypted with the new key";
        case 4: return "the old key is removed";
      }
      break;
    case RotationKind::ServiceAccountKey:
      switch (phase) {
        case 1: return "the new public key is added: apiservers verify tokens of the old and the new key";
        case 2: return "the new key signs new tokens; the old public key still verifies the tokens it signed";
        case 3: return "the old public key is dropped (its tokens have expired)";
      }
      break;
  }
  throw Error("internal error: no phase " + std::to_string(phase) + " in a " + to_string(kind) + " rotation");
}

const char* to_string(RotationKind kind) {
  switch (kind) {
    case RotationKind::Ca: return "ca";
    case RotationKind::EncryptionKey: return "encryption-key";
    case RotationKind::ServiceAccountKey: return "service-account-key";
  }
  return "?";
}

RotationKind rotation_kind_of(const std::string& name) {
  if (name == "kubernetes-ca" || name == "etcd-ca" || name == "front-proxy-ca") return RotationKind::Ca;
  if (name == "encryption-key") return RotationKind::EncryptionKey;
  if (name == "service-account-key") return RotationKind::ServiceAccountKey;
  throw Error("unknown rotation \"" + name +
              "\" (known: kubernetes-ca, etcd-ca, front-proxy-ca, encryption-key, service-account-key)");
}

const char* ca_name(CaName which) {
  switch (which) {
    case CaName::Kubernetes: return "kubernetes-ca";
    case CaName::Etcd: return "etcd-ca";
    case CaName::FrontProxy: return "front-proxy-ca";
  }
  return "?";
}

CaName ca_by_name(const std::string& name) {
  for (CaName c : {CaName::Kubernetes, CaName::Etcd, CaName::FrontProxy})
    if (name == ca_name(c)) return c;
  throw Error("unknown CA \"" + name + "\": use kubernetes-ca, etcd-ca or front-proxy-ca");
}

std::string ca_rotation_cert_file(CaName which) { return std::string(ca_name(which)) + ".crt"; }
std::string ca_rotation_key_file(CaName which) { return std::string(ca_name(which)) + ".key"; }

std::string trust_bundle(const State& state, CaName which) {
  const CertificateAuthority& old_ca = state.ca(which);
  const CertificateAuthority* new_ca = state.rotation_ca(which);
  const Rotation* r = state.rotation(ca_name(which));
  if (!new_ca || !r) return old_ca.cert_pem;
  if (r->phase >= 3) return new_ca->cert_pem;
  // Old first: a verifier that tries only the first certificate of a file still sees today's CA.
  std::string out = old_ca.cert_pem;
  if (!out.empty() && out.back() != '\n') out += '\n';
  return out + new_ca->cert_pem;
}

const CertificateAuthority& signing_ca(const State& state, CaName which) {
  const CertificateAuthority* new_ca = state.rotation_ca(which);
  const Rotation* r = state.rotation(ca_name(which));
  if (new_ca && r && r->phase >= 2) return *new_ca;
  return state.ca(which);
}

}  // namespace kb
