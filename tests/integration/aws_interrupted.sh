#!/usr/bin/env bash
# kbundle aws up killed with SIGKILL midway (after a few instances), then run again: it completes,
# and nothing exists twice (one VPC, one subnet, six instances, one route per worker, ...).
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/aws_moto.bash"
start_moto
T=$WORK/topology.yaml
make_topology "$T"

# Read up's progress as it happens; SIGKILL it as soon as it starts launching control-1.
mkfifo "$WORK/progress"
"$KBUNDLE" aws up --topology "$T" >"$WORK/progress" 2>&1 &
pid=$!
killed=0
while IFS= read -r line; do
  echo "$line" >>"$WORK/up1.log"
  if [[ $line == *"launch instance control-1"* ]]; then kill -9 "$pid"; killed=1; break; fi
done <"$WORK/progress"
wait "$pid" 2>/dev/null && true
[ $killed = 1 ] || { cat "$WORK/up1.log" >&2; fail "up finished before it could be interrupted"; }

"$KBUNDLE" aws plan --topology "$T" >"$WORK/plan.log" 2>&1 || { cat "$WORK/plan.log" >&2; fail "plan after the kill failed"; }
grep -q "create vpc" "$WORK/plan.log" && fail "plan wants a second VPC after the kill"
grep -q "launch instance control-0" "$WORK/plan.log" && fail "plan wants a second control-0"
grep -q "launch instance worker-2" "$WORK/plan.log" || fail "plan after the kill has nothing left to do; the kill came too late"

"$KBUNDLE" aws up --topology "$T" >"$WORK/up2.log" 2>&1 || { cat "$WORK/up2.log" >&2; fail "the second up failed"; }
j=$(status_json "$T")
[ "$(jget "$j" 'j["pendingChanges"]')" = "[]" ] || fail "changes still pending after the second up"
[ "$(jget "$j" 'len(j["instances"])'),$(jget "$j" 'len(j["strayInstances"])')" = "6,0" ] || fail "instances: $(jget "$j" 'j["instances"]') strays: $(jget "$j" 'j["strayInstances"]')"
[ "$(jget "$j" 'len(j["routeTable"]["routes"])')" = 5 ] || fail "routes: $(jget "$j" 'j["routeTable"]["routes"]')"  # local, default, 3 pod routes
[ "$(jget "$j" 'len(j["targetGroup"]["targets"])')" = 3 ] || fail "targets: $(jget "$j" 'j["targetGroup"]["targets"]')"
[ "$(jget "$j" 'j["notes"]')" = "[]" ] || fail "duplicates found: $(jget "$j" 'j["notes"]')"
if command -v aws >/dev/null 2>&1; then
  f="Name=tag:kubernetes.io/cluster/kthw,Values=owned"
  a() { aws --endpoint-url "$MOTO_URL" --region us-east-1 --output text "$@"; }
  [ "$(a ec2 describe-vpcs --filters "$f" --query 'length(Vpcs)')" = 1 ] || fail "aws cli: not exactly one VPC"
  [ "$(a ec2 describe-subnets --filters "$f" --query 'length(Subnets)')" = 1 ] || fail "aws cli: not exactly one subnet"
  [ "$(a ec2 describe-internet-gateways --filters "$f" --query 'length(InternetGateways)')" = 1 ] || fail "aws cli: not one gateway"
  [ "$(a ec2 describe-instances --filters "$f" --query 'length(Reservations[].Instances[])')" = 6 ] || fail "aws cli: not 6 instances"
fi
"$KBUNDLE" aws down --topology "$T" --yes >"$WORK/down.log" 2>&1 || { cat "$WORK/down.log" >&2; fail "down failed"; }
[ "$(tagged_left "$T")" = "[]" ] || fail "resources left after down"
pass "killed after $(grep -c . "$WORK/up1.log") progress lines; the next up completed without duplicates"
