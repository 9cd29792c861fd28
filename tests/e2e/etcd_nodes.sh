#!/usr/bin/env bash
# Three real control-plane nodes (systemd-nspawn, systemd as PID 1, one IP each on
# a private bridge) installed by kbundle-installer from their signed bundles:
#   1. apply on all three in parallel (etcd needs quorum): every unit starts and the
#      installer's health gate passes; from the host, over the bridge, etcdctl with
#      the apiserver's etcd client cert sees a healthy 3-member cluster (mutual TLS)
#      and can write and read;
#   2. re-applying the same bundle on one node restarts nothing (G12);
#   3. a validly signed bundle with serial+1 whose etcd cannot start (an unknown
#      flag in etcd.service) fails the health gate and is rolled back: exit code 4,
#      the old unit file is back, nothing drifted, and the cluster stays healthy (G9).
#
# What runs in the nodes: Debian's etcd (copied to /usr/local/bin/etcd: bundles do
# not carry binaries yet, issue 5) and, for kube-apiserver, kube-controller-manager
# and kube-scheduler, the stand-in tests/e2e/kube-standin. The stand-ins check that
# every file their unit's flags name exists and answer the bundle's own health
# checks (kube-apiserver with the bundle's serving cert, verified by the installer
# against the bundle's CA), so the installer runs the generated units and all four
# health checks unchanged; kube-apiserver's (tests/standins/kube-api-standin.py) also takes
# control-0's server-side apply of the bootstrap objects. The broken bundle of step 3 also caps its health checks
# at 10 s (the generated etcd check waits 120 s); nothing else differs.
source "$(dirname "$0")/../integration/lib.bash"
source "$(dirname "$0")/nspawn.bash"
nspawn_require
need etcd etcdctl openssl

names=(control-0 control-1 control-2)
ips=("$NSPAWN_NET.1" "$NSPAWN_NET.2" "$NSPAWN_NET.3")
nspawn_control_plane_topology "$WORK/topology.yaml"
"$KBUNDLE" gen --no-binaries --topology "$WORK/topology.yaml" --state "$WORK/state" --out "$WORK/out" >"$WORK/gen.log" 2>&1 ||
  { cat "$WORK/gen.log" >&2; fail "kbundle gen failed"; }
BUNDLES=$WORK/out

# Nodes: overlay roots on the cached Debian base, Debian's etcd and the stand-ins, then boot.
nspawn_base
lap "base root ready"
nspawn_net_up
for i in 0 1 2; do
  nspawn_prepare "${names[$i]}" "${ips[$i]}"
  root=$(nspawn_root "${names[$i]}")
  nspawn_control_plane_bins "$root"
  nspawn_boot "${names[$i]}" --bind-ro="$BUNDLES:/opt/bundles" \
    --bind-ro="$INSTALLER:/usr/local/sbin/kbundle-installer"
done
for n in "${names[@]}"; do nspawn_wait "$n"; done
lap "3 nodes booted"

unit_starts() {  # every unit's invocation id and main pid start time: changes whenever it (re)starts
  node "$1" systemctl show -p Id -p InvocationID -p ExecMainStartTimestampMonotonic \
    etcd.service kube-apiserver.service kube-controller-manager.service kube-scheduler.service
}
show_failure() {
  local n=$1
  node "$n" systemctl --no-pager status etcd.service 2>&1 | tail -n 15 >&2 || true
}

# 1. Apply on all three at once.
pids=()
for i in 0 1 2; do
  node "${names[$i]}" /usr/local/sbin/kbundle-installer apply --trust-key /opt/bundles/bundle-signing.pub \
    "/opt/bundles/${names[$i]}.kbundle" >"$WORK/apply-$i.log" 2>&1 &
  pids+=($!)
done
for i in 0 1 2; do
  if ! wait "${pids[$i]}"; then
    cat "$WORK/apply-$i.log" >&2
    show_failure "${names[$i]}"
    fail "apply on ${names[$i]} failed"
  fi
done
lap "applied on 3 nodes in parallel"
for n in "${names[@]}"; do
  for u in etcd kube-apiserver kube-controller-manager kube-scheduler; do
    [ "$(node "$n" systemctl is-active "$u.service")" = active ] || fail "$n: $u.service is not active after apply"
    [ "$(node "$n" systemctl is-enabled "$u.service")" = enabled ] || fail "$n: $u.service is not enabled after apply"
  done
  # The boot-time recovery unit: enabled for the next boot, never started by apply.
  [ "$(node "$n" systemctl is-enabled kbundle-recover.service)" = enabled ] || fail "$n: kbundle-recover.service not enabled"
  [ "$(node "$n" systemctl show -p ActiveEnterTimestampMonotonic --value kbundle-recover.service)" = 0 ] ||
    fail "$n: apply started kbundle-recover.service"
