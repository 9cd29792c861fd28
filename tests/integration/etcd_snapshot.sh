#!/usr/bin/env bash
# `kbundle-installer etcd snapshot` against a real etcd (Debian's) on loopback, over mutual TLS with
# the node's etcd peer certificate from a real bundle (docs/backup.md, G39):
#   1. a snapshot is written 0600 with a .sha256 that sha256sum agrees with, and etcdctl's own
#      `snapshot status` reads it with the keys written before;
#   2. pruning with keep 3: older snapshots of this node go, the newest stay; another node's files,
#      foreign files, a symlink named like ours (pointing outside) and a stray .sha256's target are kept;
#   3. etcd 3.5 tools (stand-ins that report 3.5): status through etcdutl, refused without it;
#   4. refusals write nothing: etcd down (exit 1, no temp left), a symlink as the backup directory,
#      a backup directory others can write to, a worker node (no policy).
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/installer_lib.bash"
need etcd etcdctl sha256sum python3
N=control-0
cat >"$WORK/topology.yaml" <<YAML
cluster:
  name: snap
  apiEndpoint: {host: 10.0.1.10}
nodes:
  - {name: $N, role: control-plane, privateIP: 10.0.1.10}
  - {name: worker-0, role: worker, privateIP: 10.0.1.20}
etcd:
  backup: {keep: 3, maxAgeDays: 2, dir: /var/backups/etcd}
YAML
"$KBUNDLE" gen --no-binaries --topology "$WORK/topology.yaml" --state "$WORK/state" --out "$WORK/out" >"$WORK/gen.log" 2>&1 ||
  { cat "$WORK/gen.log" >&2; fail "gen"; }
R=$WORK/root
new_root "$R"
inst --root "$R" --node $N --trust-key "$WORK/out/bundle-signing.pub" apply "$WORK/out/$N.kbundle" >"$WORK/apply.log" 2>&1 ||
  { cat "$WORK/apply.log" >&2; fail "apply"; }
grep -q '"dir": "/var/backups/etcd"' "$R/etc/etcd/backup.json" || fail "no backup policy installed"
grep -q '^OnCalendar=hourly$' "$R/etc/systemd/system/etcd-snapshot.timer" || fail "no timer installed"
grep -q '^ExecStart=/usr/local/bin/kbundle-installer etcd snapshot$' "$R/etc/systemd/system/etcd-snapshot.service" ||
  fail "no snapshot service installed"

# A single member on free loopback ports, with the bundle's certificates (new ports if another
# process took them between the pick and etcd's bind).
E=$R/etc/etcd
ctl() { etcdctl --endpoints="https://127.0.0.1:$cport" --cacert "$E/ca.crt" --cert "$E/peer.crt" --key "$E/peer.key" "$@"; }
for attempt in 1 2 3; do
  read -r cport pport < <(python3 -c 'import socket; s=[socket.socket() for _ in range(2)]; [x.bind(("127.0.0.1", 0)) for x in s]; print(*[x.getsockname()[1] for x in s])')
  rm -rf "$WORK/data"
  etcd --name $N --data-dir "$WORK/data" --cert-file "$E/server.crt" --key-file "$E/server.key" --trusted-ca-file "$E/ca.crt" \
    --client-cert-auth --peer-cert-file "$E/peer.crt" --peer-key-file "$E/peer.key" --peer-trusted-ca-file "$E/ca.crt" \
    --peer-client-cert-auth --listen-client-urls "https://127.0.0.1:$cport" --advertise-client-urls "https://127.0.0.1:$cport" \
    --listen-peer-urls "https://127.0.0.1:$pport" --initial-advertise-peer-urls "https://127.0.0.1:$pport" \
    --initial-cluster "$N=https://127.0.0.1:$pport" >"$WORK/etcd.log" 2>&1 &
  epid=$!
  cleanup "kill $epid 2>/dev/null; wait $epid 2>/dev/null"
  for _ in $(seq 50); do ctl endpoint health >/dev/null 2>&1 && break 2; kill -0 $epid 2>/dev/null || break; sleep 0.2; done
done
ctl endpoint health >/dev/null 2>&1 || { cat "$WORK/etcd.log" >&2; fail "etcd did not start"; }
{ echo; for i in $(seq 100); do echo "put /snap/key-$i value-$i"; done; echo; echo; } | ctl txn >/dev/null || fail "writing 100 keys"

B=$R/var/backups/etcd
# Old snapshots of this node (as the installer names them), another node's, and files that are not ours.
mkdir -p -m 0700 "$B"
old() { date -u -d "@$(($(date +%s) - $1))" +"etcd-$2-%Y%m%dT%H%M%SZ.db"; }
olds=()
for age in 3600 7200 10800 14400; do n=$(old $age $N); olds+=("$n"); echo db >"$B/$n"; echo "x  $n" >"$B/$n.sha256"; done
ancient=$(old $((5 * 86400)) $N); echo db >"$B/$ancient"
other=$(old 86400 control-1); echo db >"$B/$other"
echo mine >"$B/notes.txt"; echo mine >"$B/my-backup.db"
link=$(old 999999 $N)
echo victim >"$WORK/victim"; ln -s "$WORK/victim" "$B/$link"

