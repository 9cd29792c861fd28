#!/usr/bin/env bash
# etcd membership across generations on real nodes (docs/etcd.md, G32): Debian's etcd in
# systemd-nspawn nodes, each installed by kbundle-installer from its signed --no-binaries bundle
# (Debian's etcd and the kube-* stand-ins copied in, as in etcd_nodes.sh):
#   1. three members bootstrap together (--initial-cluster-state=new);
#   2. a fourth node is added: its installer adds it as a learner through an existing member,
#      starts etcd with --initial-cluster-state=existing and promotes it; the others apply next;
#   3. control-1 is replaced (its machine dies; a new empty machine, same name, new IP): the new
#      machine's installer removes the old member, then joins;
#   4. control-3 is removed: control-0's installer removes it after its own healthy apply.
# Before each step a key is written; after it every key is read back from every member, every
# member's endpoint health passes, and the member list is exactly the expected names and peer URLs
# (no learner, none unstarted, no dead member). Each step prints its time (lap).
source "$(dirname "$0")/../integration/lib.bash"
source "$(dirname "$0")/nspawn.bash"
nspawn_require
need etcd etcdctl python3

N=$NSPAWN_NET
BUNDLES=$WORK/bundles  # bound read-only into every node; refreshed after each gen
mkdir -p "$BUNDLES"

