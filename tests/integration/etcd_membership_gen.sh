#!/usr/bin/env bash
# gen and etcd membership (docs/etcd.md, G32), without nodes:
#   - the first gen bootstraps: every control-plane node's etcd starts with state new;
#   - a control-plane node added later gets --initial-cluster-state=existing and the existing
#     members plus itself; the other members' etcd.service stays byte for byte the same;
#   - every control-plane bundle carries /etc/etcd/membership.json (the removals, the epoch);
#   - refused with exit 3, every problem listed and nothing written (state and output unchanged):
#     two changes at once (two added, one added and one removed, two replaced), removals below
#     the recorded quorum (2 -> 1, replacing one of two, the last member), a change in a --node run;
#   - a damaged STATE/etcd.json is refused by name; a state without one (an older kbundle) counts
#     as bootstrapped with the control-plane nodes it issued etcd certificates for.
source "$(dirname "$0")/lib.bash"
snap() { (cd "$1" && find . -type f ! -name .lock -exec sha256sum {} + | sort); }

# topo FILE NAME=IP...: control-plane nodes, plus one worker.
topo() {
  local f=$1 n
  shift
  cat >"$f" <<YAML
cluster:
  name: etcdgen
  kubernetesVersion: v1.32.3
  apiEndpoint: {host: 10.9.0.1, port: 6443}
nodes:
YAML
  for n in "$@"; do echo "  - {name: ${n%%=*}, role: control-plane, privateIP: ${n#*=}}" >>"$f"; done
  echo "  - {name: worker-0, role: worker, privateIP: 10.9.0.50}" >>"$f"
}
gen() {  # gen TOPOLOGY [ARGS...] -> exit code in $rc, output in $WORK/gen.log
  rc=0
  "$KBUNDLE" gen --no-binaries --format dir --topology "$1" --state "$WORK/state" --out "$WORK/out" "${@:2}" >"$WORK/gen.log" 2>&1 || rc=$?
}
unit() { cat "$WORK/out/$1/etc/systemd/system/etcd.service"; }
flag() { unit "$1" | sed -n "s/.*--$2=\([^ ]*\).*/\1/p"; }

C0=control-0=10.9.0.1 C1=control-1=10.9.0.2 C2=control-2=10.9.0.3 C3=control-3=10.9.0.4 C4=control-4=10.9.0.5

# 1. Bootstrap.
topo "$WORK/t3.yaml" $C0 $C1 $C2
gen "$WORK/t3.yaml"
[ $rc -eq 0 ] || { cat "$WORK/gen.log" >&2; fail "first gen failed"; }
grep -q "etcd: new cluster of 3 members" "$WORK/gen.log" || { cat "$WORK/gen.log" >&2; fail "gen did not say it bootstraps etcd"; }
for n in control-0 control-1 control-2; do
  [ "$(flag $n initial-cluster-state)" = new ] || fail "$n: not --initial-cluster-state=new on the first gen"
  [ "$(flag $n initial-cluster)" = "control-0=https://10.9.0.1:2380,control-1=https://10.9.0.2:2380,control-2=https://10.9.0.3:2380" ] ||
    fail "$n: --initial-cluster is $(flag $n initial-cluster)"
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["epoch"]==1 and j["remove"]==[] and j["initial_cluster_state"]=="new", j' \
    "$WORK/out/$n/etc/etcd/membership.json" || fail "$n: membership.json"
done
[ ! -e "$WORK/out/worker-0/etc/etcd" ] || fail "a worker got etcd files"
[ "$(stat -c %a "$WORK/state/etcd.json")" = 600 ] || fail "state/etcd.json is not 0600"
unit control-0 >"$WORK/c0.unit"

# A state made before etcd.json existed (an older kbundle): its generated control-plane nodes count
# as the bootstrapped members, so nothing changes and the record is written.
rm "$WORK/state/etcd.json"
gen "$WORK/t3.yaml"
[ $rc -eq 0 ] || { cat "$WORK/gen.log" >&2; fail "gen on a state without etcd.json failed"; }
grep -q "etcd: members unchanged (3:" "$WORK/gen.log" || { cat "$WORK/gen.log" >&2; fail "a state without etcd.json was not read as bootstrapped"; }
unit control-0 | cmp -s - "$WORK/c0.unit" || fail "a state without etcd.json changed control-0's etcd.service"
[ -f "$WORK/state/etcd.json" ] || fail "etcd.json was not written"

# 2. Refused changes: exit 3, each problem named, nothing written.
refused() {  # refused WHAT PATTERN TOPOLOGY [ARGS...]
  local what=$1 pattern=$2 out_before state_before
  shift 2
  out_before=$(snap "$WORK/out"); state_before=$(snap "$WORK/state")
  gen "$@"
  [ $rc -eq 3 ] || { cat "$WORK/gen.log" >&2; fail "$what: exit $rc, not 3"; }
  grep -q -- "$pattern" "$WORK/gen.log" || { cat "$WORK/gen.log" >&2; fail "$what: no '$pattern'"; }
  grep -q "nothing was written" "$WORK/gen.log" || fail "$what: does not say nothing was written"
  [ "$(snap "$WORK/out")" = "$out_before" ] || fail "$what: the output changed"
  [ "$(snap "$WORK/state")" = "$state_before" ] || fail "$what: the state changed"
}
topo "$WORK/t.yaml" $C0 $C1 $C2 $C3 $C4
refused "two added" "changes 2 etcd members at once (control-3, control-4)" "$WORK/t.yaml"
topo "$WORK/t.yaml" $C0 $C1 $C3
refused "one added, one removed" "changes 2 etcd members at once (control-2, control-3)" "$WORK/t.yaml"
topo "$WORK/t.yaml" $C0 control-1=10.9.0.12 control-2=10.9.0.13
refused "two replaced" "changes 2 etcd members at once (control-1, control-2)" "$WORK/t.yaml"
topo "$WORK/t.yaml" $C0
refused "two removed" "below the quorum of 2" "$WORK/t.yaml"
topo "$WORK/t4.yaml" $C0 $C1 $C2 $C3
refused "a --node run" "a --node run cannot change etcd membership" "$WORK/t4.yaml" --node control-3