# 1. One snapshot.
t0=$(date +%s.%N)
inst --root "$R" etcd snapshot --endpoint "https://127.0.0.1:$cport" --json >"$WORK/snap.json" 2>"$WORK/snap.err" ||
  { cat "$WORK/snap.err" "$WORK/snap.json" >&2; fail "etcd snapshot"; }
t1=$(date +%s.%N)
file=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["file"])' "$WORK/snap.json")
[ -f "$file" ] || fail "no snapshot at $file"
[ "$(stat -c %a "$file")" = 600 ] || fail "snapshot mode $(stat -c %a "$file"), not 600"
[ "$(stat -c %a "$file.sha256")" = 600 ] || fail "sha256 file mode is not 600"
(cd "$B" && sha256sum -c --quiet "$(basename "$file").sha256") || fail "sha256sum disagrees with $file.sha256"
keys=$(etcdctl snapshot status "$file" -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)["totalKey"])')
[ "$keys" -ge 100 ] || fail "the snapshot holds $keys keys, fewer than the 100 written"
ls -a "$B" | grep -q '^\.etcd-snapshot-' && fail "a temp file was left in $B"

# 2. Pruning: keep 3 = the new one and the two newest old ones; the 5-day-old one is past maxAgeDays.
left=$(find "$B" -maxdepth 1 -type f -name "etcd-$N-*.db" | wc -l)
[ "$left" = 3 ] || { ls -la "$B" >&2; fail "$left snapshots of $N left, not 3"; }
[ -e "$B/${olds[0]}" ] && [ -e "$B/${olds[1]}" ] || fail "a newest old snapshot was pruned"
for n in "${olds[2]}" "${olds[3]}"; do [ ! -e "$B/$n" ] && [ ! -e "$B/$n.sha256" ] || fail "an old snapshot (or its .sha256) was kept: $n"; done
[ ! -e "$B/$ancient" ] || fail "a snapshot past maxAgeDays was kept"
for f in "$other" notes.txt my-backup.db "$link"; do [ -e "$B/$f" ] || [ -L "$B/$f" ] || fail "$f was removed (not ours)"; done
[ "$(cat "$WORK/victim")" = victim ] || fail "the symlink's target was touched"

# 3. Refusals leave nothing behind.
before=$(ls -a "$B" | sort)
expect 1 "etcdctl snapshot save from https://127.0.0.1:1 failed" inst --root "$R" etcd snapshot --endpoint https://127.0.0.1:1
[ "$before" = "$(ls -a "$B" | sort)" ] || fail "a failed snapshot left files"
mv "$B" "$WORK/real-backups" && ln -s "$WORK/real-backups" "$B"
expect 1 "a symlink on the way to the backup directory" inst --root "$R" etcd snapshot --endpoint "https://127.0.0.1:$cport"
rm "$B" && mv "$WORK/real-backups" "$B"
chmod 0777 "$B"
expect 1 "the backup directory is owned by uid" inst --root "$R" etcd snapshot --endpoint "https://127.0.0.1:$cport"
chmod 0700 "$B"
[ "$before" = "$(ls -a "$B" | sort)" ] || fail "a refused snapshot left files"
W=$WORK/worker-root
new_root "$W"
inst --root "$W" --node worker-0 --trust-key "$WORK/out/bundle-signing.pub" apply "$WORK/out/worker-0.kbundle" >/dev/null 2>&1 || fail "apply worker"
expect 1 "only a control-plane node takes etcd snapshots" inst --root "$W" etcd snapshot
# etcd 3.5 and later: `snapshot status` (and restore) through etcdutl. Stand-ins in the root's
# /usr/local/bin (found before the system's) report 3.5 and log which tool checked the snapshot.
real_ctl=$(command -v etcdctl)
cat >"$R/usr/local/bin/etcdctl" <<SH
#!/bin/sh
[ "\$1" = version ] && { echo "etcdctl version: 3.5.17"; echo "API version: 3.5"; exit 0; }
echo "etcdctl \$*" >>"$WORK/tools.log"; exec "$real_ctl" "\$@"
SH
chmod 0755 "$R/usr/local/bin/etcdctl"
expect 1 "etcdutl: not found beside etcdctl 3.5.17" inst --root "$R" etcd snapshot --endpoint "https://127.0.0.1:$cport"
cat >"$R/usr/local/bin/etcdutl" <<SH
#!/bin/sh
echo "etcdutl \$*" >>"$WORK/tools.log"; exec "$real_ctl" "\$@"
SH
chmod 0755 "$R/usr/local/bin/etcdutl"
sleep 1  # a new second, a new snapshot name
inst --root "$R" etcd snapshot --endpoint "https://127.0.0.1:$cport" >"$WORK/snap35.log" 2>&1 || { cat "$WORK/snap35.log" >&2; fail "snapshot with 3.5 tools"; }
grep -q "^etcdctl .*snapshot save" "$WORK/tools.log" || fail "3.5: the snapshot was not saved with etcdctl"
grep -q "^etcdutl snapshot status" "$WORK/tools.log" || fail "3.5: the snapshot was not checked with etcdutl"
grep -q "^etcdctl snapshot status" "$WORK/tools.log" && fail "3.5: etcdctl snapshot status used"
pass "snapshot 0600 with a matching .sha256 in $(python3 -c "print(f'{$t1-$t0:.2f}')") s, pruned by count and age, foreign files and symlinks kept, etcd 3.5 tools (etcdutl) detected, 5 refusals wrote nothing"
