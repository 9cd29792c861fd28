#!/usr/bin/env bash
# Issue 13, item 2: signing-key rollover with the real binaries. kbundle rotate signing-key, gen,
# and kbundle-installer on applied roots: K0 -> K1 through the statement, K0 refused after, a
# node still at K0 reaches K2 through two statements, a node never installed takes the new
# fingerprint, and a kill -9 at every fault point of a rollover apply leaves exactly one pin.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/installer_lib.bash"
N=control-0 S=$WORK/state
gen() { "$KBUNDLE" gen --no-binaries --topology "${2:-$EXAMPLE}" --state "${3:-$S}" --out "$WORK/$1" >"$WORK/gen-$1.log" 2>&1 || { cat "$WORK/gen-$1.log" >&2; fail "gen $1"; }; }
fp() { cat "$WORK/$1/bundle-signing.sha256"; }
pinned() { inst --root "$1" status | sed -n 's/^pinned signing key sha256:\([0-9a-f]*\), rollover serial \([0-9]*\)$/\1 \2/p'; }

expect 1 "no state to rotate" "$KBUNDLE" rotate signing-key --topology "$EXAMPLE" --state "$WORK/nostate"
[ ! -e "$WORK/nostate" ] || fail "rotate created a state"

gen o0                                       # K0
cp -a "$S" "$WORK/state-k0"                  # to sign later bundles with the retired key
new_root "$WORK/a" && new_root "$WORK/b"
for r in a b; do inst --root "$WORK/$r" --node $N --trust-key "$WORK/o0/bundle-signing.pub" apply "$WORK/o0/$N.kbundle" >/dev/null 2>&1 || fail "apply K0 on $r"; done
[ "$(pinned "$WORK/a")" = "$(fp o0) 0" ] || fail "K0 not pinned at serial 0: $(pinned "$WORK/a")"

expect 0 "rollover serial 1" "$KBUNDLE" rotate signing-key --topology "$EXAMPLE" --state "$S"
gen o1                                       # K1, with statement 1
[ "$(fp o1)" != "$(fp o0)" ] || fail "gen after rotate still signs with K0"
tar -tf "$WORK/o1/$N.kbundle" >"$WORK/members" || fail "tar cannot list the bundle"
[ "$(head -1 "$WORK/members")" = kbundle/rollover.json ] || fail "the bundle does not carry the chain first"
"$KBUNDLE" inspect "$WORK/o1/$N.kbundle" >/dev/null || fail "inspect with the new bundle-signing.pub"
"$KBUNDLE" inspect --pubkey "$WORK/o0/bundle-signing.pub" "$WORK/o1/$N.kbundle" >/dev/null || fail "inspect from K0 through the chain"
expect 0 "pinned signing key sha256:$(fp o1) (rollover serial 1)" inst --root "$WORK/a" --node $N apply "$WORK/o1/$N.kbundle"
[ "$(pinned "$WORK/a")" = "$(fp o1) 1" ] || fail "K1 not pinned at serial 1"
[ ! -e "$WORK/a/etc/kbundle/trust.pub" ] || fail "a second pin file"

# A bundle signed by the retired K0 with a higher serial: refused, naming the pin, nothing changed.
sed 's/host: api.kthw.example.com/host: api2.kthw.example.com/' "$EXAMPLE" >"$WORK/t2.yaml"
gen oldkey "$WORK/t2.yaml" "$WORK/state-k0"
before=$(snap "$WORK/a")
expect 3 "This node pins sha256:$(fp o1) at rollover serial 1" inst --root "$WORK/a" --node $N apply "$WORK/oldkey/$N.kbundle"
[ "$(snap "$WORK/a")" = "$before" ] || fail "the refused K0 bundle changed the root"
# Rotate again: K2. Node a (K1) takes one statement, node b (still K0) two.
"$KBUNDLE" rotate signing-key --topology "$EXAMPLE" --state "$S" >/dev/null || fail "rotate 2"
gen o2 "$WORK/t2.yaml"
for r in a b; do
  expect 0 "rollover serial 2" inst --root "$WORK/$r" --node $N apply "$WORK/o2/$N.kbundle"
  [ "$(pinned "$WORK/$r")" = "$(fp o2) 2" ] || fail "$r: K2 not pinned at serial 2"
done
# A node never installed: the new fingerprint with the bundle-signing.pub next to the bundle.
new_root "$WORK/c"
inst --root "$WORK/c" --node $N --trust-fingerprint "sha256:$(fp o2)" apply "$WORK/o2/$N.kbundle" >/dev/null 2>&1 || fail "fresh node with the new fingerprint"
[ "$(pinned "$WORK/c")" = "$(fp o2) 2" ] || fail "fresh node: not K2 at serial 2"
# The old fingerprint no longer matches the published key: refused, fail closed.
new_root "$WORK/d"
expect 3 "is not the one given" inst --root "$WORK/d" --node $N --trust-fingerprint "sha256:$(fp o0)" apply "$WORK/o2/$N.kbundle"

# kill -9 at every fault point of the K0 -> K1 apply: after recover, exactly one pin, and it is the
# key of the installed generation; the next apply reaches K1.
new_root "$WORK/t0"
inst --root "$WORK/t0" --node $N --trust-key "$WORK/o0/bundle-signing.pub" apply "$WORK/o0/$N.kbundle" >/dev/null 2>&1 || fail "template"
rm -rf "$WORK/list" && cp -a "$WORK/t0" "$WORK/list"
mapfile -t points < <(KB_FAULT_LIST=1 inst --root "$WORK/list" --node $N apply "$WORK/o1/$N.kbundle" 2>&1 >/dev/null | sed -n 's/^kb-fault-point: //p')
[ ${#points[@]} -ge 8 ] || fail "only ${#points[@]} fault points listed"
printf '%s\n' "${points[@]}" | grep -qx after-commit-pin || fail "no after-commit-pin point"
old=0 new=0
for p in "${points[@]}"; do
  rm -rf "$WORK/r" && cp -a "$WORK/t0" "$WORK/r"
  rc=0; KB_FAULT_POINT=$p inst --root "$WORK/r" --node $N apply "$WORK/o1/$N.kbundle" >/dev/null 2>&1 || rc=$?
  [ $rc -eq 137 ] || fail "fault point $p: exit $rc, expected SIGKILL"
  inst --root "$WORK/r" recover >"$WORK/recover.log" 2>&1 || { cat "$WORK/recover.log" >&2; fail "recover after $p"; }
  n=$(ls "$WORK/r/etc/kbundle" | grep -c '^trust\.' || true)
  [ "$n" = 1 ] || fail "after $p: $n pin files"
  serial=$(inst --root "$WORK/r" --json status 2>/dev/null | sed -n 's/.*"serial":\([0-9]*\).*/\1/p')
  case "$(pinned "$WORK/r") $serial" in
    "$(fp o0) 0 1") old=$((old + 1)) ;;
    "$(fp o1) 1 2") new=$((new + 1)) ;;
    *) fail "after $p: pin $(pinned "$WORK/r") with generation $serial" ;;
  esac
  inst --root "$WORK/r" --node $N apply "$WORK/o1/$N.kbundle" >/dev/null 2>&1 || fail "apply after $p"
  [ "$(pinned "$WORK/r")" = "$(fp o1) 1" ] || fail "after $p and a new apply: not K1"
done
pass "rollover K0 -> K1 -> K2 on applied roots, K0 refused after, fresh node by new fingerprint; ${#points[@]} fault points: $old old, $new new, one pin each"
