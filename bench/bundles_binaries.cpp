// Benchmark helper: writes the bundles of a 3 control-plane + 3 worker cluster
// whose nodes carry large binaries, with one FrameCache shared by all six, the
// way `kbundle gen` does. See bench/bundles_binaries.sh.
// Usage: kb_bench_bundles_binaries OUT_DIR PAYLOAD_DIR KEY_OUT_PREFIX
//   PAYLOAD_DIR/<node>/... is each node's payload tree (files only, as the
//   reference tar runs see them); writes OUT_DIR/<node>.kbundle and
//   KEY_OUT_PREFIX.pub, and prints one line of cache figures.
//        kb_bench_bundles_binaries verify KEY.pub BUNDLE...
//   verifies each bundle completely (not part of the timed run).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "base/atomic_file.h"
#include "bundles/bundle_reader.h"
#include "bundles/bundle_writer.h"
#include "bundles/signing.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "verify") {
    try {
      std::string pub = kb::read_file(argv[2]);
      for (int i = 3; i < argc; ++i) kb::verify_bundle(argv[i], pub);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kb_bench_bundles_binaries: %s\n", e.what());
      return 1;
    }
    return 0;
  }
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s OUT_DIR PAYLOAD_DIR KEY_OUT_PREFIX\n", argv[0]);
    return 2;
  }
  try {
    std::string out_dir = argv[1], payload = argv[2];
    kb::KeyPairPem keys = kb::generate_signing_key();
    kb::write_file_atomic(std::string(argv[3]) + ".pub", keys.public_pem, 0644);
    kb::SigningKey key(keys.private_pem);
    kb::FrameCache cache(out_dir);
    std::vector<std::string> nodes;
    for (const auto& d : fs::directory_iterator(payload)) nodes.push_back(d.path().filename().string());
    std::sort(nodes.begin(), nodes.end());
    auto t0 = std::chrono::steady_clock::now();
    for (const auto& node : nodes) {
      kb::Manifest header;
      header.cluster_name = "bench";
      header.cluster_id = "00000000-0000-4000-8000-000000000000";
      header.node_name = header.hostname = node;
      header.role = node.rfind("cp-", 0) == 0 ? "control-plane" : "worker";
      header.private_ip = "10.0.1." + std::to_string(10 + (&node - nodes.data()));
      header.serial = 1;
      header.created_at = "2026-01-01T00:00:00Z";  // one gen run: one created_at for every node
      header.kubernetes_version = "v1.32.3";
      kb::BundleWriter w(header);
      std::string root = payload + "/" + node;
      for (const auto& f : fs::recursive_directory_iterator(root)) {
        if (!f.is_regular_file()) continue;
        kb::ManifestEntry e;
        e.path = f.path().string().substr(root.size());
        bool bin = e.path.rfind("/usr/local/bin/", 0) == 0;
        e.mode = bin ? 0755 : 0600;
        e.cls = bin ? kb::EntryClass::Binary : kb::EntryClass::Config;
        w.add_file_from_path(e, f.path().string());
      }
      w.write(out_dir + "/" + node + ".kbundle", key, {kb::Compression::Zstd, 0, &cache});
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    kb::FrameCache::Stats s = cache.stats();
    std::printf("%zu bundles in %.2f s; frames compressed %llu (%.1f MiB), copied from the cache %llu (%.1f MiB)\n",
                nodes.size(), secs, static_cast<unsigned long long>(s.frames), static_cast<double>(s.stored_bytes) / (1 << 20),
                static_cast<unsigned long long>(s.hits), static_cast<double>(s.copied_bytes) / (1 << 20));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kb_bench_bundles_binaries: %s\n", e.what());
    return 1;
  }
  return 0;
}
