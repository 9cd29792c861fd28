#!/usr/bin/env bash
# No worker file set holds a CA key, the service-account key, an etcd cert or
# key, or the encryption key; no node holds another node's private keys.
# Checked by content, not by file name, so a renamed copy is caught too.
source "$(dirname "$0")/lib.bash"
gen_example
S=$WORK/state
secrets=("$S/ca/kubernetes-ca.key" "$S/ca/etcd-ca.key" "$S/ca/front-proxy-ca.key" "$S/keys/service-account.key"
         "$S/keys/bundle-signing.key")
contains() { # contains DIR NEEDLE-FILE: any file in DIR holds the needle's key body?
  # The second body line holds most of an EC key's private scalar (PKCS#8 chars 48-90): the first
  # bytes are the same for every key of a type, the last ones are the public key, which certs carry too.
  # An Ed25519 key has a single body line, its seed in chars 23-64.
  local body; body=$(grep -v -- '-----' "$2" | sed -n 2p | cut -c 1-26)
  [ -n "$body" ] || body=$(grep -v -- '-----' "$2" | cut -c 23-64)
  grep -rqF -- "$body" "$1" 2>/dev/null && return 0
  # kubeconfigs embed keys base64-encoded.
  grep -rqF -- "$(base64 -w0 < "$2" | cut -c 128-156)" "$1" 2>/dev/null
}
enc=$(cat "$S/keys/encryption.key")
check_tree() { # check_tree ROOT: ROOT/<node>/... as on the nodes
  local T=$1
  for w in worker-0 worker-1 worker-2; do
    for s in "${secrets[@]}"; do contains "$T/$w" "$s" && fail "$w holds $(basename "$s")"; done
    grep -rqF -- "$enc" "$T/$w" && fail "$w holds the encryption key"
    [ -e "$T/$w/etc/etcd" ] && fail "$w has /etc/etcd"
    grep -rlq "BEGIN CERTIFICATE" "$T/$w" || fail "$w: no certificates at all?"
    # Only its own kubelet key and the shared kube-proxy key.
    for other in worker-0 worker-1 worker-2; do
      [ "$other" = "$w" ] && continue
      contains "$T/$w" "$T/$other/var/lib/kubelet/kubelet.key" && fail "$w holds $other's kubelet key"
    done
  done
  # Control-plane nodes: the kubernetes-ca key (controller-manager signs CSRs) but never the etcd or front-proxy CA key.
  for c in control-0 control-1 control-2; do
    contains "$T/$c" "$S/ca/kubernetes-ca.key" || fail "$c lacks the kubernetes-ca key (controller-manager needs it)"
    for s in "$S/ca/etcd-ca.key" "$S/ca/front-proxy-ca.key" "$S/keys/bundle-signing.key"; do
      contains "$T/$c" "$s" && fail "$c holds $(basename "$s")"
    done
    for other in control-0 control-1 control-2; do
      [ "$other" = "$c" ] && continue
      contains "$T/$c" "$T/$other/etc/etcd/server.key" && fail "$c holds $other's etcd key"
    done
  done
}
check_tree "$WORK/out"

# The same at bundle level: what each signed bundle carries.
"$KBUNDLE" gen --no-binaries --topology "$EXAMPLE" --state "$WORK/state" --out "$WORK/b" >/dev/null
for n in control-0 control-1 control-2 worker-0 worker-1 worker-2; do
  mkdir -p "$WORK/x/$n"; tar -xf "$WORK/b/$n.kbundle" -C "$WORK/x/$n"
  mv "$WORK/x/$n/files" "$WORK/bx-$n"; rm -rf "$WORK/x/$n"; mv "$WORK/bx-$n" "$WORK/x/$n"
done
check_tree "$WORK/x"

# The test can fail: a worker tree with a planted CA key is caught.
cp "$S/ca/etcd-ca.key" "$WORK/out/worker-0/var/lib/kubelet/planted"
contains "$WORK/out/worker-0" "$S/ca/etcd-ca.key" || fail "the check does not detect a planted key"
rm "$WORK/out/worker-0/var/lib/kubelet/planted"
printf 'client-key-data: %s\n' "$(base64 -w0 < "$S/ca/front-proxy-ca.key")" > "$WORK/out/worker-1/var/lib/kubelet/planted"
contains "$WORK/out/worker-1" "$S/ca/front-proxy-ca.key" || fail "the check does not detect a base64-embedded key"
pass "3 workers and 3 control-plane nodes hold only the secrets they need, in the trees and in the bundles"
