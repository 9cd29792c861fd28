// Benchmark helper: writes a signed bundle holding one large stand-in binary,
// so that reading and applying a 1 GiB bundle can be measured.
// Usage: kb_bench_make_bundle OUT.kbundle STAND_IN_FILE KEY_OUT_PREFIX
//   writes OUT.kbundle, KEY_OUT_PREFIX.pub (the signing public key).
#include <cstdio>
#include <exception>

#include "base/atomic_file.h"
#include "bundles/bundle_writer.h"
#include "bundles/signing.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s OUT.kbundle STAND_IN_FILE KEY_OUT_PREFIX\n", argv[0]);
    return 2;
  }
  try {
    kb::KeyPairPem keys = kb::generate_signing_key();
    kb::write_file_atomic(std::string(argv[3]) + ".pub", keys.public_pem, 0644);
    kb::SigningKey key(keys.private_pem);
    kb::Manifest header;
    header.cluster_name = "bench";
    header.cluster_id = "00000000-0000-4000-8000-000000000000";
    header.node_name = "worker-0";
    header.role = "worker";
    header.hostname = "worker-0";
    header.private_ip = "10.0.1.20";
    header.serial = 1;
    header.created_at = "2026-01-01T00:00:00Z";
    header.kubernetes_version = "v1.32.3";
    kb::BundleWriter w(header);
    kb::ManifestEntry bin;
    bin.path = "/usr/local/bin/kubelet";
    bin.mode = 0755;
    bin.cls = kb::EntryClass::Binary;
    w.add_file_from_path(bin, argv[2]);
    kb::ManifestEntry cfg;
    cfg.path = "/var/lib/kubelet/kubelet-config.yaml";
    w.add_file(cfg, "kind: KubeletConfiguration\n");
    w.write(argv[1], key);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kb_bench_make_bundle: %s\n", e.what());
    return 1;
  }
  return 0;
}
