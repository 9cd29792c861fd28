#!/usr/bin/env bash
# Issue 13, item 3: the state pins every CA and long-lived key when it is made. Each file of the
# state swapped for another valid one (made with openssl), or only its cert, only its key, a
# cert of another CA, a truncated or garbage file, a missing file: `kbundle gen` refuses, names
# the file, exits nonzero, and leaves out/ and the state exactly as they were.
source "$(dirname "$0")/lib.bash"
need openssl
S=$WORK/state O=$WORK/out
"$KBUNDLE" gen --no-binaries --topology "$EXAMPLE" --state "$S" --out "$O" >"$WORK/gen.log" 2>&1 || { cat "$WORK/gen.log" >&2; fail "first gen"; }
cp -a "$S" "$WORK/pristine"
snapall() { (cd "$WORK" && find state out -type f ! -name .lock -exec sha256sum {} + | LC_ALL=C sort); }

ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
new_ca() { ec_key "$S/ca/$1.key" && openssl req -x509 -new -key "$S/ca/$1.key" -subj "/CN=$1" -days 3650 -out "$S/ca/$1.crt" 2>/dev/null; }
cases=0
# swap NAME FILE-NAMED COMMANDS...
swap() {
  local name=$1 named=$2
  shift 2
  rm -rf "$S" && cp -a "$WORK/pristine" "$S"
  (cd "$S" && eval "$@") || fail "$name: could not make the swap"
  local before rc=0
  before=$(snapall)
  "$KBUNDLE" gen --no-binaries --topology "$EXAMPLE" --state "$S" --out "$O" >"$WORK/swap.log" 2>&1 || rc=$?
  [ $rc -ne 0 ] || { cat "$WORK/swap.log" >&2; fail "$name: gen accepted it (exit 0)"; }
  grep -q -- "$S/$named: damaged state: " "$WORK/swap.log" || { cat "$WORK/swap.log" >&2; fail "$name: the message does not name $named"; }
  [ "$(snapall)" = "$before" ] || fail "$name: gen changed out/ or the state"
  cases=$((cases + 1))
}
for ca in kubernetes-ca etcd-ca front-proxy-ca; do
  swap "$ca: another matching pair" "ca/$ca.crt" new_ca $ca
  swap "$ca: only the cert (same key, new self-signed cert)" "ca/$ca.crt" \
    "openssl req -x509 -new -key ca/$ca.key -subj /CN=$ca -days 3650 -out ca/$ca.crt 2>/dev/null"
  swap "$ca: only the key" "ca/$ca.key" ec_key ca/$ca.key
done
swap "etcd-ca: a cert of etcd-ca's key signed by kubernetes-ca" ca/etcd-ca.crt \
  "openssl req -new -key ca/etcd-ca.key -subj /CN=etcd-ca 2>/dev/null | openssl x509 -req -CA ca/kubernetes-ca.crt -CAkey ca/kubernetes-ca.key -days 365 -out ca/etcd-ca.crt 2>/dev/null"
swap "service-account: another matching pair" keys/service-account.key \
  "ec_key keys/service-account.key && openssl pkey -in keys/service-account.key -pubout -out keys/service-account.pub"
swap "bundle-signing: another Ed25519 pair" keys/bundle-signing.key \
  "openssl genpkey -algorithm ed25519 -out keys/bundle-signing.key && openssl pkey -in keys/bundle-signing.key -pubout -out keys/bundle-signing.pub"
swap "encryption key: another 32 random bytes" keys/encryption.key "openssl rand -base64 32 > keys/encryption.key"
swap "truncated CA cert" ca/etcd-ca.crt "head -c 200 ca/etcd-ca.crt > t && mv t ca/etcd-ca.crt"
swap "garbage public key" keys/service-account.pub "echo garbage > keys/service-account.pub"
swap "missing CA key" ca/front-proxy-ca.key "rm ca/front-proxy-ca.key"

# The pristine state is still accepted, and gen then changes nothing.
rm -rf "$S" && cp -a "$WORK/pristine" "$S"
"$KBUNDLE" gen --no-binaries --topology "$EXAMPLE" --state "$S" --out "$O" >"$WORK/gen.log" 2>&1 || fail "gen on the restored state"
pass "$cases swaps of CAs and keys refused, each naming its file; out/ and the state unchanged"
