#!/usr/bin/env bash
# etcd disaster recovery with real etcd (Debian's 3.4) in three systemd-nspawn control-plane nodes
# installed from our bundles (docs/backup.md, G39):
#   1. apply on all three; the snapshot timer is active; write 1,000 keys;
#   2. etcd-snapshot.service (the unit the timer starts: `kbundle-installer etcd snapshot`) on control-1;
#      a key written after it must not come back;
#   3. wipe every member's data directory (etcd stopped): the cluster is gone;
#   4. `kbundle restore` refuses a corrupted, a truncated snapshot and one whose .sha256 disagrees
#      (exit 3, state and output unchanged);
#   5. a validly signed restore bundle carrying a corrupt snapshot (its restore.json made to match) is
#      refused by the installer (exit 3) with nothing changed on the node;
#   6. `kbundle restore` with the snapshot, the restore bundles applied on all three at once: the 1,000
#      keys are back (the later key is not), 3 started members under the new cluster token, every
#      member healthy, the old data directories kept aside; the restore timing is printed;
#   7. applying the restore bundle again restores nothing and restarts nothing.
source "$(dirname "$0")/../integration/lib.bash"
source "$(dirname "$0")/nspawn.bash"
nspawn_require
need etcd etcdctl openssl python3 sha256sum

names=(control-0 control-1 control-2)
ips=("$NSPAWN_NET.1" "$NSPAWN_NET.2" "$NSPAWN_NET.3")
nspawn_control_plane_topology "$WORK/topology.yaml"
"$KBUNDLE" gen --no-binaries --topology "$WORK/topology.yaml" --state "$WORK/state" --out "$WORK/out" >"$WORK/gen.log" 2>&1 ||
  { cat "$WORK/gen.log" >&2; fail "kbundle gen failed"; }
BUNDLES=$WORK/bundles
mkdir -p "$BUNDLES" && cp "$WORK/out/"*.kbundle "$WORK/out/bundle-signing.pub" "$BUNDLES/"

nspawn_base
nspawn_net_up
for i in 0 1 2; do
  nspawn_prepare "${names[$i]}" "${ips[$i]}"
  root=$(nspawn_root "${names[$i]}")
  nspawn_control_plane_bins "$root"
  install -m 0755 "$(command -v etcdctl)" "$root/usr/local/bin/etcdctl"  # bundles carry no binaries yet (issue 5)
  # The installer where the snapshot unit runs it (and where the other e2e tests call it).
  nspawn_boot "${names[$i]}" --bind-ro="$BUNDLES:/opt/bundles" --bind-ro="$INSTALLER:/usr/local/sbin/kbundle-installer" \
    --bind-ro="$INSTALLER:/usr/local/bin/kbundle-installer"
done
for n in "${names[@]}"; do nspawn_wait "$n"; done
lap "3 nodes booted"

apply_all() {  # apply_all TAG BUNDLE-SUFFIX: on the three nodes at once; fails on any error
  local tag=$1 suffix=$2 pids=() i
  for i in 0 1 2; do
    node "${names[$i]}" /usr/local/sbin/kbundle-installer apply --trust-key /opt/bundles/bundle-signing.pub \
      "/opt/bundles/${names[$i]}$suffix.kbundle" >"$WORK/$tag-$i.log" 2>&1 &
    pids+=($!)
  done
  for i in 0 1 2; do
    wait "${pids[$i]}" || { cat "$WORK/$tag-$i.log" >&2; node "${names[$i]}" journalctl -u etcd --no-pager -n 20 >&2 || true
                           fail "$tag: apply on ${names[$i]} failed"; }
  done
}

# 1. The cluster, the timer, 1,000 keys (eight transactions of 125 puts).
apply_all apply ""
for n in "${names[@]}"; do
  [ "$(node "$n" systemctl is-active etcd-snapshot.timer)" = active ] || fail "$n: etcd-snapshot.timer is not active"
  [ "$(node "$n" systemctl is-enabled etcd-snapshot.timer)" = enabled ] || fail "$n: etcd-snapshot.timer is not enabled"
done
nspawn_etcd_client "${names[0]}" "${ips[@]}"
nspawn_etcd_check
for b in $(seq 0 7); do
  { echo; for k in $(seq $((b * 125 + 1)) $((b * 125 + 125))); do echo "put /restore/key-$k value-$k"; done; echo; echo; } |
    nspawn_etcdctl txn >/dev/null || fail "writing keys failed"
done
count() { nspawn_etcdctl get /restore/ --prefix --limit=1 -w json | python3 -c 'import json,sys; print(json.load(sys.stdin).get("count", 0))'; }
[ "$(count)" = 1000 ] || fail "wrote 1000 keys, etcd counts $(count)"
lap "applied; 1,000 keys written"

