#!/usr/bin/env bash
# Issue 16, section 2, with real etcd 3.4: a three-member cluster installed by kbundle-installer from
# our bundles (systemd-nspawn nodes, Debian's etcd, the kube-* stand-ins as in etcd_nodes.sh) lives
# through a whole etcd-ca rotation applied ONE NODE AT A TIME:
#   phase 1 (trust old+new) -> phase 2 (every etcd cert reissued by the new CA) -> phase 3 (old CA
#   dropped) -> complete (the new CA becomes the state's etcd-ca; the bundles' etcd files stay as in 3).
# After every single apply, i.e. in each mixed state of a rollout, from the host with etcdctl and the
# apiserver's etcd client certificate and trust bundle of EVERY node (the updated ones and the ones
# not yet updated: each node's apiserver must still reach etcd): every member's endpoint is healthy,
# the member list shows 3 started members, and a key written before the rotation reads back from
# each member. Prints the time of the full rotation (gen + apply node by node, all phases).
source "$(dirname "$0")/../integration/lib.bash"
source "$(dirname "$0")/nspawn.bash"
nspawn_require
need etcd etcdctl openssl

names=(control-0 control-1 control-2)
ips=("$NSPAWN_NET.1" "$NSPAWN_NET.2" "$NSPAWN_NET.3")
nspawn_control_plane_topology "$WORK/topology.yaml"
GENS=$WORK/gens  # bound read-only into every node; one directory of bundles per phase
mkdir -p "$GENS"
gen() {
  "$KBUNDLE" gen --no-binaries --topology "$WORK/topology.yaml" --state "$WORK/state" --out "$GENS/$1" >"$WORK/gen-$1.log" 2>&1 ||
    { cat "$WORK/gen-$1.log" >&2; fail "kbundle gen ($1) failed"; }
}
rotate() {
  "$KBUNDLE" rotate ca --ca etcd-ca --topology "$WORK/topology.yaml" --state "$WORK/state" "$@" >"$WORK/rotate.log" 2>&1 ||
    { cat "$WORK/rotate.log" >&2; fail "kbundle rotate ca --ca etcd-ca $* failed"; }
  sed -n 's/^kbundle: \(.*phase.*\|completed.*\)/    \1/p' "$WORK/rotate.log" | cut -c1-110
}
gen p0

nspawn_base
lap "base root ready"
nspawn_net_up
for i in 0 1 2; do
  nspawn_prepare "${names[$i]}" "${ips[$i]}"
  nspawn_control_plane_bins "$(nspawn_root "${names[$i]}")"
  nspawn_boot "${names[$i]}" --bind-ro="$GENS:/opt/gens" --bind-ro="$INSTALLER:/usr/local/sbin/kbundle-installer"
done
for n in "${names[@]}"; do nspawn_wait "$n"; done
lap "3 nodes booted"

# The first install: all three at once (etcd needs quorum to report healthy).
pids=()
for i in 0 1 2; do
  node "${names[$i]}" /usr/local/sbin/kbundle-installer apply --trust-key /opt/gens/p0/bundle-signing.pub \
    "/opt/gens/p0/${names[$i]}.kbundle" >"$WORK/apply-p0-$i.log" 2>&1 &
  pids+=($!)
done
for i in 0 1 2; do wait "${pids[$i]}" || { cat "$WORK/apply-p0-$i.log" >&2; fail "first apply on ${names[$i]} failed"; }; done
nspawn_etcd_client "${names[0]}" "${ips[@]}"
nspawn_etcd_check  # writes $NSPAWN_ETCD_KEY before the rotation
lap "etcd cluster up, key written"

