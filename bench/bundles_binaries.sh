#!/usr/bin/env bash
# Benchmark: bundles with binaries (issue 5). The example cluster, 3 control
# plane + 3 workers, each node with ~350 MiB of binaries of its role (kubectl
# on both roles) and 30 small config files of its own. Measured in one run:
#   (a) tar --zstd -cf of one control-plane and one worker payload: compressing each role once
#   (b) our 6 bundles, one FrameCache shared by all (kb_bench_bundles_binaries)
#   (c) tar --zstd -cf of each of the 6 node payloads from scratch
# Targets: b/a <= 1.5 and c/b >= 3. The stand-in binaries are real machine code
# (files from /usr concatenated), so they compress like Kubernetes binaries do.
# Usage: bench/bundles_binaries.sh   (KB_BUILD_DIR: a build dir with bench/kb_bench_bundles_binaries)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${KB_BUILD_DIR:-build}
tool=$build/bench/kb_bench_bundles_binaries
tmp=$(mktemp -d /var/tmp/kb-bench-bin.XXXXXX)
if [ -z "${KB_BENCH_KEEP:-}" ]; then trap 'rm -rf "$tmp"' EXIT; else echo "keeping $tmp"; fi
mib=$((1024 * 1024))

# Stand-in binaries, sizes in MiB, cut one after another from /usr's machine code.
cp_bins="kube-apiserver:110 kube-controller-manager:80 kube-scheduler:55 etcd:30 etcdctl:25"
worker_bins="kubelet:100 kube-proxy:60 containerd:55 crictl:45 runc:40"
shared_bins="kubectl:50"
mkdir "$tmp/bin"
find /usr/lib /usr/bin -type f -size +100k 2>/dev/null | sort | while read -r f; do cat "$f"; done 2>/dev/null |
  head -c $((700 * mib)) > "$tmp/pool" || true
off=0
for spec in $cp_bins $worker_bins $shared_bins; do
  name=${spec%%:*}; size=$((${spec##*:} * mib))
  tail -c +$((off + 1)) "$tmp/pool" | head -c "$size" > "$tmp/bin/$name" || true
  off=$((off + size))
done
rm -f "$tmp/pool"

# Node payload trees: the role's binaries (hard links) and 30 distinct config files.
nodes="cp-1 cp-2 cp-3 worker-1 worker-2 worker-3"
for n in $nodes; do
  case $n in cp-*) bins="$cp_bins $shared_bins" ;; *) bins="$worker_bins $shared_bins" ;; esac
  mkdir -p "$tmp/payload/$n/usr/local/bin" "$tmp/payload/$n/etc/kubernetes"
  for spec in $bins; do ln "$tmp/bin/${spec%%:*}" "$tmp/payload/$n/usr/local/bin/"; done
  for i in $(seq -w 1 30); do
    { echo "# $n config $i"; head -c $((1000 + 100 * 10#$i)) /dev/urandom | base64; } > "$tmp/payload/$n/etc/kubernetes/conf-$i.yaml"
  done
done
cat "$tmp"/bin/* > /dev/null  # the same warm page cache for every run
total_mib=$(du -scbL "$tmp/payload/cp-1" "$tmp/payload/worker-1" | tail -1 | awk -v m=$mib '{printf "%.0f", $1 / m}')

# Each timed step starts with no dirty pages left by the one before (sync): without it, the
# step after (a) paid for writing back (a)'s output (b ran 4.5-4.9 s instead of 3.1-3.6 s).
timed() { sync; /usr/bin/time -f '%e %M %U %S' -o "$1" bash -c "$2"; }
mkdir "$tmp/a" "$tmp/b" "$tmp/c"
timed "$tmp/a.time" "for n in cp-1 worker-1; do tar --zstd -cf '$tmp/a/'\$n.tar.zst -C '$tmp/payload/'\$n .; done"
timed "$tmp/b.time" "'$tool' '$tmp/b' '$tmp/payload' '$tmp/key' > '$tmp/b.out'"
timed "$tmp/c.time" "for n in $nodes; do tar --zstd -cf '$tmp/c/'\$n.tar.zst -C '$tmp/payload/'\$n .; done"
"$tool" verify "$tmp/key.pub" "$tmp"/b/*.kbundle

read -r as am au ak < "$tmp/a.time"; read -r bs bm bu bk < "$tmp/b.time"; read -r cs cm cu ck < "$tmp/c.time"
size() { du -cb "$@" | tail -1 | awk -v m=$mib '{printf "%.1f", $1 / m}'; }
printf 'bundles with binaries: 3 control plane + 3 workers, %s MiB of distinct payload (cp + worker) (zstd %s)\n' \
  "$total_mib" "$(zstd --version | grep -o 'v[0-9.]*' | head -1)"
printf '  (a) tar --zstd, one cp + one worker payload  %7.2f s  %7s MiB  CPU %6.2f s  peak RSS %5.1f MiB\n' "$as" "$(size "$tmp"/a/*)" "$(awk "BEGIN{print $au+$ak}")" "$(awk "BEGIN{print $am/1024}")"
printf '  (b) 6 bundles, shared FrameCache             %7.2f s  %7s MiB  CPU %6.2f s  peak RSS %5.1f MiB\n' "$bs" "$(size "$tmp"/b/*.kbundle)" "$(awk "BEGIN{print $bu+$bk}")" "$(awk "BEGIN{print $bm/1024}")"
printf '  (c) tar --zstd of each of the 6 payloads     %7.2f s  %7s MiB  CPU %6.2f s  peak RSS %5.1f MiB\n' "$cs" "$(size "$tmp"/c/*)" "$(awk "BEGIN{print $cu+$ck}")" "$(awk "BEGIN{print $cm/1024}")"
printf '      %s\n' "$(cat "$tmp/b.out")"
printf '  wall: b/a %.2f (target <= 1.5)   c/b %.2f (target >= 3)   load average %s\n' \
  "$(awk "BEGIN{print $bs/$as}")" "$(awk "BEGIN{print $cs/$bs}")" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '  CPU:  b/a %.2f                  c/b %.2f\n' \
  "$(awk "BEGIN{print ($bu+$bk)/($au+$ak)}")" "$(awk "BEGIN{print ($cu+$ck)/($bu+$bk)}")"