# 2. A snapshot through the unit the timer starts.
node control-1 systemctl start etcd-snapshot.service || { node control-1 journalctl -u etcd-snapshot --no-pager >&2; fail "etcd-snapshot.service failed"; }
B=$(nspawn_root control-1)/var/backups/etcd
snap=$(cd "$B" && ls etcd-control-1-*.db)
[ "$(wc -w <<<"$snap")" = 1 ] || fail "expected one snapshot in $B, found: $snap"
[ "$(stat -c %a "$B/$snap")" = 600 ] || fail "snapshot mode is not 600"
(cd "$B" && sha256sum -c --quiet "$snap.sha256") || fail "the snapshot's .sha256 does not match"
cp "$B/$snap" "$B/$snap.sha256" "$WORK/"
nspawn_etcdctl put /restore/after-snapshot late >/dev/null || fail "put after the snapshot"
lap "snapshot $snap on control-1 ($(stat -c %s "$WORK/$snap") bytes)"

# 3. Every data directory wiped: the cluster is gone.
for n in "${names[@]}"; do node "$n" systemctl stop etcd.service; done
for n in "${names[@]}"; do node "$n" sh -c 'rm -rf /var/lib/etcd/* && echo wiped >/var/lib/etcd/WIPED'; done
nspawn_etcdctl endpoint health >/dev/null 2>&1 && fail "etcd still answers after the wipe"
lap "every data directory wiped"

# 4. kbundle restore refuses damaged snapshots; state and output stay as they were.
tree_hash() { (cd "$1" && find . -type f ! -name .lock -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum); }
state_before=$(tree_hash "$WORK/state") out_before=$(tree_hash "$WORK/out")
size=$(stat -c %s "$WORK/$snap")
mkdir "$WORK/bad"
cp "$WORK/$snap" "$WORK/bad/corrupt.db"
python3 -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(-1,1); f.write(bytes([b[0]^0x5a]))' \
  "$WORK/bad/corrupt.db" $((size / 2))
head -c $((size - 4000)) "$WORK/$snap" >"$WORK/bad/truncated.db"
cp "$WORK/$snap" "$WORK/bad/sidecar.db" && echo "$(printf '0%.0s' $(seq 64))  sidecar.db" >"$WORK/bad/sidecar.db.sha256"
expect 3 "integrity hash mismatch" "$KBUNDLE" restore --snapshot "$WORK/bad/corrupt.db" --topology "$WORK/topology.yaml" --state "$WORK/state" --out "$WORK/out"
expect 3 "truncated or not an etcd snapshot" "$KBUNDLE" restore --snapshot "$WORK/bad/truncated.db" --topology "$WORK/topology.yaml" --state "$WORK/state" --out "$WORK/out"
expect 3 "the snapshot was changed or replaced" "$KBUNDLE" restore --snapshot "$WORK/bad/sidecar.db" --topology "$WORK/topology.yaml" --state "$WORK/state" --out "$WORK/out"
[ "$state_before" = "$(tree_hash "$WORK/state")" ] || fail "a refused restore changed the state"
[ "$out_before" = "$(tree_hash "$WORK/out")" ] || fail "a refused restore changed the output"

# 6 (made first, signed for real). The restore bundles.
t0=$(date +%s.%N)
"$KBUNDLE" restore --snapshot "$WORK/$snap" --topology "$WORK/topology.yaml" --state "$WORK/state" --out "$WORK/out" >"$WORK/restore.log" 2>&1 ||
  { cat "$WORK/restore.log" >&2; fail "kbundle restore failed"; }
t_gen=$(python3 -c "import time; print(f'{time.time()-$t0:.2f}')")
grep -q "matches its .sha256" "$WORK/restore.log" || { cat "$WORK/restore.log" >&2; fail "restore did not check the .sha256"; }
token=$(sed -n 's/.*(cluster token \([^)]*\)).*/\1/p' "$WORK/restore.log")
[ -n "$token" ] && [ "$token" != e2e-etcd ] || fail "no new cluster token in the restore output"
for n in "${names[@]}"; do cp "$WORK/out/$n.kbundle" "$BUNDLES/$n-restore.kbundle"; done

# 5. A validly signed bundle whose snapshot is corrupt (restore.json made to agree) changes nothing.
n=control-0
node $n test -e /var/lib/etcd-restore && fail "/var/lib/etcd-restore exists before any restore bundle"
rid=$(sed -n 's/^kbundle: restore \([^ ]*\) (cluster token.*/\1/p' "$WORK/restore.log")
python3 -c 'import hashlib,json,sys
ips=sys.argv[4:7]
j={"version":1,"id":sys.argv[1],"token":sys.argv[2],"name":"control-0","peerURL":"https://%s:2380"%ips[0],
   "initialCluster":",".join("control-%d=https://%s:2380"%(i,ip) for i,ip in enumerate(ips)),
   "snapshotSha256":hashlib.sha256(open(sys.argv[3],"rb").read()).hexdigest()}