# topo FILE NAME=IP...: control-plane nodes only, the API at the first.
topo() {
  local f=$1 n
  shift
  printf 'cluster:\n  name: e2e\n  kubernetesVersion: v1.32.3\n  apiEndpoint: {host: %s, port: 6443}\nnodes:\n' "$N.1" >"$f"
  for n in "$@"; do echo "  - {name: ${n%%=*}, role: control-plane, privateIP: ${n#*=}}" >>"$f"; done
}
gen() {  # gen TOPOLOGY: bundles for it, copied where the nodes see them
  "$KBUNDLE" gen --no-binaries --topology "$1" --state "$WORK/state" --out "$WORK/out" >"$WORK/gen.log" 2>&1 ||
    { cat "$WORK/gen.log" >&2; fail "kbundle gen $1 failed"; }
  grep "etcd:" "$WORK/gen.log" | sed 's/^/    /' || true
  cp "$WORK"/out/*.kbundle "$WORK/out/bundle-signing.pub" "$BUNDLES/"
}
boot() {  # boot NAME IP: a new empty machine
  rm -rf "$(nspawn_dir "$1")"
  nspawn_prepare "$1" "$2"
  nspawn_control_plane_bins "$(nspawn_root "$1")"
  nspawn_boot "$1" --bind-ro="$BUNDLES:/opt/bundles" --bind-ro="$INSTALLER:/usr/local/sbin/kbundle-installer"
  nspawn_wait "$1"
}
apply_on() {  # apply_on NAME: its bundle of the last gen
  node "$1" /usr/local/sbin/kbundle-installer apply --trust-key /opt/bundles/bundle-signing.pub "/opt/bundles/$1.kbundle" \
    >"$WORK/apply-$1.log" 2>&1 || {
    cat "$WORK/apply-$1.log" >&2
    node "$1" journalctl -u etcd.service --no-pager -n 30 >&2 || true
    fail "apply on $1 failed"
  }
  grep "etcd:" "$WORK/apply-$1.log" | sed "s/^/    $1: /" || true
}

KEYS=()
put_key() {  # put_key STEP: a key written before the step, through the members of the moment
  nspawn_etcdctl put "/kbundle/e2e/$1" "value before $1" >/dev/null || fail "cannot write the key before $1"
  KEYS+=("$1")
}
# check NAME=IP...: exactly these members, all started voters, healthy, every key readable from each.
check() {
  local ips=() m want ip k got
  for m in "$@"; do ips+=("${m#*=}"); done
  nspawn_etcd_client control-0 "${ips[@]}"
  nspawn_etcd_healthy || fail "not every member is healthy: $*"
  nspawn_etcdctl endpoint health >"$WORK/health.log" 2>&1 || { cat "$WORK/health.log" >&2; fail "endpoint health failed"; }
  [ "$(grep -c "is healthy" "$WORK/health.log")" -eq $# ] || { cat "$WORK/health.log" >&2; fail "not $# healthy endpoints"; }
  want=$(for m in "$@"; do echo "${m%%=*} https://${m#*=}:2380"; done | sort)
  nspawn_etcdctl member list -w json >"$WORK/members.json" || fail "member list failed"
  got=$(python3 -c '
import json, sys
for m in json.load(open(sys.argv[1]))["members"]:
    print(m.get("name") or "UNSTARTED", " ".join(m.get("peerURLs", [])), "LEARNER" if m.get("isLearner") else "")' "$WORK/members.json" |
    sed 's/ *$//' | sort)
  [ "$got" = "$want" ] || { printf 'members:\n%s\nexpected:\n%s\n' "$got" "$want" >&2; fail "the member list is not exactly $*"; }
  for ip in "${ips[@]}"; do
    for k in "${KEYS[@]}"; do
      got=$(nspawn_etcdctl get "/kbundle/e2e/$k" --print-value-only --endpoints="https://$ip:2379") || fail "cannot read $k from $ip"
      [ "$got" = "value before $k" ] || fail "read '$got' for $k from $ip"
    done
  done
}

C0=control-0=$N.1 C1=control-1=$N.2 C2=control-2=$N.3 C3=control-3=$N.4 C1NEW=control-1=$N.12

# 1. Three members bootstrap together.
nspawn_base
nspawn_net_up
lap "base root and bridge ready"
topo "$WORK/t1.yaml" $C0 $C1 $C2
gen "$WORK/t1.yaml"
for m in $C0 $C1 $C2; do boot "${m%%=*}" "${m#*=}"; done
lap "3 nodes booted"
pids=()
for n in control-0 control-1 control-2; do
  node "$n" /usr/local/sbin/kbundle-installer apply --trust-key /opt/bundles/bundle-signing.pub "/opt/bundles/$n.kbundle" \
    >"$WORK/apply-$n.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || { cat "$WORK"/apply-*.log >&2; fail "the first apply failed"; }; done
nspawn_etcd_client control-0 "$N.1" "$N.2" "$N.3"
put_key bootstrap
check $C0 $C1 $C2
lap "step 1: 3 members bootstrapped, healthy"

# 2. Add control-3: it joins as a learner and is promoted; then the others apply.
etcd_run() { node control-0 systemctl show -p InvocationID --value etcd.service; }  # changes when etcd restarts
etcd_run_before=$(etcd_run)
put_key add
topo "$WORK/t2.yaml" $C0 $C1 $C2 $C3
gen "$WORK/t2.yaml"
boot control-3 "$N.4"
lap "control-3 booted"
apply_on control-3
grep -q "added control-3 (https://$N.4:2380) as a learner" "$WORK/apply-control-3.log" || fail "control-3 was not added as a learner"
grep -q "promoted control-3 to a voting member" "$WORK/apply-control-3.log" || fail "control-3 was not promoted"
[ "$(node control-3 sed -n 's/.*--initial-cluster-state=\([a-z]*\).*/\1/p' /etc/systemd/system/etcd.service)" = existing ] ||
  fail "control-3's etcd unit does not say existing"
lap "step 2: control-3 joined (learner, promoted)"
for n in control-0 control-1 control-2; do apply_on "$n"; done
check $C0 $C1 $C2 $C3
lap "step 2: 4 members healthy, every key on every member"

# 3. Replace control-1: its machine dies, a new empty one with a new IP takes its name.
put_key replace
nspawn_stop control-1
lap "old control-1 stopped (3 of 4 members up)"
topo "$WORK/t3.yaml" $C0 $C1NEW $C2 $C3
gen "$WORK/t3.yaml"
boot control-1 "$N.12"
apply_on control-1
grep -q "removing the replaced member control-1 (https://$N.2:2380" "$WORK/apply-control-1.log" ||
  fail "the new control-1 did not remove the old member first"
grep -q "promoted control-1 to a voting member" "$WORK/apply-control-1.log" || fail "the new control-1 was not promoted"
lap "step 3: control-1 replaced (old removed, new joined)"
for n in control-0 control-2 control-3; do apply_on "$n"; done
check $C0 $C1NEW $C2 $C3
lap "step 3: 4 members healthy, every key on every member"

# 4. Remove control-3: the first remaining node to apply removes it.
put_key remove
topo "$WORK/t4.yaml" $C0 $C1NEW $C2
gen "$WORK/t4.yaml"
apply_on control-0
grep -q "removed member control-3 (https://$N.4:2380" "$WORK/apply-control-0.log" || fail "control-0 did not remove control-3"
lap "step 4: control-3 removed by control-0"
for n in control-1 control-2; do apply_on "$n"; done
grep -q "control-3 (https://$N.4:2380) is not in the cluster (already removed)" "$WORK/apply-control-1.log" ||
  fail "control-1 did not find control-3 already removed"
nspawn_stop control-3
check $C0 $C1NEW $C2
lap "step 4: 3 members healthy, every key on every member"
[ "$(etcd_run)" = "$etcd_run_before" ] || fail "control-0's etcd restarted during the membership changes (its unit must not change)"

# A stale bundle never removes a member added later: re-applying step 4's bundle after etcd's
# epoch moved on is covered by the installer's unit test; here: re-applying removes nothing more.
apply_on control-2
check $C0 $C1NEW $C2

for n in control-0 control-1 control-2; do nspawn_stop "$n"; done
lap "nodes stopped and removed"
lap_table
pass "etcd $(etcd --version | awk 'NR==1 {print $3}'): 3 members -> add a 4th (learner, promoted) -> replace control-1 (new IP, new machine) -> remove control-3; every key on every member after each step, no learner or dead member left"
