#!/usr/bin/env bash
# A short libFuzzer run (docs/RELIABILITY.md, G20) of the topology parser, the manifest parser, the
# bundle reader/extractor and the certificate inventory, under ASan + UBSan, from the checked-in corpus: scripts/fuzz.sh with
# 20 s per target, built in $KB_BUILD_DIR/fuzz. Any crash, sanitizer report, leak or hang fails it.
source "$(dirname "$0")/../integration/lib.bash"
need clang++
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
  skip "libFuzzer is not installed (Debian: libclang-rt-14-dev, pulled in by clang)"
KB_FUZZ_BUILD_DIR=$KB_BUILD_DIR/fuzz "$KB_SOURCE_DIR/scripts/fuzz.sh" "${KB_FUZZ_SECONDS:-20}" >"$WORK/fuzz.log" 2>&1 ||
  { cat "$WORK/fuzz.log" >&2; fail "the fuzzers found a problem (inputs kept in $KB_BUILD_DIR/fuzz/crash-*)"; }
cat "$WORK/fuzz.log"
[ "$(grep -c '^fuzz .* Done [0-9]* runs' "$WORK/fuzz.log")" = 4 ] || fail "not every fuzzer ran"
pass "4 fuzzers, ${KB_FUZZ_SECONDS:-20} s each, nothing found"