print(json.dumps(j))' "$rid" "$token" "$WORK/bad/corrupt.db" "${ips[@]}" >"$WORK/restore-corrupt.json"
"$REBUNDLE" --in "$WORK/out/$n.kbundle" --pub "$WORK/out/bundle-signing.pub" --key "$WORK/state/keys/bundle-signing.key" \
  --out "$BUNDLES/$n-corrupt.kbundle" --serial +0 --replace "/var/lib/etcd-restore/snapshot.db=$WORK/bad/corrupt.db" \
  --replace "/var/lib/etcd-restore/restore.json=$WORK/restore-corrupt.json" >"$WORK/rebundle.log" 2>&1 ||
  { cat "$WORK/rebundle.log" >&2; fail "kb_e2e_rebundle failed"; }
node_state() {  # every file kbundle or etcd owns there (type, mode, size, content), and etcd's state
  node "$1" sh -c 'for d in /etc/etcd /etc/systemd/system /var/lib/etcd /var/lib/etcd-restore /var/lib/kbundle /var/backups; do
    find "$d" -xdev -printf "%p %y %m\n" 2>/dev/null; find "$d" -xdev -type f -exec sha256sum {} + 2>/dev/null; done | LC_ALL=C sort
    ls -d /var/lib/etcd.* 2>/dev/null; systemctl is-active etcd.service; true'
}
before=$(node_state $n)
expect 3 "not a snapshot etcd would restore" node $n /usr/local/sbin/kbundle-installer apply "/opt/bundles/$n-corrupt.kbundle"
[ "$before" = "$(node_state $n)" ] || { diff <(echo "$before") <(node_state $n) >&2; fail "the refused corrupt restore changed $n"; }
lap "corrupt, truncated, mismatched snapshots refused (kbundle restore and the installer), nothing changed"

# 6. Restore all three at once.
t1=$(date +%s.%N)
apply_all restore -restore
t_apply=$(python3 -c "import time; print(f'{time.time()-$t1:.2f}')")
nspawn_etcd_healthy || fail "the restored members are not healthy"
[ "$(count)" = 1000 ] || fail "after the restore etcd counts $(count) keys under /restore/ (plus the late one?), not 1000"
[ -z "$(nspawn_etcdctl get /restore/after-snapshot --print-value-only)" ] || fail "a key written after the snapshot came back"
[ "$(nspawn_etcdctl get /restore/key-777 --print-value-only)" = value-777 ] || fail "key-777 lost its value"
members=$(nspawn_etcdctl member list | grep -c ', started, ')
[ "$members" = 3 ] || { nspawn_etcdctl member list >&2; fail "$members started members after the restore, not 3"; }
for i in 0 1 2; do
  nspawn_etcdctl member list | grep -q ", started, ${names[$i]}, https://${ips[$i]}:2380, " || fail "${names[$i]} is not a member with its peer URL"
  grep -q "etcd: restored ${names[$i]} from the snapshot" "$WORK/restore-$i.log" || { cat "$WORK/restore-$i.log" >&2; fail "${names[$i]}: no restore reported"; }
  node "${names[$i]}" sh -c 'test -f /var/lib/etcd.before-restore-*/WIPED' || fail "${names[$i]}: the old data directory was not kept aside"
done
nspawn_etcd_check
lap "restored on 3 nodes: 1,000 keys back, 3 members healthy"

# 7. Applying the restore bundle again does not restore twice.
n=control-2
inv=$(node $n systemctl show -p InvocationID --value etcd.service)
node $n /usr/local/sbin/kbundle-installer apply "/opt/bundles/$n-restore.kbundle" >"$WORK/again.log" 2>&1 || { cat "$WORK/again.log" >&2; fail "re-apply"; }
grep -q "nothing to do" "$WORK/again.log" || { cat "$WORK/again.log" >&2; fail "the re-apply did something"; }
[ "$inv" = "$(node $n systemctl show -p InvocationID --value etcd.service)" ] || fail "the re-apply restarted etcd on $n"
[ "$(count)" = 1000 ] || fail "keys changed after the re-apply"

for nm in "${names[@]}"; do nspawn_stop "$nm"; done
lap_table
pass "etcd $(etcd --version | awk 'NR==1 {print $3}'): 1,000 keys restored on 3 members from one snapshot; kbundle restore $t_gen s, apply on 3 nodes $t_apply s; corrupt/truncated/mismatched snapshots refused with nothing changed"