ENDPOINTS=https://${ips[0]}:2379,https://${ips[1]}:2379,https://${ips[2]}:2379
# as_apiserver_of NODE ARGS...: etcdctl from the host with NODE's apiserver etcd client cert and trust.
as_apiserver_of() {
  local n=$1 d=$WORK/client-$1
  shift
  ETCDCTL_API=3 etcdctl --endpoints="$ENDPOINTS" --cacert "$d/ca.crt" --cert "$d/client.crt" --key "$d/client.key" \
    --dial-timeout=3s --command-timeout=5s "$@"
}
CHECKS=0
# every_apiserver_reaches_etcd WHEN: for each node's current client cert + trust bundle: all members
# healthy, 3 started members, the key reads back from each member.
every_apiserver_reaches_etcd() {
  local when=$1 n d ip got tries
  for n in "${names[@]}"; do
    d=$WORK/client-$n
    mkdir -p -m 0700 "$d"
    node "$n" cat /var/lib/kubernetes/etcd-ca.crt >"$d/ca.crt"
    node "$n" cat /var/lib/kubernetes/apiserver-etcd-client.crt >"$d/client.crt"
    node "$n" cat /var/lib/kubernetes/apiserver-etcd-client.key >"$d/client.key"
    # A member restarted by the apply may take a moment to rejoin its peers.
    for tries in $(seq 1 40); do as_apiserver_of "$n" endpoint health >/dev/null 2>&1 && break; sleep 0.25; done
    as_apiserver_of "$n" endpoint health >"$WORK/health.log" 2>&1 ||
      { cat "$WORK/health.log" >&2; fail "$when: with $n's apiserver etcd client cert, not every member is healthy"; }
    [ "$(as_apiserver_of "$n" member list | grep -c ', started, ')" = 3 ] ||
      { as_apiserver_of "$n" member list >&2; fail "$when: with $n's client cert, the member list is not 3 started members"; }
    for ip in "${ips[@]}"; do
      got=$(as_apiserver_of "$n" get "$NSPAWN_ETCD_KEY" --print-value-only --endpoints="https://$ip:2379") ||
        fail "$when: with $n's client cert, cannot read from $ip"
      [ "$got" = "$NSPAWN_ETCD_VALUE" ] || fail "$when: with $n's client cert, read '$got' from $ip"
    done
    CHECKS=$((CHECKS + 1))
  done
}
# issuers: which CA (old/new by subject) issued each node's etcd server cert, for the progress line.
issuers() {
  local n s out=""
  for n in "${names[@]}"; do
    s=$(node "$n" openssl x509 -in /etc/etcd/server.crt -noout -issuer)
    case $s in *"etcd-ca 20"*) out+="new " ;; *) out+="old " ;; esac
  done
  echo "${out% }"
}
every_apiserver_reaches_etcd "before the rotation"

rotation_start=$(date +%s%N)
for phase in 1 2 3 4; do
  case $phase in
    1) rotate ;;
    *) rotate --advance ;;
  esac
  # (rotation/encryption.json stays: it records the encryption key in use, not a rotation's file.)
  [ $phase = 4 ] && { [ -z "$(ls -A "$WORK/state/rotation" | grep -vx encryption.json)" ] || fail "completion left rotation files"; }
  gen "p$phase"
  for i in 0 1 2; do
    n=${names[$i]}
    node "$n" /usr/local/sbin/kbundle-installer apply "/opt/gens/p$phase/$n.kbundle" >"$WORK/apply-p$phase-$i.log" 2>&1 ||
      { cat "$WORK/apply-p$phase-$i.log" >&2; node "$n" systemctl --no-pager status etcd.service | tail -n 15 >&2 || true
        fail "phase $phase: apply on $n failed"; }
    trust=$(node "$n" grep -c 'BEGIN CERTIFICATE' /etc/etcd/ca.crt)
    case $phase in 1 | 2) want=2 ;; *) want=1 ;; esac
    [ "$trust" = "$want" ] || fail "phase $phase: $n's /etc/etcd/ca.crt holds $trust CAs, want $want"
    every_apiserver_reaches_etcd "phase $phase, ${names[*]:0:$((i + 1))} applied"
    lap "phase $phase: $n applied (server certs by: $(issuers)), etcd ok"
  done
done
rotation_ms=$((($(date +%s%N) - rotation_start) / 1000000))
[ "$(issuers)" = "new new new" ] || fail "after the rotation, etcd server certs are not all by the new CA: $(issuers)"
[ "$(openssl x509 -in "$WORK/state/ca/etcd-ca.crt" -noout -subject)" != "subject=CN = etcd-ca" ] || fail "the state's etcd-ca is still the old one"

for nm in "${names[@]}"; do nspawn_stop "$nm"; done
lap "nodes stopped and removed"
lap_table
printf 'etcd-ca rotation (3 phases + completion, gen and apply node by node on 3 nodes): %d.%01d s\n' \
  $((rotation_ms / 1000)) $((rotation_ms % 1000 / 100))
pass "etcd $(etcd --version | awk 'NR==1 {print $3}'): 3 members healthy and readable with every node's apiserver client cert after each of 12 node-by-node applies ($CHECKS checks); full etcd-ca rotation $((rotation_ms / 1000)).$((rotation_ms % 1000 / 100)) s"
