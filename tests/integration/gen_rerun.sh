#!/usr/bin/env bash
# The state directory is reused, never silently replaced; certs are reissued
# only when what they must say changes; output and state are private.
source "$(dirname "$0")/lib.bash"
need openssl
gen_example
snap() { (cd "$1" && find . -type f ! -name .lock -exec sha256sum {} + | sort); }  # .lock holds the last pid

# Certs shared by several nodes are one cert, even though nodes are planned in parallel.
for f in var/lib/kubernetes/admin.kubeconfig var/lib/kubernetes/kube-scheduler.kubeconfig; do
  cmp -s "$WORK/out/control-0/$f" "$WORK/out/control-1/$f" && cmp -s "$WORK/out/control-0/$f" "$WORK/out/control-2/$f" ||
    fail "control-plane nodes got different $f"
done
kp() { grep client-certificate-data "$WORK/out/$1/var/lib/kube-proxy/kubeconfig"; }
[ "$(kp worker-0)" = "$(kp worker-1)" ] && [ "$(kp worker-0)" = "$(kp worker-2)" ] || fail "workers got different kube-proxy certs"

# Modes: state and output readable by root only.
bad=$(find "$WORK/state" "$WORK/out" \( -type f -perm /077 ! -name .kbundle-output ! -name 'bundle-signing.*' \) -o \( -type d -perm /077 \) | grep -v "^$WORK/out$" || true)
[ -z "$bad" ] || fail "group/other-accessible: $bad"

# 1. A second run with the same topology changes nothing at all.
before=$(snap "$WORK/out"); state_before=$(snap "$WORK/state")
gen_example
[ "$(snap "$WORK/out")" = "$before" ] || fail "a re-run changed the output"
[ "$(snap "$WORK/state")" = "$state_before" ] || fail "a re-run changed the state"

# 2. A new public IP on worker-1: only its kubelet cert (and kubeconfig) change.
sed 's/^\(    privateIP: 10.0.1.21\)$/\1\n    publicIP: 3.3.3.3/' "$EXAMPLE" > "$WORK/t2.yaml"
grep -q "3.3.3.3" "$WORK/t2.yaml" || fail "test setup: could not add a public IP to worker-1 in the example"
gen_example "$WORK/t2.yaml"
changed=$( (diff <(echo "$before") <(snap "$WORK/out") || true) | grep '^>' | awk '{print $3}' | sort | tr '\n' ' ')
[ "$changed" = "./worker-1/var/lib/kubelet/kubeconfig ./worker-1/var/lib/kubelet/kubelet.crt ./worker-1/var/lib/kubelet/kubelet.key " ] ||
  fail "adding a SAN changed: $changed"
openssl x509 -in "$WORK/out/worker-1/var/lib/kubelet/kubelet.crt" -noout -ext subjectAltName | grep >/dev/null -e "IP Address:3.3.3.3" || fail "new SAN missing"

# 3. The CAs are the same after any number of runs.
fp() { openssl x509 -in "$WORK/state/ca/kubernetes-ca.crt" -noout -fingerprint -sha256; }
ca1=$(fp); gen_example; [ "$(fp)" = "$ca1" ] || fail "the CA changed"

# 4. A state of another cluster is refused and left as it was.
sed 's/^\(  name:\) kthw/\1 other/' "$EXAMPLE" > "$WORK/other.yaml"
grep -q "name: other" "$WORK/other.yaml" || fail "test setup: cluster rename"
state_before=$(snap "$WORK/state"); out_before=$(snap "$WORK/out")
if "$KBUNDLE" gen --no-binaries --topology "$WORK/other.yaml" --state "$WORK/state" --out "$WORK/out" 2> "$WORK/err" >/dev/null; then
  fail "gen used another cluster's state"
fi
grep -q "kthw" "$WORK/err" && grep -q "other" "$WORK/err" || fail "foreign state message does not name both clusters: $(cat "$WORK/err")"
[ "$(snap "$WORK/state")" = "$state_before" ] && [ "$(snap "$WORK/out")" = "$out_before" ] || fail "foreign state run changed files"

# 5. A damaged state (CA key gone) is reported, not replaced.
mv "$WORK/state/ca/etcd-ca.key" "$WORK/etcd-ca.key.saved"
state_before=$(snap "$WORK/state")
if "$KBUNDLE" gen --no-binaries --topology "$EXAMPLE" --state "$WORK/state" --out "$WORK/out" 2> "$WORK/err" >/dev/null; then fail "gen accepted a state without the etcd CA key"; fi
grep -q "etcd-ca" "$WORK/err" || fail "damaged state message does not name the file: $(cat "$WORK/err")"
[ "$(snap "$WORK/state")" = "$state_before" ] || fail "a damaged state was modified"
mv "$WORK/etcd-ca.key.saved" "$WORK/state/ca/etcd-ca.key"

# 6. Two runs at once: the second is refused while the first holds the lock.
exec 9> "$WORK/state/.lock"; flock -n 9 || fail "test setup: cannot take the lock"
if "$KBUNDLE" gen --no-binaries --topology "$EXAMPLE" --state "$WORK/state" --out "$WORK/out" 2> "$WORK/err" >/dev/null; then fail "gen ran while the state was locked"; fi
grep -qi "in use\|lock" "$WORK/err" || fail "lock message unclear: $(cat "$WORK/err")"
exec 9>&-

# 7. --node regenerates one node and keeps the others' output.
rm -rf "$WORK/out/worker-2/var/lib/kube-proxy"
before=$(snap "$WORK/out")
"$KBUNDLE" gen --no-binaries --topology "$EXAMPLE" --state "$WORK/state" --out "$WORK/out" --node worker-0 >/dev/null
[ ! -e "$WORK/out/worker-2/var/lib/kube-proxy" ] || fail "--node worker-0 rewrote worker-2"
[ -f "$WORK/out/control-0/etc/systemd/system/etcd.service" ] || fail "--node lost control-0's output"
"$KBUNDLE" gen --no-binaries --topology "$EXAMPLE" --state "$WORK/state" --out "$WORK/out" --node nosuch 2> "$WORK/err" >/dev/null && fail "--node nosuch accepted"
grep -q "nosuch" "$WORK/err" || fail "--node nosuch message"

# 8. --out pointing at a directory kbundle did not make is refused, untouched.
mkdir "$WORK/home"; echo precious > "$WORK/home/file"
"$KBUNDLE" gen --no-binaries --topology "$EXAMPLE" --state "$WORK/state" --out "$WORK/home" 2> "$WORK/err" >/dev/null && fail "gen replaced a foreign directory"
[ "$(cat "$WORK/home/file")" = precious ] || fail "foreign --out dir changed"

# 9. --json summary carries no secrets.
"$KBUNDLE" gen --no-binaries --topology "$EXAMPLE" --state "$WORK/state" --out "$WORK/out" --json > "$WORK/summary.json"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d['nodes'])==6, d" "$WORK/summary.json" || fail "--json summary"
grep -q "PRIVATE KEY\|BEGIN" "$WORK/summary.json" && fail "--json leaks PEM data"
pass "state reused, SAN change reissues one cert, foreign/damaged/locked state refused, --node and --out safe"
