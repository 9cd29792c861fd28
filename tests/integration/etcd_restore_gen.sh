#!/usr/bin/env bash
# `kbundle restore` with the real binaries (docs/backup.md, G39), no root needed:
#   1. refusals before anything is written (exit 3 unless said, the state and out/ hashed before and
#      after): a corrupt snapshot, a truncated one, one whose .sha256 disagrees, a malformed .sha256,
#      a symlink, a directory, a missing file, a topology that changes etcd membership; no state (exit 1);
#   2. a real snapshot (etcd on loopback, `etcdctl snapshot save`): every control-plane bundle carries
#      it (class secret, its sha256 in the signed manifest) and restore.json with a new token; serials
#      of control-plane nodes bumped, the worker's unchanged; the installer's path policy accepts them;
#   3. on a test root (the real installer, --no-systemd, the real `etcdctl snapshot restore`): the
#      restore replaces the data directory and keeps the old one aside; a kill -9 at every fault point
#      of that apply, then `recover`, leaves either the old generation with the old data directory in
#      place or the new one with the restored data and the old data aside, never a mix; the next
#      apply of the restore bundle restores (once) or does nothing; applying it again never restores twice;
#      a failed health gate puts the old data back and rolls back (exit 4);
#   4. the next gen drops the restore files again.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/installer_lib.bash"
need etcd etcdctl python3 sha256sum
cat >"$WORK/topology.yaml" <<YAML
cluster:
  name: rest
  apiEndpoint: {host: 10.0.1.10}
nodes:
  - {name: control-0, role: control-plane, privateIP: 10.0.1.10}
  - {name: control-1, role: control-plane, privateIP: 10.0.1.11}
  - {name: control-2, role: control-plane, privateIP: 10.0.1.12}
  - {name: worker-0, role: worker, privateIP: 10.0.1.20}
YAML
T=$WORK/topology.yaml S=$WORK/state O=$WORK/out
"$KBUNDLE" gen --no-binaries --topology "$T" --state "$S" --out "$O" >"$WORK/gen.log" 2>&1 || { cat "$WORK/gen.log" >&2; fail "gen"; }

# A real snapshot from a throw-away member on loopback (new ports if another process took them).
ctl() { etcdctl --endpoints="http://127.0.0.1:$cport" "$@"; }
for attempt in 1 2 3; do
  read -r cport pport < <(python3 -c 'import socket; s=[socket.socket() for _ in range(2)]; [x.bind(("127.0.0.1", 0)) for x in s]; print(*[x.getsockname()[1] for x in s])')
  rm -rf "$WORK/data"
  etcd --name x --data-dir "$WORK/data" --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
    --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "x=http://127.0.0.1:$pport" >"$WORK/etcd.log" 2>&1 &
  epid=$!
  cleanup "kill $epid 2>/dev/null; wait $epid 2>/dev/null"
  for _ in $(seq 50); do ctl endpoint health >/dev/null 2>&1 && break 2; kill -0 $epid 2>/dev/null || break; sleep 0.2; done
done
ctl put /k v >/dev/null || { cat "$WORK/etcd.log" >&2; fail "etcd did not start"; }
ctl snapshot save "$WORK/snap.db" >/dev/null 2>&1 || fail "snapshot save"
(cd "$WORK" && sha256sum snap.db >snap.db.sha256)
size=$(stat -c %s "$WORK/snap.db")

tree_hash() { (cd "$1" && find . -type f ! -name .lock -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum); }
state0=$(tree_hash "$S") out0=$(tree_hash "$O")
unchanged() { [ "$state0" = "$(tree_hash "$S")" ] && [ "$out0" = "$(tree_hash "$O")" ] || fail "$1 changed the state or the output"; }
mkdir "$WORK/bad"
restore() { "$KBUNDLE" restore --snapshot "$1" --topology "${2:-$T}" --state "${3:-$S}" --out "$O"; }

