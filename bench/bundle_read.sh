#!/usr/bin/env bash
# Benchmark: verifying a 1 GiB bundle streams. Peak memory and wall time of
# `kbundle inspect` (signature + every entry's sha256) against the peer
# baseline in the same run: `zstd -dc BUNDLE | tar -x` then `sha256sum` of the files.
# The stand-in binary is real machine code (files from /usr concatenated), so it
# compresses like Kubernetes binaries do. Usage: bench/bundle_read.sh [SIZE_MiB]
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1024}
build=${KB_BUILD_DIR:-build}
tmp=$(mktemp -d /var/tmp/kb-bench-read.XXXXXX); trap 'rm -rf "$tmp"' EXIT
find /usr/lib /usr/bin -type f -size +100k 2>/dev/null | sort | while read -r f; do cat "$f"; done 2>/dev/null |
  head -c $((size * 1024 * 1024)) > "$tmp/stand-in" || true
t0=$(date +%s.%N)
"$build/bench/kb_bench_make_bundle" "$tmp/b.kbundle" "$tmp/stand-in" "$tmp/key"
t1=$(date +%s.%N)
rm -f "$tmp/stand-in"; sync
bsize=$(stat -c %s "$tmp/b.kbundle")
# Warm the page cache the same way for both; every timed step starts with no dirty pages
# left by the one before (sync), so none pays for another's writeback.
cat "$tmp/b.kbundle" > /dev/null
/usr/bin/time -f '%e %M' -o "$tmp/k.time" "$build/cli/kbundle" inspect --pubkey "$tmp/key.pub" "$tmp/b.kbundle" > /dev/null
mkdir "$tmp/x"
sync
/usr/bin/time -f '%e %M' -o "$tmp/z.time" bash -c "zstd -dc '$tmp/b.kbundle' | tar -x -C '$tmp/x' && find '$tmp/x/files' -type f -exec sha256sum {} + > /dev/null"
# kbundle-installer apply of the same bundle into an empty root, no systemd (issue 4), against
# zstd -dc | tar -x: three alternating rounds, the median of each (single runs vary by +-20% here).
rm -rf "$tmp/x"
for round in 1 2 3; do
  mkdir -p "$tmp/root"; sync
  /usr/bin/time -f '%e %M' -o "$tmp/i.time.$round" "$build/installer/kbundle-installer" --no-systemd --root "$tmp/root" \
    --node worker-0 apply --trust-key "$tmp/key.pub" "$tmp/b.kbundle" > /dev/null
  rm -rf "$tmp/root"; mkdir "$tmp/x"; sync
  /usr/bin/time -f '%e %M' -o "$tmp/t.time.$round" bash -c "zstd -dc '$tmp/b.kbundle' | tar -x -C '$tmp/x'"
  rm -rf "$tmp/x"; sync
  # The floor for a durable install: the same number of bytes written and fsynced, nothing else.
  /usr/bin/time -f '%e %M' -o "$tmp/d.time.$round" dd if=/dev/zero of="$tmp/dd" bs=1M count="$size" conv=fsync status=none
  rm -f "$tmp/dd"
done
median() { sort -n "$@" | sed -n 2p; }
median "$tmp"/i.time.* > "$tmp/i.time"; median "$tmp"/t.time.* > "$tmp/t.time"; median "$tmp"/d.time.* > "$tmp/d.time"
irounds=$(awk '{printf "%s%.2f", (NR>1?"/":""), $1}' "$tmp"/i.time.*); trounds=$(awk '{printf "%s%.2f", (NR>1?"/":""), $1}' "$tmp"/t.time.*)
read -r ks km < "$tmp/k.time"; read -r zs zm < "$tmp/z.time"; read -r is im < "$tmp/i.time"; read -r ts tm < "$tmp/t.time"; read -r ds dm < "$tmp/d.time"
printf 'bundle: %d MiB stand-in binary -> %.0f MiB zstd bundle, written in %.2f s\n' "$size" "$(awk "BEGIN{print $bsize/1048576}")" "$(awk "BEGIN{print $t1-$t0}")"
printf '  kbundle inspect (verify all)    %6.2f s, peak RSS %6.1f MiB\n' "$ks" "$(awk "BEGIN{print $km/1024}")"
printf '  zstd -dc | tar -x; sha256sum    %6.2f s\n' "$zs"
printf '  ratio                           %6.2fx (target: at most 1.5x)\n' "$(awk "BEGIN{print $ks/$zs}")"
printf '  kbundle-installer apply --root  %6.2f s, peak RSS %6.1f MiB (median of %s s)\n' "$is" "$(awk "BEGIN{print $im/1024}")" "$irounds"
printf '  zstd -dc | tar -x               %6.2f s (median of %s s)\n' "$ts" "$trounds"
printf '  ratio                           %6.2fx (target: at most 1.5x)\n' "$(awk "BEGIN{print $is/$ts}")"
printf '  dd %d MiB conv=fsync (disk floor) %6.2f s: apply is %.2fx of it\n' "$size" "$ds" "$(awk "BEGIN{print $is/$ds}")"
