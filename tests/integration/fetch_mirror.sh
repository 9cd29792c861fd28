#!/usr/bin/env bash
# kbundle fetch through a loopback mirror: every file verified against its published checksum,
# archive members extracted, the lock written; a second run downloads nothing; the air-gap kit
# exported and imported (as a tar and as a directory) into fresh caches, byte for byte.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fetch_lib.bash"
make_mirror "$WORK/mirror"
start_server "$WORK/mirror"
C=$WORK/cache

"$KBUNDLE" fetch --version $FETCH_VERSION --mirror "$MIRROR/" --cache "$C" >"$WORK/out" 2>"$WORK/err" ||
  { cat "$WORK/err" >&2; fail "fetch failed"; }
grep -q "16 binaries and 2 images verified" "$WORK/out" || fail "summary: $(cat "$WORK/out")"
grep -q "^fetch: GET $MIRROR/dl.k8s.io/release/$FETCH_VERSION/bin/linux/amd64/kubelet$" "$WORK/err" ||
  fail "no plain progress lines (stderr is not a terminal)"
! grep -q $'\r' "$WORK/err" || fail "progress bar drawn on a non-terminal"
check_cache "$C"
# Every URL went to the mirror, by the documented rule (MIRROR/HOST/PATH).
grep -q "^GET /github.com/etcd-io/etcd/releases/download/v3.5.21/SHA256SUMS " "$SERVER_LOG" || fail "etcd checksum file not fetched"
grep -q "^GET /oci/registry.k8s.io/pause/3.10.tar " "$SERVER_LOG" || fail "pause image not fetched"
# Real binaries came out of the upstream-style tarballs intact.
sha() { sha256sum "$1" | cut -d' ' -f1; }
node_sha() { lock_py "$C" "print([e['sha256'] for e in lock['binaries'] + lock['images'] if e['nodePath'] == '$1'][0])"; }
[ "$(node_sha /usr/local/bin/etcd)" = "$(sha /usr/bin/etcd)" ] || fail "etcd differs from the packaged one"
[ "$(node_sha /usr/local/bin/containerd-shim-runc-v2)" = "$(sha /usr/bin/containerd-shim-runc-v2)" ] || fail "shim differs"
[ "$(node_sha /usr/local/bin/ctr)" = "$(sha /usr/bin/ctr)" ] || fail "ctr differs"
[ "$(node_sha /opt/cni/bin/bridge)" = "$(sha /usr/lib/cni/bridge)" ] || fail "CNI bridge differs"
[ "$(node_sha /usr/local/bin/runc)" = "$(sha /usr/sbin/runc)" ] || fail "runc differs"
cp "$C/blobs/sha256/$(node_sha /usr/local/bin/etcdctl)" "$WORK/etcdctl" && chmod +x "$WORK/etcdctl"
v=$("$WORK/etcdctl" version) && [[ $v == *"etcdctl version"* ]] || fail "the cached etcdctl does not run: $v"
lock_py "$C" '
m = {e["component"]: e for e in lock["binaries"]}
assert m["etcd"]["member"] == "etcd-v3.5.21-linux-amd64/etcd", m["etcd"]
assert m["cni-loopback"]["member"] == "./loopback" and m["cni-loopback"]["nodePath"] == "/opt/cni/bin/loopback"
assert m["kubelet"]["url"] == "https://dl.k8s.io/release/v1.32.3/bin/linux/amd64/kubelet"
assert m["kubelet"]["member"] is None and m["kubelet"]["sha256"] == m["kubelet"]["artifactSha256"]
assert m["etcd"]["sha256"] != m["etcd"]["artifactSha256"]
assert all(e["mode"] == "0755" for e in lock["binaries"])
assert m["kube-apiserver"]["roles"] == ["control-plane"] and m["kubectl"]["roles"] == ["control-plane", "worker"]
i = {e["component"]: e for e in lock["images"]}
assert i["pause"]["ref"] == "registry.k8s.io/pause:3.10" and i["pause"]["manifestDigest"].startswith("sha256:")
' || fail "lock file content"

# A second run re-hashes the cache and downloads nothing.
: >"$SERVER_LOG"
"$KBUNDLE" fetch --version $FETCH_VERSION --mirror "$MIRROR" --cache "$C" >"$WORK/out2" 2>"$WORK/err2" ||
  { cat "$WORK/err2" >&2; fail "second fetch failed"; }
[ ! -s "$SERVER_LOG" ] || fail "second run downloaded: $(head -3 "$SERVER_LOG")"

# Export the kit (atomically: no temp file left), import it into a fresh cache.
cp "$C/lock-$FETCH_VERSION.json" "$WORK/lock.before"
"$KBUNDLE" fetch --version $FETCH_VERSION --mirror "$MIRROR" --cache "$C" --export "$WORK/kit.tar" >"$WORK/out3" 2>&1 ||
  { cat "$WORK/out3" >&2; fail "export failed"; }
[ -z "$(ls -A "$WORK" | grep '\.tmp-')" ] || fail "export left a temp file"
tar -tf "$WORK/kit.tar" >"$WORK/kit.list"
grep -qx "lock-$FETCH_VERSION.json" "$WORK/kit.list" && grep -qx "catalog-$FETCH_VERSION.json" "$WORK/kit.list" || fail "kit lacks lock/catalog"
[ "$(grep -c '^blobs/sha256/' "$WORK/kit.list")" -eq 18 ] || fail "kit holds $(grep -c '^blobs/sha256/' "$WORK/kit.list") files, want 18 (16 binaries, 2 images)"
stop_server  # the offline side has no network at all

"$KBUNDLE" fetch --import "$WORK/kit.tar" --cache "$WORK/offline" >"$WORK/imp" 2>&1 || { cat "$WORK/imp" >&2; fail "import failed"; }
grep -q "imported Kubernetes $FETCH_VERSION" "$WORK/imp" || fail "import summary: $(cat "$WORK/imp")"
cmp "$WORK/offline/lock-$FETCH_VERSION.json" "$WORK/lock.before" || fail "imported lock differs"
check_cache "$WORK/offline"
[ -z "$(ls -A "$WORK/offline/partial")" ] || fail "import left staging files"

# The same kit unpacked into a directory.
mkdir "$WORK/kitdir" && tar -xf "$WORK/kit.tar" -C "$WORK/kitdir"
"$KBUNDLE" fetch --import "$WORK/kitdir" --state "$WORK/state" >"$WORK/imp2" 2>&1 || { cat "$WORK/imp2" >&2; fail "dir import failed"; }
cmp "$WORK/state/cache/lock-$FETCH_VERSION.json" "$WORK/lock.before" || fail "dir-imported lock differs"
check_cache "$WORK/state/cache"
pass "fetched 16 binaries + 2 images through the mirror, re-run offline, kit exported and imported (tar and dir)"