# 1. Refusals.
flip() { python3 -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(-1,1); f.write(bytes([b[0]^0x5a]))' "$@"; }
cp "$WORK/snap.db" "$WORK/bad/flip.db"; flip "$WORK/bad/flip.db" $((size / 3))
expect 3 "integrity hash mismatch" restore "$WORK/bad/flip.db"; unchanged "a corrupt snapshot"
cp "$WORK/snap.db" "$WORK/bad/hash.db"; flip "$WORK/bad/hash.db" $((size - 1))
expect 3 "integrity hash mismatch" restore "$WORK/bad/hash.db"; unchanged "a snapshot with a changed hash"
for cut in 1 32 $((size / 2)); do
  head -c $((size - cut)) "$WORK/snap.db" >"$WORK/bad/cut.db"
  expect 3 "truncated or not an etcd snapshot" restore "$WORK/bad/cut.db"; unchanged "a snapshot cut by $cut bytes"
done
# Cut at a page boundary the size still looks right: the hash catches it.
head -c $((size - 512)) "$WORK/snap.db" >"$WORK/bad/cut.db"
expect 3 "integrity hash mismatch" restore "$WORK/bad/cut.db"; unchanged "a snapshot cut by a page"
: >"$WORK/bad/empty.db"; expect 3 "truncated" restore "$WORK/bad/empty.db"
head -c "$size" /dev/urandom >"$WORK/bad/random.db"; expect 3 "snapshot" restore "$WORK/bad/random.db"
cp "$WORK/snap.db" "$WORK/bad/side.db"; echo "$(printf 'a%.0s' $(seq 64))  side.db" >"$WORK/bad/side.db.sha256"
expect 3 "the snapshot was changed or replaced" restore "$WORK/bad/side.db"
echo "garbage" >"$WORK/bad/side.db.sha256"; expect 3 "does not start with a lowercase sha256 digest" restore "$WORK/bad/side.db"
ln -s "$WORK/snap.db" "$WORK/bad/link.db"; expect 3 "a symlink" restore "$WORK/bad/link.db"
expect 3 "not a regular file" restore "$WORK/bad"
expect 3 "cannot read the snapshot" restore "$WORK/bad/missing.db"
sed 's/control-2, role: control-plane/control-2, role: worker/' "$T" >"$WORK/changed.yaml"
expect 3 "a restore brings back the recorded members" restore "$WORK/snap.db" "$WORK/changed.yaml"
expect 1 "no state" restore "$WORK/snap.db" "$T" "$WORK/nostate"
[ ! -e "$WORK/nostate" ] || fail "restore created a state"
unchanged "the refusals"

cp -a "$O" "$WORK/gen1"

# 2. The restore bundles.
serial() { "$KBUNDLE" inspect --json "$O/$1.kbundle" | python3 -c 'import json,sys; print(json.load(sys.stdin)["serial"])'; }
declare -A before
for n in control-0 control-1 control-2 worker-0; do before[$n]=$(serial $n); done
restore "$WORK/snap.db" >"$WORK/restore.log" 2>&1 || { cat "$WORK/restore.log" >&2; fail "restore"; }
grep -q "matches its .sha256" "$WORK/restore.log" || fail "the .sha256 beside the snapshot was not checked"
sha=$(cut -d' ' -f1 "$WORK/snap.db.sha256")
for n in control-0 control-1 control-2; do
  [ "$(serial $n)" -gt "${before[$n]}" ] || fail "$n: serial not bumped"
  "$KBUNDLE" inspect --json "$O/$n.kbundle" >"$WORK/$n.json" || fail "$n: the restore bundle does not verify or breaks the policy"
  python3 - "$WORK/$n.json" "$sha" "$size" <<'PY' || fail "$n: restore files wrong in the manifest"
import json, sys
m = json.load(open(sys.argv[1]))
e = {x["path"]: x for x in m["entries"]}
s = e["/var/lib/etcd-restore/snapshot.db"]
assert s["class"] == "secret" and s["mode"] in ("0600", 384) and s["sha256"] == sys.argv[2] and s["size"] == int(sys.argv[3]), s
assert "/var/lib/etcd-restore/restore.json" in e
PY
done
[ "$(serial worker-0)" = "${before[worker-0]}" ] || fail "worker-0's serial changed"
grep -q "cluster token rest-etcd-restore-" "$WORK/restore.log" || fail "no new cluster token"

# 3. On a node: the restore, and a crash at every step of it.
N=control-0
new_root "$WORK/t0"
inst --root "$WORK/t0" --node $N --trust-key "$WORK/gen1/bundle-signing.pub" apply "$WORK/gen1/$N.kbundle" >/dev/null 2>&1 || fail "apply gen 1"
echo old-data >"$WORK/t0/var/lib/etcd/OLD"
restored() { [ -d "$1/var/lib/etcd/member/snap" ] && [ ! -e "$1/var/lib/etcd/OLD" ]; }
gen_serial() { inst --root "$1" --json status 2>/dev/null | sed -n 's/.*"serial":\([0-9]*\).*/\1/p'; }
s1=$(gen_serial "$WORK/t0")
rm -rf "$WORK/r" && cp -a "$WORK/t0" "$WORK/r"
inst --root "$WORK/r" --node $N apply "$O/$N.kbundle" >"$WORK/apply-restore.log" 2>&1 || { cat "$WORK/apply-restore.log" >&2; fail "apply restore"; }
restored "$WORK/r" || { ls -la "$WORK/r/var/lib/etcd" >&2; fail "the data directory was not restored"; }
[ "$(cat "$WORK/r"/var/lib/etcd.before-restore-*/OLD)" = old-data ] || fail "the old data was not kept aside"
grep -q "etcd: restored $N from the snapshot" "$WORK/apply-restore.log" || fail "no restore reported"
inst --root "$WORK/r" --node $N apply "$O/$N.kbundle" >"$WORK/again.log" 2>&1 || fail "re-apply"
grep -q "nothing to do" "$WORK/again.log" || fail "re-apply did something"
[ "$(ls -d "$WORK/r"/var/lib/etcd.before-restore-* | wc -l)" = 1 ] || fail "restored twice"
rm -rf "$WORK/list" && cp -a "$WORK/t0" "$WORK/list"
mapfile -t points < <(KB_FAULT_LIST=1 inst --root "$WORK/list" --node $N apply "$O/$N.kbundle" 2>&1 >/dev/null | sed -n 's/^kb-fault-point: //p')
printf '%s\n' "${points[@]}" | grep -qx etcd-restore-aside || fail "no etcd-restore-aside fault point"
old=0 new=0
for p in "${points[@]}"; do
  rm -rf "$WORK/r" && cp -a "$WORK/t0" "$WORK/r"
  rc=0; KB_FAULT_POINT=$p inst --root "$WORK/r" --node $N apply "$O/$N.kbundle" >/dev/null 2>&1 || rc=$?
  [ $rc -eq 137 ] || fail "fault point $p: exit $rc, expected SIGKILL"
  inst --root "$WORK/r" recover >"$WORK/recover.log" 2>&1 || { cat "$WORK/recover.log" >&2; fail "recover after $p"; }
  [ ! -e "$WORK/r/var/lib/kbundle/etcd-restore.json" ] || fail "after $p: the restore journal is left"
  ls -d "$WORK/r"/var/lib/etcd.restore-* >/dev/null 2>&1 && fail "after $p: a half restore is left"
  if [ "$(gen_serial "$WORK/r")" = "$s1" ]; then
    [ "$(cat "$WORK/r/var/lib/etcd/OLD" 2>/dev/null)" = old-data ] || fail "after $p: old generation without its data"
    ls -d "$WORK/r"/var/lib/etcd.before-* >/dev/null 2>&1 && fail "after $p: old generation with data moved aside"
    old=$((old + 1))
  else
    restored "$WORK/r" || fail "after $p: new generation without the restored data"
    [ "$(cat "$WORK/r"/var/lib/etcd.before-restore-*/OLD)" = old-data ] || fail "after $p: the old data is not aside"
    new=$((new + 1))
  fi
  inst --root "$WORK/r" --node $N apply "$O/$N.kbundle" >/dev/null 2>&1 || fail "apply after $p"
  restored "$WORK/r" || fail "after $p and a new apply: not restored"
  [ "$(ls -d "$WORK/r"/var/lib/etcd.before-restore-* | wc -l)" = 1 ] || fail "after $p: restored twice"
done
[ $old -gt 0 ] && [ $new -gt 0 ] || fail "the crash matrix reached only one side ($old old, $new new)"
# A restore whose health gate fails (no etcd answers: null services, health checks capped at 1 s) puts
# the old data directory back and rolls back, exit 4.
"$KB_BUILD_DIR/tests/kb_e2e_rebundle" --in "$O/$N.kbundle" --pub "$O/bundle-signing.pub" --key "$S/keys/bundle-signing.key" \
  --out "$WORK/$N-fast.kbundle" --serial +0 --health-timeout 1 >"$WORK/rebundle.log" 2>&1 || { cat "$WORK/rebundle.log" >&2; fail "rebundle"; }
rm -rf "$WORK/r" && cp -a "$WORK/t0" "$WORK/r"
expect 4 "rolled back to serial $s1" env KB_TEST_NULL_SERVICES=1 "$INSTALLER" --root "$WORK/r" --node $N apply "$WORK/$N-fast.kbundle"
grep -q "etcd: restore .* undone; the data directory is as before" "$WORK/out.log" || { cat "$WORK/out.log" >&2; fail "the failed restore was not undone"; }
[ "$(cat "$WORK/r/var/lib/etcd/OLD")" = old-data ] || fail "the old data is not back after a failed health gate"
ls -d "$WORK/r"/var/lib/etcd.* >/dev/null 2>&1 && fail "a restored or set-aside directory is left after the rollback"
[ "$(gen_serial "$WORK/r")" = "$s1" ] || fail "not rolled back"

# 4. The next gen drops the restore files.
"$KBUNDLE" gen --no-binaries --topology "$T" --state "$S" --out "$O" >"$WORK/gen2.log" 2>&1 || fail "gen after restore"
"$KBUNDLE" inspect --json "$O/control-0.kbundle" | grep -q etcd-restore && fail "gen kept the restore files"
pass "15 refusals wrote nothing; on a node the old data is kept aside and a kill -9 at each of ${#points[@]} fault points recovers to the old ($old) or the restored ($new) data, never twice; restore bundles carry the verified snapshot (class secret), serials bumped on the control plane only; the next gen drops them"
