#!/usr/bin/env bash
# A real 3-member etcd cluster (Debian's etcd) with mutual TLS, from the
# generated certs and the flags of the generated etcd.service units, one member
# per network namespace. etcdctl with the apiserver's etcd client cert can
# write and read; with a kubelet cert (kubernetes-ca) it is refused.
source "$(dirname "$0")/lib.bash"
need etcd etcdctl ip openssl
[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"
ip netns add kb-etcd-probe 2>/dev/null || skip "cannot create network namespaces here"
ip netns del kb-etcd-probe

net=10.79.0 br=kb-etcd-br
cat > "$WORK/topology.yaml" <<YAML
cluster:
  name: etcdtest
  kubernetesVersion: v1.32.3
  apiEndpoint: {host: $net.11, port: 6443}
nodes:
  - {name: control-0, role: control-plane, privateIP: $net.11}
  - {name: control-1, role: control-plane, privateIP: $net.12}
  - {name: control-2, role: control-plane, privateIP: $net.13}
  - {name: worker-0, role: worker, privateIP: $net.21}
YAML
gen_example "$WORK/topology.yaml"

# Network: a bridge on the host, one namespace per member (stale ones from a crashed run removed first).
for i in 0 1 2; do ip netns del kb-etcd-$i 2>/dev/null || true; done
ip link del $br 2>/dev/null || true
ip link add $br type bridge && ip addr add $net.254/24 dev $br && ip link set $br up
cleanup "ip link del $br"
for i in 0 1 2; do
  ns=kb-etcd-$i
  ip netns add $ns; cleanup "ip netns del $ns"
  ip link add kb-etcd-v$i type veth peer name eth0 netns $ns
  ip link set kb-etcd-v$i master $br up
  ip -n $ns addr add $net.$((11 + i))/24 dev eth0
  ip -n $ns link set eth0 up; ip -n $ns link set lo up
done

# Start each member with exactly the flags of its unit, paths mapped into the test dir.
etcd_bin=$(command -v etcd)
for i in 0 1 2; do
  unit=$WORK/out/control-$i/etc/systemd/system/etcd.service
  [ -f "$unit" ] || fail "no etcd.service for control-$i"
  grep -q '^Type=notify' "$unit" || fail "etcd.service is not Type=notify"
  cmd=$(sed -n '/^ExecStart=/,/[^\\]$/p' "$unit" | sed 's/^ExecStart=//; s/\\$//' | tr '\n' ' ')
  cmd=${cmd//\/usr\/local\/bin\/etcd/$etcd_bin}
  cmd=${cmd//\/etc\/etcd\//$WORK/out/control-$i/etc/etcd/}
  cmd=${cmd//\/var\/lib\/etcd/$WORK/data-$i}
  grep -q -- "--initial-cluster control-0=https://$net.11:2380,control-1=https://$net.12:2380,control-2=https://$net.13:2380\|--initial-cluster=control-0=https://$net.11:2380,control-1=https://$net.12:2380,control-2=https://$net.13:2380" <<<"$cmd" ||
    fail "control-$i: --initial-cluster does not list all members over https: $cmd"
  mkdir -m 0700 "$WORK/data-$i"
  # shellcheck disable=SC2086
  ip netns exec kb-etcd-$i $cmd > "$WORK/etcd-$i.log" 2>&1 &
  pid=$!; cleanup "kill $pid; wait $pid 2>/dev/null"
done

K=$WORK/out/control-0/var/lib/kubernetes
ok=(etcdctl --endpoints=https://$net.11:2379,https://$net.12:2379,https://$net.13:2379 --cacert "$K/etcd-ca.crt"
    --cert "$K/apiserver-etcd-client.crt" --key "$K/apiserver-etcd-client.key" --dial-timeout=3s)
healthy=0
for _ in $(seq 1 60); do
  if ETCDCTL_API=3 "${ok[@]}" endpoint health >/dev/null 2>&1; then healthy=1; break; fi
  sleep 0.5
done
[ $healthy -eq 1 ] || { tail -n 20 "$WORK"/etcd-*.log >&2; fail "the cluster did not become healthy in 30 s"; }
members=$(ETCDCTL_API=3 "${ok[@]}" member list | wc -l)
[ "$members" -eq 3 ] || fail "member list shows $members members"
ETCDCTL_API=3 "${ok[@]}" put /kbundle/test "hello from kbundle" >/dev/null || fail "put refused"
got=$(ETCDCTL_API=3 "${ok[@]}" get /kbundle/test --print-value-only --endpoints=https://$net.13:2379)
[ "$got" = "hello from kbundle" ] || fail "read back '$got'"

# A Kubernetes client cert (signed by kubernetes-ca) must not open etcd.
W=$WORK/out/worker-0/var/lib/kubelet
if ETCDCTL_API=3 etcdctl --endpoints=https://$net.11:2379 --cacert "$K/etcd-ca.crt" --cert "$W/kubelet.crt" \
     --key "$W/kubelet.key" --dial-timeout=3s --command-timeout=5s get /kbundle/test >/dev/null 2>&1; then
  fail "etcd accepted a kubelet certificate"
fi
# Nor a client with no certificate.
if ETCDCTL_API=3 etcdctl --endpoints=https://$net.11:2379 --cacert "$K/etcd-ca.crt" --dial-timeout=3s \
     --command-timeout=5s get /kbundle/test >/dev/null 2>&1; then
  fail "etcd accepted a client without a certificate"
fi
pass "3-member etcd $(etcd --version | head -1 | awk '{print $3}') healthy over mutual TLS; kubelet cert and no cert refused"
