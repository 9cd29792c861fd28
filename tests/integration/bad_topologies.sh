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
  # Text from the file is escaped: no control character reaches the terminal raw.
  ! LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$WORK/v.err" "$WORK/g.err" || fail "$(basename "$f"): a control character was printed raw: $(cat -v "$WORK/v.err")"
  n=$((n + 1))
done
# Size limit (docs/topology.md, "Input limits"): a huge sparse file is refused from its size, a
# device after 4 MiB + 1 bytes, both at once.
truncate -s 40G "$WORK/huge.yaml"
for f in "$WORK/huge.yaml" /dev/zero; do
  set +e
  timeout 10 "$KBUNDLE" validate --topology "$f" 2> "$WORK/v.err"; rc=$?
  set -e
  [ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "$f: validate exited $rc"
  grep -q "over the limit of 4 MiB" "$WORK/v.err" || fail "$f: no size message: $(cat "$WORK/v.err")"
done
rm -f "$WORK/huge.yaml"
# A pipe is read up to the limit too, and a topology on stdin is fine.
set +e; yes | timeout 10 "$KBUNDLE" validate --topology /dev/stdin 2> "$WORK/v.err"; rc=$?; set -e
[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "more than 4 MiB, over the limit" "$WORK/v.err" || fail "an endless pipe: exit $rc, $(cat "$WORK/v.err")"
"$KBUNDLE" validate --topology /dev/stdin < "$KB_SOURCE_DIR/examples/aws-ha.yaml" >/dev/null || fail "a topology on stdin was refused"
# The file name is echoed escaped as well (validate, lint, gen).
evil="$WORK/$(printf 'a\033[2Jb')".yaml
cp "$KB_SOURCE_DIR/tests/topology_cases/${cases[0]##*/}" "$evil"
for cmd in validate lint "gen --no-binaries --state $WORK/s2 --out $WORK/o2"; do
  set +e; $KBUNDLE $cmd --topology "$evil" > "$WORK/v.out" 2> "$WORK/v.err"; set -e
  ! LC_ALL=C grep -q $'\x1b' "$WORK/v.out" "$WORK/v.err" || fail "$cmd printed the file name raw: $(cat -v "$WORK/v.err")"
  grep -qF 'a\x1b[2Jb.yaml' "$WORK/v.err" || fail "$cmd: no escaped file name in: $(cat "$WORK/v.err")"
done
# An existing output survives a bad topology untouched.
gen_example
snap() { (cd "$WORK/out" && find . -type f -exec sha256sum {} + | sort); }
before=$(snap)
"$KBUNDLE" gen --no-binaries --topology "${cases[0]}" --state "$WORK/state" --out "$WORK/out" >/dev/null 2>&1 && fail "gen accepted a bad topology"
[ "$(snap)" = "$before" ] || fail "a failed gen changed the previous output"
pass "$n broken topologies rejected with the expected message; nothing written"
