#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, fuzz/) into build-fuzz/ (or $KB_FUZZ_BUILD_DIR)
# and runs each for SECONDS (default 60) from the checked-in seed corpus fuzz/corpus/<target>.
# New inputs go to a scratch copy of the corpus (add good ones to fuzz/corpus by hand); a crash,
# leak, sanitizer report or 10 s hang stops with exit 1 and leaves the input as
# <build>/crash-<target>-*. Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
build=${KB_FUZZ_BUILD_DIR:-build-fuzz}
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKB_FUZZ=ON \
  -DKB_STATIC_INSTALLER=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzz_topology fuzz_manifest fuzz_bundle fuzz_cert >/dev/null
status=0
for t in topology manifest bundle cert; do
  work=$(mktemp -d)
  cp -r "fuzz/corpus/$t/." "$work/"
  log=$build/fuzz-$t.log
  if "$build/fuzz/fuzz_$t" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$build/crash-$t-" "$work" >"$log" 2>&1; then
    printf 'fuzz %-9s %s (corpus %d -> %d inputs)\n' "$t" "$(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log" | tail -1)" \
      "$(ls "fuzz/corpus/$t" | wc -l)" "$(ls "$work" | wc -l)"
  else
    status=1
    echo "fuzz $t: FAILED (see $log)"; tail -n 30 "$log"
  fi
  rm -rf "$work"
done
exit $status
