#!/usr/bin/env bash
# Benchmark: issuing certificates. kb_bench_pki (bench/pki_bench.cpp) issues N ECDSA P-256 leaves
# in-process, then N through the state (new, then reused); the openssl command line does the same N
# key+cert+PEM as a peer baseline, one process per certificate as a shell script would.
# Builds nothing. Usage: bench/pki.sh [N]   (KB_BUILD_DIR: a build dir with bench/kb_bench_pki)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
tool=${KB_BUILD_DIR:-build}/bench/kb_bench_pki
[ -x "$tool" ] || { echo "pki.sh: $tool not built (ninja -C ${KB_BUILD_DIR:-build} kb_bench_pki)" >&2; exit 2; }
tmp=$(mktemp -d /tmp/kb-bench-pki.XXXXXX); trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }

echo "kbundle, N=$n"
"$tool" "$n"

if command -v openssl >/dev/null; then
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj /CN=kubernetes-ca \
    -keyout "$tmp/ca.key" -out "$tmp/ca.crt" 2>/dev/null
  t0=$(now)
  for i in $(seq 0 $((n - 1))); do
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
      -subj "/O=system:nodes/CN=system:node:worker-$i" \
      -addext "subjectAltName=DNS:worker-$i,IP:10.1.$((i / 250)).$((i % 250))" \
      -addext "extendedKeyUsage=serverAuth,clientAuth" \
      -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -keyout "$tmp/leaf.key" -out "$tmp/leaf.crt" 2>/dev/null
  done
  printf 'openssl %5d ECDSA key+cert+PEM, 1 process each     %8.3f s  (%s)\n' "$n" \
    "$(awk "BEGIN{print $(now) - $t0}")" "$(openssl version)"
else
  echo "openssl: not installed; no baseline"
fi
