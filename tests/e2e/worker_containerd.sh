#!/usr/bin/env bash
# A worker node (systemd-nspawn, systemd as PID 1) installed by kbundle-installer from a real
# bundle WITH binaries (issue 5):
#   1. the loopback test mirror (real Debian containerd, containerd-shim-runc-v2, ctr, runc, CNI
#      plugins; busybox OCI archives for the pause and CoreDNS images) fills a cache with
#      `kbundle fetch --mirror`, and `kbundle gen` makes the worker's bundle from it;
#   2. apply in the node: containerd runs under the node's systemd from the bundle's
#      /usr/local/bin/containerd, every health check passes, and the installer imports both image
#      archives; the node's own ctr (`ctr -n k8s.io images ls`) lists them and their layers are
#      unpacked (snapshots exist);
#   3. re-applying the same bundle imports nothing ("already at serial N"); a re-signed serial+1
#      with the same files only asks containerd (images ls) and imports nothing either;
#   4. an image removed from containerd behind the installer's back is imported again by the next
#      serial ("it was missing").
#
# What runs in the node: Debian's containerd 1.6 and ctr carried by the bundle (the catalog's are
# upstream 2.x, which the mirror replaces by Debian's). kubelet and kube-proxy are
# tests/e2e/kube-standin, put into the mirror in place of the mirror's echo stand-ins, so the
# bundle carries them like the real ones: they check the files their flags name and answer the
# bundle's plain-HTTP health checks (127.0.0.1:10248 and :10256) with `busybox httpd` (the host's
# static busybox, bound read-only into the node). No pod is run: no kubelet, no CRI traffic.
#
# What containerd needs inside nspawn (measured on this project's VM: kernel 6.18, cgroup v1
# hybrid, root, the node root an overlay on the cached Debian base, Debian containerd 1.6.20):
#   - cgroups: nothing beyond what nspawn gives. containerd is Type=notify and starts under the
#     node's systemd as it is; its CRI plugin logs what it cannot do and carries on. Import and
#     `images ls` run no container, so runc's need for writable cgroup controllers (E2E.md) does
#     not arise here.
#   - /var/lib/containerd: import unpacks every layer with the overlayfs snapshotter (the default,
#     and the one the bundle's CRI config names), so the layers must land on a filesystem that can
#     be an overlay upper dir. On this kernel the node's overlay root works too (measured: the two
#     busybox archives and a hand-made two-layer image imported and unpacked with
#     /var/lib/containerd on the root overlay). E2E.md reports the snapshotter needing an ext4
#     bind mount there, and an overlay upper dir on overlayfs depends on the kernel, so the test
#     binds a host directory (ext4 under /tmp) at /var/lib/containerd, as a real node has it on its
#     root filesystem, and skips if that directory is itself on overlayfs.
#   - no native snapshotter, no extra capabilities, no device nodes.
#   - what did break the import was the test image: its layer held "bin/" as a regular file, and
#     unpacking "bin/busybox" failed ("mkparent .../bin: not a directory"); fetch_mirror.py now
#     writes directory members as directories.
source "$(dirname "$0")/../integration/lib.bash"
source "$(dirname "$0")/nspawn.bash"
nspawn_require
source "$KB_SOURCE_DIR/tests/integration/fetch_lib.bash"  # skips without Debian's binaries
need sha256sum python3
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep >/dev/null "statically linked" ||
  skip "/bin/busybox is not a static busybox (scripts/deps.sh test installs busybox-static)"

# 1. Mirror (kubelet and kube-proxy: the e2e stand-in), fetch, gen with binaries.
make_mirror "$WORK/mirror"
k8s=$WORK/mirror/dl.k8s.io/release/$FETCH_VERSION/bin/linux/amd64
for c in kubelet kube-proxy; do
  [ -f "$k8s/$c" ] || fail "the test mirror has no $k8s/$c"
  install -m 0755 "$KB_SOURCE_DIR/tests/e2e/kube-standin" "$k8s/$c"
  sha256sum "$k8s/$c" | cut -d' ' -f1 >"$k8s/$c.sha256"
done
start_server "$WORK/mirror"
"$KBUNDLE" fetch --version "$FETCH_VERSION" --mirror "$MIRROR/" --cache "$WORK/cache" >"$WORK/fetch.log" 2>&1 ||
  { cat "$WORK/fetch.log" >&2; fail "kbundle fetch from the test mirror"; }
