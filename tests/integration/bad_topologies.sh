#!/usr/bin/env bash
# Every broken topology in tests/topology_cases/ is rejected by `kbundle
# validate` and `kbundle gen` with a nonzero exit, the expected message at the
# expected place, and nothing written (no state, no output).
source "$(dirname "$0")/lib.bash"
cases=("$KB_SOURCE_DIR"/tests/topology_cases/*.yaml)
[ -e "${cases[0]}" ] || fail "no cases in tests/topology_cases"
n=0
for f in "${cases[@]}"; do
  expect=$(sed -n '1s/^# expect: //p' "$f")
  line=$(sed -n '2s/^# expect-line: //p' "$f")
  [ -n "$expect" ] || fail "$f: first line must be '# expect: <message>'"
  set +e
  "$KBUNDLE" validate --topology "$f" > "$WORK/v.out" 2> "$WORK/v.err"; vrc=$?
  "$KBUNDLE" gen --no-binaries --topology "$f" --state "$WORK/state" --out "$WORK/out" > "$WORK/g.out" 2> "$WORK/g.err"; grc=$?
  set -e
  [ $vrc -ne 0 ] || fail "$(basename "$f"): validate exited 0"
  [ $grc -ne 0 ] || fail "$(basename "$f"): gen exited 0"
  grep -qF -- "$expect" "$WORK/v.err" || { cat "$WORK/v.err" >&2; fail "$(basename "$f"): validate did not say '$expect'"; }
  grep -qF -- "$expect" "$WORK/g.err" || fail "$(basename "$f"): gen did not say '$expect'"
  if [ -n "$line" ]; then
    grep -F -- "$expect" "$WORK/v.err" | grep >/dev/null -e "$(basename "$f"):$line:" || fail "$(basename "$f"): not reported at line $line: $(cat "$WORK/v.err")"
  fi
  [ ! -e "$WORK/state" ] && [ ! -e "$WORK/out" ] || fail "$(basename "$f"): gen wrote something"
  n=$((n + 1))
done
# An existing output survives a bad topology untouched.
gen_example
snap() { (cd "$WORK/out" && find . -type f -exec sha256sum {} + | sort); }
before=$(snap)
"$KBUNDLE" gen --no-binaries --topology "${cases[0]}" --state "$WORK/state" --out "$WORK/out" >/dev/null 2>&1 && fail "gen accepted a bad topology"
[ "$(snap)" = "$before" ] || fail "a failed gen changed the previous output"
pass "$n broken topologies rejected with the expected message; nothing written"
