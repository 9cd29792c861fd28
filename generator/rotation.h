#pragma once
// Rotations of long-lived material (CAs, the encryption key, the service-account key) as phases,
// each one a generation applied on every node before the next one starts (docs/rotation.md).
// The record of a rotation in progress and the new material it adds live in the state
// (generator/state.h: rotations(), rotation_file()), so they change in one atomic commit.
// This file says what each phase means; `kbundle rotate` moves between phases, gen marks a
// phase generated, and plan.cpp asks trust_bundle()/signing_ca() what to ship.

#include <string>

namespace kb {

class State;
struct CertificateAuthority;
enum class CaName;  // generator/state.h

enum class RotationKind { Ca, EncryptionKey, ServiceAccountKey };

struct Rotation {
  RotationKind kind = RotationKind::Ca;
  std::string name;              // "kubernetes-ca" | "etcd-ca" | "front-proxy-ca" | "encryption-key" | "service-account-key"
  int phase = 1;                 // 1..last_phase(kind)
  std::string phase_started_at;  // RFC 3339, when `kbundle rotate` entered this phase
  bool generated = false;        // a committed gen has written this phase's bundles (set by gen's commit)
  bool operator==(const Rotation&) const = default;
};

int last_phase(RotationKind kind);                    // ca: 3, encryption-key: 4, service-account-key: 3
std::string phase_title(RotationKind kind, int phase);  // one line: what this phase's generation changes
const char* to_string(RotationKind kind);             // "ca", "encryption-key", "service-account-key"
// The kind a rotation name belongs to ("etcd-ca" -> Ca); nullopt-free: throws kb::Error for an unknown name.
RotationKind rotation_kind_of(const std::string& name);

// The state's name of a CA ("etcd-ca") and back (throws kb::Error naming the three for another name).
const char* ca_name(CaName which);
CaName ca_by_name(const std::string& name);

// The PEM bundle a node trusts for `which`: the CA alone; old + new in CA phases 1-2; new alone in 3.
std::string trust_bundle(const State& state, CaName which);
// The CA that signs leaves now: old in phase 1, new in phases 2-3. State::leaf() reissues a stored
// leaf whose issuer is not this CA (reason "CA rotation: <name> phase 2").
const CertificateAuthority& signing_ca(const State& state, CaName which);

// The rotation files a CA rotation keeps below STATE/rotation/: "<name>.crt", "<name>.key".
std::string ca_rotation_cert_file(CaName which);
std::string ca_rotation_key_file(CaName which);

}  // namespace kb
