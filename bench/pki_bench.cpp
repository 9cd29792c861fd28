// Certificate issuing figures, moved out of the unit tests so that they neither slow them down nor
// fail on a busy machine. Prints, for N ECDSA P-256 leaves (default 2000):
//   pki:   key + cert + PEM, one thread (generator/pki.h directly)
//   state: N new leaves + commit, 2 threads; then the same N checked and reused (generator/state.h)
// Usage: kb_bench_pki [N]   (bench/pki.sh runs it beside openssl doing the same work)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "generator/pki.h"
#include "generator/state.h"

using namespace kb;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

CertRequest kubelet_request(int i) {
  CertRequest r;
  r.common_name = "system:node:worker-" + std::to_string(i);
  r.organizations = {"system:nodes"};
  r.client_auth = r.server_auth = true;
  r.dns_names = {"worker-" + std::to_string(i)};
  r.ip_addresses = {"10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250)};
  return r;
}

// Asks `state` for every worker's kubelet cert from two threads; returns how many were (re)issued.
int issue_all(State& state, int leaves) {
  std::atomic<int> reissued{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      for (int i = t; i < leaves; i += 2)
        if (state.leaf("worker-" + std::to_string(i), "kubelet", CaName::Kubernetes, kubelet_request(i)).reissued) ++reissued;
    });
  for (auto& th : threads) th.join();
  return reissued;
}

}  // namespace

int main(int argc, char** argv) {
  const int leaves = argc > 1 ? std::atoi(argv[1]) : 2000;
  if (leaves <= 0) {
    std::fprintf(stderr, "usage: kb_bench_pki [N > 0]\n");
    return 2;
  }

  const std::time_t now = std::time(nullptr);
  CertificateAuthority ca = make_ca("kubernetes-ca", "kubernetes-ca", KeyType::EcdsaP256, 3650, now);
  auto start = Clock::now();
  size_t bytes = 0;
  for (int i = 0; i < leaves; ++i) {
    PkeyPtr key = generate_key(KeyType::EcdsaP256);
    X509Ptr cert = issue_cert(ca, key.get(), kubelet_request(i), 365, now);
    bytes += cert_pem(cert.get()).size() + private_key_pem(key.get()).size();
  }
  std::printf("pki    %6d ECDSA key+cert+PEM, 1 thread           %8.3f s  (%zu bytes of PEM)\n", leaves,
              seconds_since(start), bytes);

  std::string dir = (std::filesystem::temp_directory_path() / "kb-bench-pki.XXXXXX").string();
  if (!::mkdtemp(dir.data())) {
    std::perror("mkdtemp");
    return 1;
  }
  Topology topology;
  topology.cluster.name = "bench";
  int status = 0;
  {
    auto state = State::open(dir + "/state", topology, now);
    start = Clock::now();
    int issued = issue_all(*state, leaves);
    state->commit();
    std::printf("state  %6d new leaves + commit, 2 threads          %8.3f s\n", issued, seconds_since(start));
    if (issued != leaves) status = 1;
  }
  {
    auto state = State::open(dir + "/state", topology, now);
    start = Clock::now();
    int issued = issue_all(*state, leaves);
    state->commit();
    std::printf("state  %6d leaves checked and reused, 2 threads    %8.3f s\n", leaves - issued, seconds_since(start));
    if (issued != 0) status = 1;
  }
  std::filesystem::remove_all(dir);
  if (status) std::fprintf(stderr, "kb_bench_pki: unexpected (re)issue count\n");
  return status;
}
