#!/usr/bin/env bash
# Benchmark: `kbundle gen` of the example cluster against the manual
# openssl+kubectl way (../shared/bench/kthw-baseline.sh, same certificates),
# in the same run; then 1000 workers (time and peak memory). Prints figures.
# Usage: bench/gen.sh [RUNS]   (needs a built build/; run scripts/build.sh first)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
kbundle=${KB_BUILD_DIR:-build}/cli/kbundle
baseline=${KB_BASELINE:-../shared/bench/kthw-baseline.sh}
tmp=$(mktemp -d /tmp/kb-bench.XXXXXX); trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# kbundle, cold (new state: CAs and every key generated) and warm (state reused).
for i in $(seq "$runs"); do
  rm -rf "$tmp/s" "$tmp/o"; t0=$(now)
  "$kbundle" gen --no-binaries --topology examples/aws-ha.yaml --state "$tmp/s" --out "$tmp/o" >/dev/null
  awk "BEGIN{print $(now) - $t0}"
done | median > "$tmp/cold"
for i in $(seq "$runs"); do
  t0=$(now); "$kbundle" gen --no-binaries --topology examples/aws-ha.yaml --state "$tmp/s" --out "$tmp/o" >/dev/null
  awk "BEGIN{print $(now) - $t0}"
done | median > "$tmp/warm"
# The cost of bundles: the same run writing trees instead (--format dir).
for i in $(seq "$runs"); do
  t0=$(now); "$kbundle" gen --no-binaries --topology examples/aws-ha.yaml --state "$tmp/s" --out "$tmp/d" --format dir >/dev/null
  awk "BEGIN{print $(now) - $t0}"
done | median > "$tmp/dir"

base="n/a"
if [ -x "$baseline" ] && command -v kubectl >/dev/null; then
  for i in $(seq "$(( runs < 3 ? runs : 3 ))"); do
    t0=$(now); "$baseline" "$tmp/kthw" 3 3 ec >/dev/null 2>&1; awk "BEGIN{print $(now) - $t0}"
  done | median > "$tmp/base"
  base=$(cat "$tmp/base")
fi
cold=$(cat "$tmp/cold"); warm=$(cat "$tmp/warm"); dir=$(cat "$tmp/dir")
printf 'example cluster (3 control plane + 3 workers, ECDSA P-256), median of %s runs\n' "$runs"
printf '  kbundle gen, new state   %8.3f s\n' "$cold"
printf '  kbundle gen, state reused%8.3f s (6 signed bundles)\n' "$warm"
printf '  same, --format dir       %8.3f s (bundles add %.0f%%)\n' "$dir" "$(awk "BEGIN{print ($warm / $dir - 1) * 100}")"
if [ "$base" != n/a ]; then
  printf '  kthw-baseline.sh         %8.3f s\n' "$base"
  printf '  speed-up (new state)     %8.1fx\n' "$(awk "BEGIN{print $base / $cold}")"
fi

# 1000 workers.
python3 - "$tmp/big.yaml" <<'PY'
import sys
lines = ["cluster:", "  name: big", "  kubernetesVersion: v1.32.3", "  apiEndpoint: {host: api.big.example.com}",
         "  podCIDR: 10.128.0.0/9", "  serviceCIDR: 10.96.0.0/24", "nodes:"]
for i in range(3):
    lines.append(f"  - {{name: control-{i}, role: control-plane, privateIP: 10.0.0.{10+i}}}")
for i in range(1000):
    lines.append(f"  - {{name: worker-{i}, role: worker, privateIP: 10.0.{4 + i // 250}.{i % 250 + 1}}}")
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
rm -rf "$tmp/bs" "$tmp/bo"
/usr/bin/time -f '%e %M' -o "$tmp/big.time" "$kbundle" gen --no-binaries --topology "$tmp/big.yaml" --state "$tmp/bs" --out "$tmp/bo" >/dev/null
read -r secs kb < "$tmp/big.time"
/usr/bin/time -f '%e %M' -o "$tmp/big2.time" "$kbundle" gen --no-binaries --topology "$tmp/big.yaml" --state "$tmp/bs" --out "$tmp/bo" >/dev/null
read -r secs2 kb2 < "$tmp/big2.time"
files=$(find "$tmp/bo" -type f | wc -l)
printf '1003 nodes (3 + 1000 workers), %s files\n' "$files"
printf '  new state                %8.2f s, peak RSS %6.1f MiB\n' "$secs" "$(awk "BEGIN{print $kb / 1024}")"
printf '  state reused             %8.2f s, peak RSS %6.1f MiB\n' "$secs2" "$(awk "BEGIN{print $kb2 / 1024}")"