stop_server

W=worker-0 WIP=$NSPAWN_NET.11
cat >"$WORK/topology.yaml" <<YAML
cluster:
  name: e2e-worker
  kubernetesVersion: $FETCH_VERSION
  apiEndpoint: {host: $NSPAWN_NET.1, port: 6443}
nodes:
  - {name: control-0, role: control-plane, privateIP: $NSPAWN_NET.1}
  - {name: $W, role: worker, privateIP: $WIP, podCIDR: 10.200.0.0/24}
YAML
"$KBUNDLE" gen --topology "$WORK/topology.yaml" --state "$WORK/state" --out "$WORK/out" --cache "$WORK/cache" \
  >"$WORK/gen.log" 2>&1 || { cat "$WORK/gen.log" >&2; fail "kbundle gen with binaries"; }
BUNDLES=$WORK/out
"$KBUNDLE" inspect --json "$BUNDLES/$W.kbundle" >"$WORK/inspect.json" || fail "kbundle inspect $W"
for p in /usr/local/bin/containerd /usr/local/bin/ctr /var/lib/kbundle-images/pause.tar /var/lib/kbundle-images/coredns.tar; do
  python3 -c 'import json,sys; sys.exit(0 if any(e["path"] == sys.argv[2] for e in json.load(open(sys.argv[1]))["entries"]) else 1)' \
    "$WORK/inspect.json" "$p" || fail "$W.kbundle lacks $p"
done
lap "mirror, fetch, gen: $(($(stat -c %s "$BUNDLES/$W.kbundle") / 1024)) KiB bundle"

# 2. The node: overlay root on the cached base, /var/lib/containerd on the host's filesystem.
nspawn_base
lap "base root ready"
nspawn_net_up
nspawn_prepare "$W" "$WIP"
mkdir -p "$WORK/containerd-lib"
fs=$(stat -f -c %T "$WORK/containerd-lib")
[ "$fs" != overlayfs ] || skip "$WORK is on overlayfs: containerd's overlayfs snapshotter needs a real filesystem there"
nspawn_boot "$W" --bind-ro="$BUNDLES:/opt/bundles" --bind-ro="$INSTALLER:/usr/local/sbin/kbundle-installer" \
  --bind-ro=/bin/busybox:/usr/local/sbin/busybox --bind="$WORK/containerd-lib:/var/lib/containerd"
nspawn_wait "$W"
lap "node booted"

show_failure() {
  node "$W" systemctl --no-pager status containerd.service kubelet.service kube-proxy.service 2>&1 | tail -n 40 >&2 || true
  node "$W" journalctl --no-pager -u containerd.service -n 30 2>&1 | tail -n 30 >&2 || true
}
images_ls() { node "$W" /usr/local/bin/ctr -n k8s.io images ls; }

apply_ok() {  # apply_ok LOG BUNDLE [ARGS...]
  local log=$1 bundle=$2
  shift 2
  if ! node "$W" /usr/local/sbin/kbundle-installer apply "$@" "$bundle" >"$log" 2>&1; then
    cat "$log" >&2
    show_failure
    fail "apply of $bundle failed"
  fi
}
apply_ok "$WORK/apply.log" "/opt/bundles/$W.kbundle" --trust-key /opt/bundles/bundle-signing.pub
lap "applied (containerd up, images imported)"
grep "^health \|^imported " "$WORK/apply.log" | sed 's/^/    /'
for h in containerd kubelet kube-proxy; do
  grep -q "health $h: ok" "$WORK/apply.log" || { cat "$WORK/apply.log" >&2; fail "no passed $h health check"; }
done
for ref in registry.k8s.io/pause:3.10 registry.k8s.io/coredns/coredns:v1.11.3; do
  grep -q "^imported /var/lib/kbundle-images/.* as $ref into containerd" "$WORK/apply.log" ||
    { cat "$WORK/apply.log" >&2; fail "apply did not import $ref"; }
done
[ "$(node "$W" systemctl is-active containerd.service)" = active ] || { show_failure; fail "containerd.service is not active"; }
exe=$(node "$W" sh -c 'readlink /proc/$(systemctl show -p MainPID --value containerd.service)/exe')
[ "$exe" = /usr/local/bin/containerd ] || fail "containerd runs from '$exe', not the bundle's /usr/local/bin/containerd"
cmp -s /usr/bin/containerd "$(nspawn_root "$W")/usr/local/bin/containerd" || fail "the node's containerd is not the mirror's (Debian's)"

