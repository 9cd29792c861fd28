# Shared by the integration tests: paths, temp dirs, skip/fail helpers.
# Each test runs in its own temp dir, removed on success and kept on failure.
set -euo pipefail
KB_SOURCE_DIR=${KB_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
KB_BUILD_DIR=${KB_BUILD_DIR:-$KB_SOURCE_DIR/build}
KBUNDLE=$KB_BUILD_DIR/cli/kbundle
EXAMPLE=$KB_SOURCE_DIR/examples/aws-ha.yaml
TEST_NAME=$(basename "$0" .sh)
WORK=$(mktemp -d "/tmp/kb-$TEST_NAME.XXXXXX")
_cleanups=()
on_exit() {
  local rc=$?
  for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do eval "${_cleanups[$i]}" || true; done
  if [ $rc -eq 0 ] || [ $rc -eq 77 ]; then rm -rf "$WORK"; else echo "$TEST_NAME: work dir kept: $WORK" >&2; fi
}
trap on_exit EXIT
cleanup() { _cleanups+=("$1"); }
skip() { echo "SKIPPED: $TEST_NAME: $*"; exit 77; }
fail() { echo "FAIL: $TEST_NAME: $*" >&2; exit 1; }
pass() { echo "PASS: $TEST_NAME: $*"; }
need() { for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"; done; }
# expect RC PATTERN CMD...: runs CMD; its exit status must be RC and its output hold PATTERN.
expect() {
  local rc=$1 pattern=$2 got=0
  shift 2
  "$@" >"$WORK/out.log" 2>&1 || got=$?
  [ "$got" = "$rc" ] || { cat "$WORK/out.log" >&2; fail "$*: exit $got, expected $rc"; }
  grep -q -- "$pattern" "$WORK/out.log" || { cat "$WORK/out.log" >&2; fail "$*: no '$pattern' in the output"; }
}
[ -x "$KBUNDLE" ] || fail "kbundle not built at $KBUNDLE"

# gen_example [TOPOLOGY] -> $WORK/state, $WORK/out (dir format)
gen_example() {
  "$KBUNDLE" gen --no-binaries --topology "${1:-$EXAMPLE}" --state "$WORK/state" --out "$WORK/out" --format dir >"$WORK/gen.log" 2>&1 ||
    { cat "$WORK/gen.log" >&2; fail "kbundle gen failed"; }
}