done
grep -q "health etcd: ok" "$WORK/apply-0.log" || { cat "$WORK/apply-0.log" >&2; fail "apply did not report the etcd health check"; }

nspawn_etcd_client "${names[0]}" "${ips[@]}"
nspawn_etcd_check
lap "etcd healthy from the host (mutual TLS)"

# 2. Re-applying the same bundle changes and restarts nothing.
n=${names[1]}
before=$(unit_starts "$n")
unit_file_before=$(node "$n" stat -c '%i %Y' /etc/systemd/system/etcd.service)
node "$n" /usr/local/sbin/kbundle-installer apply "/opt/bundles/$n.kbundle" >"$WORK/reapply.log" 2>&1 ||
  { cat "$WORK/reapply.log" >&2; fail "re-apply on $n failed"; }
after=$(unit_starts "$n")
[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after") >&2; fail "re-apply restarted units on $n"; }
[ "$unit_file_before" = "$(node "$n" stat -c '%i %Y' /etc/systemd/system/etcd.service)" ] ||
  fail "re-apply rewrote etcd.service on $n"
lap "re-apply on $n: no-op"

# 3. A signed bundle (serial+1) whose etcd cannot start is rolled back.
n=${names[2]}
node "$n" cat /etc/systemd/system/etcd.service >"$WORK/etcd.service.good"
sed 's|^ExecStart=\(.*\)etcd \\$|ExecStart=\1etcd --kbundle-e2e-no-such-flag \\|' "$WORK/etcd.service.good" >"$WORK/etcd.service.broken"
grep -q -- --kbundle-e2e-no-such-flag "$WORK/etcd.service.broken" || fail "could not break etcd.service"
"$REBUNDLE" --in "$BUNDLES/$n.kbundle" --pub "$BUNDLES/bundle-signing.pub" --key "$WORK/state/keys/bundle-signing.key" \
  --out "$BUNDLES/$n-broken.kbundle" --serial +1 --health-timeout 10 \
  --replace "/etc/systemd/system/etcd.service=$WORK/etcd.service.broken" >"$WORK/rebundle.log" 2>&1 ||
  { cat "$WORK/rebundle.log" >&2; fail "kb_e2e_rebundle failed"; }
rc=0
node "$n" /usr/local/sbin/kbundle-installer apply "/opt/bundles/$n-broken.kbundle" >"$WORK/broken.log" 2>&1 || rc=$?
[ "$rc" -eq 4 ] || { cat "$WORK/broken.log" >&2; fail "the broken bundle gave exit code $rc, not 4 (health failed, rolled back)"; }
grep -q "health etcd: FAILED" "$WORK/broken.log" || { cat "$WORK/broken.log" >&2; fail "no failed etcd health check reported"; }
cmp -s "$WORK/etcd.service.good" <(node "$n" cat /etc/systemd/system/etcd.service) ||
  fail "$n: etcd.service is not the previous one after the rollback"
node "$n" /usr/local/sbin/kbundle-installer verify >"$WORK/verify.log" 2>&1 ||
  { cat "$WORK/verify.log" >&2; fail "$n: the live files differ from the installed generation after the rollback"; }
nspawn_etcd_healthy || { show_failure "$n"; fail "the cluster is not healthy after the rollback on $n"; }
[ "$(node "$n" systemctl is-active etcd.service)" = active ] || fail "$n: etcd.service is not active after the rollback"
got=$(nspawn_etcdctl get "$NSPAWN_ETCD_KEY" --print-value-only --endpoints="https://${ips[2]}:2379")
[ "$got" = "$NSPAWN_ETCD_VALUE" ] || fail "read back '$got' from $n after the rollback"
lap "broken etcd on $n rolled back, cluster healthy"

for nm in "${names[@]}"; do nspawn_stop "$nm"; done
lap "nodes stopped and removed"
pass "3 nodes installed by kbundle-installer in parallel; etcd $(etcd --version | awk 'NR==1 {print $3}') healthy over mutual TLS; re-apply restarts nothing; a broken etcd rolls back"
