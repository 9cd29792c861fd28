#!/usr/bin/env bash
# `kbundle gen` with binaries: from the verified cache only (filled through a loopback
# mirror of real Debian binaries and stand-ins), each role gets exactly its binaries and
# images, 0755, with source URL and sha256 in the manifest; a missing cache is a clear
# error naming the fetch command and writes nothing; the shared frames keep it cheap.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fetch_lib.bash"
need tar zstd
C=$WORK/cache

# No cache: refused, nothing written.
if "$KBUNDLE" gen --topology "$EXAMPLE" --state "$WORK/state" --out "$WORK/b" --cache "$C" 2> "$WORK/err" >/dev/null; then
  fail "gen without a cache succeeded"
fi
grep -q "kbundle fetch --version v1.32.3" "$WORK/err" && grep -q -- "--no-binaries" "$WORK/err" || fail "message: $(cat "$WORK/err")"
[ ! -e "$WORK/state" ] && [ ! -e "$WORK/b" ] || fail "a refused gen wrote something"

make_mirror "$WORK/mirror"
start_server "$WORK/mirror"
"$KBUNDLE" fetch --version v1.32.3 --mirror "$MIRROR/" --cache "$C" >/dev/null 2>"$WORK/fetch.err" || { cat "$WORK/fetch.err" >&2; fail "fetch"; }
stop_server   # gen must not need the network

"$KBUNDLE" gen --topology "$EXAMPLE" --state "$WORK/state" --out "$WORK/b" --cache "$C" > "$WORK/gen.log" || fail "gen with binaries"
entries() { "$KBUNDLE" inspect --json "$WORK/b/$1.kbundle" | python3 -c '
import json, sys
m = json.load(sys.stdin)
for e in m["entries"]:
    if e.get("class") == "binary":
        print(e["path"], e["mode"], e.get("source", {}).get("url", "-"))'; }
entries control-0 > "$WORK/cp.txt"; entries worker-0 > "$WORK/w.txt"
for b in kube-apiserver kube-controller-manager kube-scheduler etcd etcdctl kubectl; do
  grep -q "^/usr/local/bin/$b 0755 https://" "$WORK/cp.txt" || fail "control-0 lacks $b: $(cat "$WORK/cp.txt")"
done
for b in /usr/local/bin/kubelet /usr/local/bin/kube-proxy /usr/local/bin/containerd /usr/local/bin/runc /opt/cni/bin/bridge \
         /usr/local/bin/kubectl /var/lib/kbundle-images/pause.tar; do
  grep -q "^$b " "$WORK/w.txt" || fail "worker-0 lacks $b: $(cat "$WORK/w.txt")"
done
grep -q "kube-apiserver\|/etcd " "$WORK/w.txt" && fail "a worker got control-plane binaries"
grep -q "kubelet\|containerd" "$WORK/cp.txt" && fail "a control-plane node got worker binaries"

# What lands on the node is byte for byte the verified cache file.
mkdir "$WORK/x"; tar -xf "$WORK/b/worker-0.kbundle" -C "$WORK/x"
cmp -s "$WORK/x/files/opt/cni/bin/bridge" /usr/lib/cni/bridge || fail "bridge plugin differs from Debian's"
cmp -s "$WORK/x/files/usr/local/bin/runc" /usr/sbin/runc || fail "runc differs from Debian's"
[ "$(stat -c %a "$WORK/x/files/usr/local/bin/runc")" = 755 ] || fail "runc is not 0755 in the tar"

# Frames of shared binaries are reused: the workers' bundles hold the same compressed bytes.
w0=$(stat -c %s "$WORK/b/worker-0.kbundle"); w1=$(stat -c %s "$WORK/b/worker-1.kbundle")
[ $((w0 > w1 ? w0 - w1 : w1 - w0)) -lt 4096 ] || fail "worker bundles differ by more than their configs: $w0 vs $w1"
# A re-run is byte-identical; --no-binaries gives config-only bundles (a new serial: content changed).
cp "$WORK/b/control-1.kbundle" "$WORK/c1.before"
"$KBUNDLE" gen --topology "$EXAMPLE" --state "$WORK/state" --out "$WORK/b" --cache "$C" >/dev/null
cmp -s "$WORK/b/control-1.kbundle" "$WORK/c1.before" || fail "re-run with binaries not byte-identical"
# kbundle plan (docs/plan.md) with binaries: nothing to change; without them every binary goes.
"$KBUNDLE" plan --topology "$EXAMPLE" --state "$WORK/state" --cache "$C" > "$WORK/plan.log" || fail "plan with binaries: $(cat "$WORK/plan.log")"
rc=0; "$KBUNDLE" plan --no-binaries --topology "$EXAMPLE" --state "$WORK/state" > "$WORK/plan.log" || rc=$?
[ $rc = 2 ] && grep -q "^  - binary /usr/local/bin/etcd " "$WORK/plan.log" || fail "plan --no-binaries: exit $rc, $(cat "$WORK/plan.log")"
"$KBUNDLE" gen --no-binaries --topology "$EXAMPLE" --state "$WORK/state" --out "$WORK/b" >/dev/null
[ -z "$(entries control-1)" ] || fail "--no-binaries still bundled binaries"
pass "binaries per role from the cache (0755, source URLs), images on workers, shared frames, deterministic"
