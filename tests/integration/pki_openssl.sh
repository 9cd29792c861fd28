#!/usr/bin/env bash
# Every certificate of the example cluster verifies with `openssl verify`
# against the right CA, and says what ARTIFACTS.md says it must.
source "$(dirname "$0")/lib.bash"
need openssl
gen_example
S=$WORK/state/ca; O=$WORK/out
checked=0

# check CERT CA SUBJECT_REGEX EKU SAN_REGEX...
check() {
  local cert=$1 ca=$2 subject=$3 eku=$4; shift 4
  openssl verify -CAfile "$S/$ca.crt" "$cert" >/dev/null 2>&1 || fail "$cert does not verify against $ca"
  local text; text=$(openssl x509 -in "$cert" -noout -subject -ext basicConstraints,keyUsage,extendedKeyUsage,subjectAltName -nameopt RFC2253)
  grep -Eq "subject=$subject\$" <<<"$text" || fail "$cert: subject is not $subject: $(grep subject= <<<"$text")"
  grep -q "CA:FALSE" <<<"$text" || fail "$cert: not CA:FALSE"
  grep -q "Digital Signature" <<<"$text" || fail "$cert: keyUsage lacks digitalSignature"
  local eku_line; eku_line=$(grep -A1 "Extended Key Usage" <<<"$text" | tail -1 | tr -d ' ')
  [ "$eku_line" = "$eku" ] || fail "$cert: EKU is '$eku_line', want '$eku'"
  for san in "$@"; do grep -Eq "$san" <<<"$text" || fail "$cert: missing SAN $san"; done
  local serial; serial=$(openssl x509 -in "$cert" -noout -serial | cut -d= -f2)
  [ ${#serial} -ge 30 ] || fail "$cert: serial $serial is shorter than 120 bits"
  checked=$((checked + 1))
}

for ca in kubernetes-ca etcd-ca front-proxy-ca; do
  openssl verify -CAfile "$S/$ca.crt" "$S/$ca.crt" >/dev/null || fail "$ca is not a valid self-signed CA"
  openssl x509 -in "$S/$ca.crt" -noout -ext basicConstraints | grep >/dev/null -e "CA:TRUE" || fail "$ca: not CA:TRUE"
  days=$(( ($(date -d "$(openssl x509 -in "$S/$ca.crt" -noout -enddate | cut -d= -f2)" +%s) - $(date +%s)) / 86400 ))
  [ "$days" -ge 3640 ] && [ "$days" -le 3651 ] || fail "$ca: valid for $days days, want 10 years"
done

for i in 0 1 2; do
  n=control-$i ip=10.0.1.$((10 + i)) K=$O/control-$i/var/lib/kubernetes E=$O/control-$i/etc/etcd
  check "$K/kube-apiserver.crt" kubernetes-ca "CN=kube-apiserver" "TLSWebServerAuthentication" \
    "DNS:kubernetes," "DNS:kubernetes.default," "DNS:kubernetes.default.svc," "DNS:kubernetes.default.svc.cluster.local" \
    "DNS:$n" "IP Address:$ip" "IP Address:127.0.0.1" "IP Address:10.32.0.1" "DNS:api.kthw.example.com"
  check "$K/apiserver-kubelet-client.crt" kubernetes-ca "CN=kube-apiserver-kubelet-client" "TLSWebClientAuthentication"
  check "$K/apiserver-etcd-client.crt" etcd-ca "CN=kube-apiserver-etcd-client" "TLSWebClientAuthentication"
  check "$K/front-proxy-client.crt" front-proxy-ca "CN=front-proxy-client" "TLSWebClientAuthentication"
  for c in server peer; do
    check "$E/$c.crt" etcd-ca "CN=$n" "TLSWebServerAuthentication,TLSWebClientAuthentication" \
      "DNS:$n" "DNS:localhost" "IP Address:$ip" "IP Address:127.0.0.1"
  done
  # The Kubernetes CA cert and key on the node are the state's.
  cmp -s "$K/ca.crt" "$S/kubernetes-ca.crt" || fail "$n: ca.crt differs from the state's kubernetes-ca"
  cmp -s "$K/etcd-ca.crt" "$S/etcd-ca.crt" || fail "$n: etcd-ca.crt differs from the state's"
  days=$(( ($(date -d "$(openssl x509 -in "$K/kube-apiserver.crt" -noout -enddate | cut -d= -f2)" +%s) - $(date +%s)) / 86400 ))
  [ "$days" -ge 364 ] && [ "$days" -le 366 ] || fail "leaf valid for $days days, want 365"
done
for i in 0 1 2; do
  n=worker-$i ip=10.0.1.$((20 + i))
  check "$O/$n/var/lib/kubelet/kubelet.crt" kubernetes-ca "CN=system:node:$n,O=system:nodes" \
    "TLSWebServerAuthentication,TLSWebClientAuthentication" "DNS:$n" "IP Address:$ip"
done
# An EC key by default.
openssl x509 -in "$O/worker-0/var/lib/kubelet/kubelet.crt" -noout -text | grep >/dev/null -e "id-ecPublicKey" || fail "default key is not ECDSA"
openssl pkey -in "$O/worker-0/var/lib/kubelet/kubelet.key" -noout -check 2>/dev/null || fail "kubelet key does not parse"

# RSA on request.
sed 's/^\(  *\)keyType:.*/\1keyType: rsa-2048/' "$EXAMPLE" > "$WORK/rsa.yaml"
grep -q "keyType: rsa-2048" "$WORK/rsa.yaml" || printf '%s\n' "$(sed 's/^cluster:$/cluster:\n  keyType: rsa-2048/' "$EXAMPLE")" > "$WORK/rsa.yaml"
"$KBUNDLE" gen --no-binaries --topology "$WORK/rsa.yaml" --state "$WORK/rsa-state" --out "$WORK/rsa-out" --format dir >/dev/null
openssl x509 -in "$WORK/rsa-out/worker-0/var/lib/kubelet/kubelet.crt" -noout -text | grep >/dev/null -e "Public-Key: (2048 bit)" || fail "rsa-2048 not honoured"
openssl verify -CAfile "$WORK/rsa-state/ca/kubernetes-ca.crt" "$WORK/rsa-out/worker-0/var/lib/kubelet/kubelet.crt" >/dev/null || fail "rsa chain"
pass "$checked leaf certificates and 3 CAs verified with openssl"