images_ls >"$WORK/images.txt" 2>&1 || { cat "$WORK/images.txt" >&2; show_failure; fail "ctr -n k8s.io images ls failed in the node"; }
cat "$WORK/images.txt"
for ref in registry.k8s.io/pause:3.10 registry.k8s.io/coredns/coredns:v1.11.3; do
  grep -q "^$ref " "$WORK/images.txt" || fail "ctr -n k8s.io images ls does not list $ref"
done
grep -q "^import-" "$WORK/images.txt" && fail "an image was imported without its name (import-<date>)"
# Unpacked into the overlayfs snapshotter (what kubelet will use), not only stored.
snaps=$(node "$W" /usr/local/bin/ctr -n k8s.io snapshots --snapshotter overlayfs ls | tail -n +2 | grep -c . || true)
[ "$snaps" -ge 1 ] || fail "no overlayfs snapshot in the node: the images were not unpacked"
lap "ctr -n k8s.io images ls: both images, $snaps snapshot(s)"

# 3. Re-apply: nothing imported; serial+1 with the same files: containerd asked, nothing imported.
apply_ok "$WORK/reapply.log" "/opt/bundles/$W.kbundle"
grep -q "already at serial" "$WORK/reapply.log" || { cat "$WORK/reapply.log" >&2; fail "re-apply was not a no-op"; }
grep -q "imported" "$WORK/reapply.log" && fail "re-apply imported again: $(cat "$WORK/reapply.log")"
cmp -s "$WORK/images.txt" <(images_ls 2>&1) || fail "the image list changed on re-apply"
serial=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["serial"])' "$WORK/inspect.json")
"$REBUNDLE" --in "$BUNDLES/$W.kbundle" --pub "$BUNDLES/bundle-signing.pub" --key "$WORK/state/keys/bundle-signing.key" \
  --out "$BUNDLES/$W-next.kbundle" --serial +1 >"$WORK/rebundle.log" 2>&1 || { cat "$WORK/rebundle.log" >&2; fail "kb_e2e_rebundle"; }
apply_ok "$WORK/next.log" "/opt/bundles/$W-next.kbundle"
grep -q "images: all 2 already in containerd" "$WORK/next.log" || { cat "$WORK/next.log" >&2; fail "serial $((serial + 1)): images not found present"; }
grep -q "^imported" "$WORK/next.log" && fail "serial $((serial + 1)) with unchanged archives imported again: $(cat "$WORK/next.log")"
cmp -s "$WORK/images.txt" <(images_ls 2>&1) || fail "the image list changed with serial $((serial + 1))"
lap "re-apply and serial $((serial + 1)): no import"

# 4. An image containerd lost is imported again by the next serial.
node "$W" /usr/local/bin/ctr -n k8s.io images rm registry.k8s.io/coredns/coredns:v1.11.3 >/dev/null || fail "ctr images rm"
"$REBUNDLE" --in "$BUNDLES/$W.kbundle" --pub "$BUNDLES/bundle-signing.pub" --key "$WORK/state/keys/bundle-signing.key" \
  --out "$BUNDLES/$W-next2.kbundle" --serial +2 >>"$WORK/rebundle.log" 2>&1 || { cat "$WORK/rebundle.log" >&2; fail "kb_e2e_rebundle"; }
apply_ok "$WORK/next2.log" "/opt/bundles/$W-next2.kbundle"
grep -q "^imported /var/lib/kbundle-images/coredns.tar as registry.k8s.io/coredns/coredns:v1.11.3 .*it was missing" "$WORK/next2.log" ||
  { cat "$WORK/next2.log" >&2; fail "the removed CoreDNS image was not imported again"; }
grep -q "^imported /var/lib/kbundle-images/pause.tar" "$WORK/next2.log" && fail "pause was imported again although containerd has it"
images_ls | grep >/dev/null "^registry.k8s.io/coredns/coredns:v1.11.3 " || fail "CoreDNS is not back in containerd"
lap "lost image imported again"

nspawn_stop "$W"
lap "node stopped and removed"
pass "worker node: Debian containerd $(containerd --version | awk '{print $3}') from the bundle under systemd, pause and CoreDNS imported into k8s.io (ctr images ls), re-apply imports nothing"