# 3. Add a fourth: it joins; nobody else's etcd unit changes.
gen "$WORK/t4.yaml"
[ $rc -eq 0 ] || { cat "$WORK/gen.log" >&2; fail "adding control-3 failed"; }
grep -q "etcd: add member control-3 (https://10.9.0.4:2380)" "$WORK/gen.log" || { cat "$WORK/gen.log" >&2; fail "gen did not describe the add"; }
grep -q "etcd: risk: 4 members tolerate as many failures as 3" "$WORK/gen.log" || fail "gen did not say the even-count risk"
[ "$(flag control-3 initial-cluster-state)" = existing ] || fail "control-3: not --initial-cluster-state=existing"
[ "$(flag control-3 initial-cluster)" = "control-0=https://10.9.0.1:2380,control-1=https://10.9.0.2:2380,control-2=https://10.9.0.3:2380,control-3=https://10.9.0.4:2380" ] ||
  fail "control-3: --initial-cluster is $(flag control-3 initial-cluster)"
unit control-0 | cmp -s - "$WORK/c0.unit" || fail "adding a member changed control-0's etcd.service (etcd would restart)"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["epoch"]==2 and j["initial_cluster_state"]=="existing" and len(j["members"])==4, j' \
  "$WORK/out/control-3/etc/etcd/membership.json" || fail "control-3: membership.json"

# 4. Replace control-1 (same name, new IP): one change; its unit says existing.
topo "$WORK/t.yaml" $C0 control-1=10.9.0.12 $C2 $C3
gen "$WORK/t.yaml"
[ $rc -eq 0 ] || { cat "$WORK/gen.log" >&2; fail "replacing control-1 failed"; }
grep -q "remove member control-1 (https://10.9.0.2:2380): replaced" "$WORK/gen.log" || { cat "$WORK/gen.log" >&2; fail "no replacement step"; }
[ "$(flag control-1 initial-cluster-state)" = existing ] || fail "replaced control-1: not existing"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["remove"]==[{"name":"control-1","peer_url":"https://10.9.0.2:2380"}] and j["epoch"]==3, j' \
  "$WORK/out/control-0/etc/etcd/membership.json" || fail "control-0 does not carry the removal of the old control-1"

# 5. Remove control-3: allowed (4 -> 3); then a 2-member cluster may not lose one.
topo "$WORK/t.yaml" $C0 control-1=10.9.0.12 $C2
gen "$WORK/t.yaml"
[ $rc -eq 0 ] || { cat "$WORK/gen.log" >&2; fail "removing control-3 failed"; }
[ ! -e "$WORK/out/control-3" ] || fail "out/control-3 is still there"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["remove"]==[{"name":"control-3","peer_url":"https://10.9.0.4:2380"}] and j["epoch"]==4, j' \
  "$WORK/out/control-2/etc/etcd/membership.json" || fail "control-2 does not carry the removal of control-3"
topo "$WORK/t.yaml" $C0 control-1=10.9.0.12
gen "$WORK/t.yaml"
[ $rc -eq 0 ] || { cat "$WORK/gen.log" >&2; fail "3 -> 2 failed"; }
grep -q "etcd: risk: 2 members" "$WORK/gen.log" || fail "3 -> 2 did not say the risk"
topo "$WORK/t.yaml" $C0
refused "2 -> 1" "leaves 1, below the quorum of 2" "$WORK/t.yaml"
topo "$WORK/t.yaml" $C0 control-1=10.9.0.22
refused "replacing one of two" "below the quorum of 2" "$WORK/t.yaml"

# 6. A damaged record is refused by name, nothing written.
cp "$WORK/state/etcd.json" "$WORK/etcd.json.good"
echo '{"version": 1, "epoch": "x", "members": []}' >"$WORK/state/etcd.json"
topo "$WORK/t.yaml" $C0 control-1=10.9.0.12
out_before=$(snap "$WORK/out")
gen "$WORK/t.yaml"
[ $rc -ne 0 ] || fail "a damaged etcd.json was accepted"
grep -q "state/etcd.json: damaged state: \"epoch\" is not a positive integer" "$WORK/gen.log" || { cat "$WORK/gen.log" >&2; fail "damaged etcd.json not named"; }
[ "$(snap "$WORK/out")" = "$out_before" ] || fail "a damaged etcd.json changed the output"
pass "bootstrap new, a joiner existing with the right --initial-cluster, other units unchanged; two changes, below-quorum removals, --node changes and a damaged record refused"
