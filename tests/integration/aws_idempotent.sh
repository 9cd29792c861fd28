#!/usr/bin/env bash
# kbundle aws up is idempotent: a second run creates nothing, plan then has nothing to do,
# and the resource ids are unchanged.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/aws_moto.bash"
start_moto
T=$WORK/topology.yaml
make_topology "$T"

"$KBUNDLE" aws up --topology "$T" >"$WORK/up1.log" 2>&1 || { cat "$WORK/up1.log" >&2; fail "first up failed"; }
before=$(status_json "$T")
cp "$T" "$WORK/after-first-up.yaml"
"$KBUNDLE" aws up --topology "$T" >"$WORK/up2.log" 2>&1 || { cat "$WORK/up2.log" >&2; fail "second up failed"; }
grep -q "nothing to create" "$WORK/up2.log" || { cat "$WORK/up2.log" >&2; fail "second up changed something"; }
grep -Eq '^  (create|launch|allow|add|import|register)' "$WORK/up2.log" && fail "second up made a change"
cmp -s "$T" "$WORK/after-first-up.yaml" || fail "second up rewrote the topology"
after=$(status_json "$T")
[ "$before" = "$after" ] || fail "resources differ after the second up"
"$KBUNDLE" aws plan --topology "$T" >"$WORK/plan.log" 2>&1 || fail "plan failed"
grep -q "nothing to do" "$WORK/plan.log" || { cat "$WORK/plan.log" >&2; fail "plan after up is not empty"; }
pass "second up created nothing; same resources; plan empty"
