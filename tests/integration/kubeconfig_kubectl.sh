#!/usr/bin/env bash
# kubectl reads every generated kubeconfig; the embedded client certs chain to
# kubernetes-ca; servers are loopback on the control plane and the API endpoint elsewhere.
source "$(dirname "$0")/lib.bash"
need openssl
kubectl version --client >/dev/null 2>&1 || skip "kubectl is not installed"
gen_example
n=0
while IFS= read -r kc; do
  case "$kc" in
    */control-*/var/lib/kubernetes/*) want=https://127.0.0.1:6443 ;;
    *) want=https://api.kthw.example.com:6443 ;;
  esac
  kubectl config view --kubeconfig "$kc" >/dev/null || fail "kubectl rejects $kc"
  server=$(kubectl config view --kubeconfig "$kc" -o jsonpath='{.clusters[0].cluster.server}')
  [ "$server" = "$want" ] || fail "$kc: server $server, want $want"
  ctx=$(kubectl config current-context --kubeconfig "$kc")
  [ "$ctx" = default ] || fail "$kc: current-context $ctx"
  kubectl config view --raw --kubeconfig "$kc" -o jsonpath='{.users[0].user.client-certificate-data}' | base64 -d > "$WORK/client.crt"
  kubectl config view --raw --kubeconfig "$kc" -o jsonpath='{.users[0].user.client-key-data}' | base64 -d > "$WORK/client.key"
  kubectl config view --raw --kubeconfig "$kc" -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d > "$WORK/ca.crt"
  cmp -s "$WORK/ca.crt" "$WORK/state/ca/kubernetes-ca.crt" || fail "$kc: embedded CA is not kubernetes-ca"
  openssl verify -CAfile "$WORK/state/ca/kubernetes-ca.crt" "$WORK/client.crt" >/dev/null || fail "$kc: client cert does not chain"
  [ "$(openssl x509 -in "$WORK/client.crt" -noout -pubkey | openssl sha256)" = "$(openssl pkey -in "$WORK/client.key" -pubout | openssl sha256)" ] ||
    fail "$kc: client key does not match its cert"
  # Without --raw, kubectl redacts the key: proves it parsed the field as key data.
  kubectl config view --kubeconfig "$kc" | grep -E >/dev/null -e "client-key-data: (DATA\+OMITTED|REDACTED)" || fail "$kc: kubectl did not see key data"
  n=$((n + 1))
done < <(find "$WORK/out" -name '*kubeconfig*' -type f | sort)
[ "$n" -eq 16 ] || fail "expected 16 kubeconfigs (3x3 control plane, 3x2 workers, 1 admin), found $n"
user=$(kubectl config view --kubeconfig "$WORK/out/worker-1/var/lib/kubelet/kubeconfig" -o jsonpath='{.users[0].name}')
[ "$user" = system:node:worker-1 ] || fail "kubelet kubeconfig user is $user"
pass "$n kubeconfigs accepted by kubectl $(kubectl version --client 2>/dev/null | head -1)"
