#!/usr/bin/env bash
# The whole first-boot flow as a user runs it, on three real nodes (systemd-nspawn, systemd as
# PID 1, one IP each on a private bridge):
#   kbundle aws up (moto: EC2, ELBv2) -> kbundle gen (bound to the instance ids up wrote) ->
#   kbundle publish --to s3:// (moto S3) -> each node runs exactly the user data up gave its
#   instance, read back from moto (DescribeInstanceAttribute userData), as cloud-init would.
# Then: every node installed its own bundle, the 3-member etcd cluster is healthy over mutual TLS,
# kbundle-recover.service is enabled, and the designated node (the first control-plane node)
# applied the bootstrap objects against the stand-in API (contract C: one server-side-apply PATCH
# per object, field manager kbundle, client CN kbundle:bootstrap).
# Also, on the way:
#   - control-0 and control-1 boot before anything is published: they wait, log their tries,
#     and install once `publish` has run;
#   - a late node with control-1's user data, its wait (KB_BOOT_DEADLINE) shortened to 2 s, gives
#     up before anything is published: one retry, one clear last line, exit 1, nothing installed;
#   - control-2 first boots with a bundle signed by another key at its own S3 key: the installer
#     refuses it (exit 3) and nothing is installed; then it boots afresh with the real one;
#   - a stray node given control-2's user data with the S3 key changed to control-0's cannot read
#     it (403 SignatureDoesNotMatch), gives up at once with one clear line, installs nothing.
#
# Real: kbundle, kbundle-installer, moto_server (signature checking on), systemd, etcd, curl, the
# user data. Stand-ins (test only): tests/integration/s3_tls_front.py (HTTPS in front of moto's S3
# on the bridge's host address, and S3's presigned-URL check, which moto lacks);
# tests/e2e/imds_standin.py (each node's IMDSv2, in its own network namespace: moto's emulation
# names every caller i-fake); kube-apiserver & co (tests/e2e/kube-standin, which runs
# tests/standins/kube-api-standin.py); and in place of cloud-init a unit that runs the user data
# from /var/lib/cloud/instance/scripts/part-001 once per instance, as root, after the network is
# up, as cloud-init's final stage does. See docs/aws.md, "The flow, tested end to end".
source "$(dirname "$0")/../integration/lib.bash"
source "$(dirname "$0")/nspawn.bash"
nspawn_require
need etcd etcdctl openssl python3 curl
source "$KB_SOURCE_DIR/tests/integration/aws_moto.bash"
python3 -c 'import botocore, boto3, yaml' 2>/dev/null || skip "python3 botocore/boto3/yaml are not installed (they come with moto[server])"
E2E=$KB_SOURCE_DIR/tests/e2e

names=(control-0 control-1 control-2)
ips=("$NSPAWN_NET.11" "$NSPAWN_NET.12" "$NSPAWN_NET.13")
STRAY=stray STRAY_IP=$NSPAWN_NET.14
LATE=late LATE_IP=$NSPAWN_NET.15
FRONT=$NSPAWN_NET.254  # the bridge's host address: where nodes reach "AWS"
BUCKET=kb-e2e-bundles PREFIX=clusters/e2e/

# 1. A test CA and the front's certificate for the bridge address (the nodes trust the CA).
mkdir -m 0700 "$WORK/ca"
ossl() { openssl "$@" 2>>"$WORK/ca/openssl.log" || { cat "$WORK/ca/openssl.log" >&2; fail "openssl $1"; }; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=kbundle e2e test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
  -keyout "$WORK/ca/ca.key" -out "$WORK/ca/ca.crt"
ossl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$FRONT" \
  -keyout "$WORK/ca/front.key" -out "$WORK/ca/front.csr"
printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$FRONT" >"$WORK/ca/front.ext"
ossl x509 -req -in "$WORK/ca/front.csr" -CA "$WORK/ca/ca.crt" -CAkey "$WORK/ca/ca.key" -CAcreateserial -days 2 \
  -extfile "$WORK/ca/front.ext" -out "$WORK/ca/front.crt"

nspawn_base
lap "base root ready"
nspawn_net_up
start_moto
python3 "$KB_SOURCE_DIR/tests/integration/s3_tls_front.py" --listen "$FRONT:443" --upstream "$MOTO_URL" \
  --cert "$WORK/ca/front.crt" --key "$WORK/ca/front.key" --log "$WORK/front.log" >"$WORK/front.out" 2>&1 &
FRONT_PID=$!
cleanup "kill $FRONT_PID 2>/dev/null; wait $FRONT_PID 2>/dev/null"
for _ in $(seq 1 100); do grep -q ready "$WORK/front.out" && break; kill -0 $FRONT_PID || break; sleep 0.1; done
grep -q ready "$WORK/front.out" || { cat "$WORK/front.out" >&2; fail "the TLS front did not start"; }
export AWS_REGION=us-east-1
# The bucket exists beforehand, as a user's would (publish does not create buckets).
curl -sS --fail-with-body --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
  -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
  -X PUT "$MOTO_URL/$BUCKET" >/dev/null || fail "moto: CreateBucket $BUCKET"
lap "moto, its TLS front, the bucket"

# 2. aws up against moto: the nodes' private IPs are the nspawn nodes' addresses.
ssh-keygen -q -t ed25519 -N '' -C kbundle-e2e -f "$WORK/id_ed25519" >/dev/null
T=$WORK/topology.yaml
nspawn_control_plane_topology "$T"
cat >>"$T" <<YAML
aws:
  region: us-east-1
  vpcCIDR: $NSPAWN_NET.0/16
  subnetCIDR: $NSPAWN_NET.0/24
  image:
    name: "ubuntu/images/hvm-ssd/ubuntu-*-amd64-server-*"
    owner: "099720109477"
  sshPublicKeyFile: $WORK/id_ed25519.pub
  adminCIDR: 203.0.113.0/24
  userData:
    bundles: s3://$BUCKET/$PREFIX
YAML
# kbundle talks to moto directly (EC2, ELBv2; S3 for publish); the URLs up presigns name the front,
# where the nodes reach S3.
AWS_ENDPOINT_URL_S3=https://$FRONT "$KBUNDLE" aws up --topology "$T" --state "$WORK/state" --installer "$INSTALLER" >"$WORK/up.log" 2>&1 ||
  { cat "$WORK/up.log" >&2; fail "kbundle aws up failed"; }
lap "kbundle aws up"

# Each node's instance id (written into the topology by up) and its user data as EC2 holds it.
mkdir -p "$WORK/ud"
python3 - "$T" "$MOTO_URL" "$WORK/ud" <<'PY' || fail "cannot read the instances' user data back from moto"
import base64, sys, yaml, boto3
topo, url, out = sys.argv[1:4]
ec2 = boto3.client("ec2", endpoint_url=url, region_name="us-east-1")
for n in yaml.safe_load(open(topo))["nodes"]:
    iid = n.get("instanceId")
    if not iid:
        sys.exit("up wrote no instanceId for " + n["name"])
    a = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")
    data = base64.b64decode(a["UserData"]["Value"])
    open(f"{out}/{n['name']}.id", "w").write(iid)
    open(f"{out}/{n['name']}.sh", "wb").write(data)
PY
declare -A IID
for n in "${names[@]}"; do
  IID[$n]=$(cat "$WORK/ud/$n.id")
  head -n 1 "$WORK/ud/$n.sh" | grep -q '^#!' || fail "$n: the user data is not a script: $(head -c 200 "$WORK/ud/$n.sh")"
  grep -q -- "--trust-fingerprint" "$WORK/ud/$n.sh" || fail "$n: the user data pins no signing key"
  grep -q "https://$FRONT/$BUCKET/$PREFIX$n.kbundle?" "$WORK/ud/$n.sh" || fail "$n: no presigned URL of its own bundle in the user data"
done
# The stray node's user data: control-2's, with its URL's S3 key changed to control-0's.
sed "s#/$BUCKET/$PREFIX${names[2]}.kbundle?#/$BUCKET/$PREFIX${names[0]}.kbundle?#" "$WORK/ud/${names[2]}.sh" >"$WORK/ud/$STRAY.sh"
cmp -s "$WORK/ud/${names[2]}.sh" "$WORK/ud/$STRAY.sh" && fail "could not change the stray node's URL"
# The late node's: control-1's with the wait shortened to 2 s (the one line tests may edit), so it
# gives up before anything is published.
sed 's/^KB_BOOT_DEADLINE=1800$/KB_BOOT_DEADLINE=2/' "$WORK/ud/${names[1]}.sh" >"$WORK/ud/$LATE.sh"
cmp -s "$WORK/ud/${names[1]}.sh" "$WORK/ud/$LATE.sh" && fail "no line KB_BOOT_DEADLINE=1800 in the user data"

# 3. Nodes: the base root plus what an AMI would carry (the test CA in the CA store, etcd, the
#    stand-ins) and a unit that runs the user data once at boot, as root, as cloud-init does.
declare -A IMDS_PID
imds_start() {  # imds_start NODE INSTANCE_ID: IMDSv2 on 169.254.169.254:80 in the node's netns
  local ns=${NSPAWN_PREFIX}$1
  ip -n "$ns" addr add 169.254.169.254/32 dev lo
  ip netns exec "$ns" python3 "$E2E/imds_standin.py" 169.254.169.254:80 "$2" "$(nspawn_dir "$1")/imds.log" \
    >"$(nspawn_dir "$1")/imds.out" 2>&1 &
  IMDS_PID[$1]=$!
  cleanup "kill ${IMDS_PID[$1]} 2>/dev/null; wait ${IMDS_PID[$1]} 2>/dev/null"
  for _ in $(seq 1 50); do grep -qs ready "$(nspawn_dir "$1")/imds.out" && return 0; sleep 0.1; done
  cat "$(nspawn_dir "$1")/imds.out" >&2
  fail "$1: the IMDS stand-in did not start"
}
imds_stop() { kill "${IMDS_PID[$1]}" 2>/dev/null; wait "${IMDS_PID[$1]}" 2>/dev/null || true; }
prepare_node() {  # prepare_node NAME IP USER_DATA INSTANCE_ID
  local name=$1 root
  _nspawn_teardown "$name"
  rm -rf "$(nspawn_dir "$name")"  # a new instance: nothing of an earlier boot (root, journal, console)
  nspawn_prepare "$name" "$2"
  root=$(nspawn_root "$name")
  install -D -m 0644 "$WORK/ca/ca.crt" "$root/usr/local/share/ca-certificates/kbundle-e2e-ca.crt"
  cat "$WORK/ca/ca.crt" >>"$root/etc/ssl/certs/ca-certificates.crt"  # what update-ca-certificates adds
  nspawn_control_plane_bins "$root"
  install -D -m 0700 "$3" "$root/var/lib/cloud/instance/scripts/part-001"
  cat >"$root/etc/systemd/system/kb-user-data.service" <<'UNIT'
[Unit]
Description=Instance user data, once (kbundle e2e stand-in for cloud-init's cloud-final scripts-user)
After=network-online.target
Wants=network-online.target
ConditionPathExists=!/var/lib/cloud/instance/sem/user-data.done

[Service]
Type=exec
ExecStart=/var/lib/cloud/instance/scripts/part-001
ExecStopPost=/bin/sh -c 'mkdir -p /var/lib/cloud/instance/sem && touch /var/lib/cloud/instance/sem/user-data.done'
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
UNIT
  mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
  ln -sf ../kb-user-data.service "$root/etc/systemd/system/multi-user.target.wants/kb-user-data.service"
  imds_start "$name" "$4"
}
# A console device whose output goes to the node's console.log, as an instance's console output
# does (the shared --console=pipe gives the node no /dev/console).
boot_node() { nspawn_boot "$1" --console=read-only; }
ud_state() {  # ud_state NODE -> "running" | "exit N"
  local s
  s=$(node "$1" systemctl show -p ExecMainExitTimestampMonotonic -p ExecMainStatus --value kb-user-data.service | paste -sd' ')
  case $s in 0\ * | "") echo running ;; *) echo "exit ${s#* }" ;; esac
}
ud_wait() {  # ud_wait NODE SECONDS -> prints the final state
  local i st
  for ((i = 0; i < $2 * 5; i++)); do
    st=$(ud_state "$1")
    [ "$st" = running ] || { echo "$st"; return 0; }
    sleep 0.2
  done
  echo running
}
ud_seconds() {  # how long the user data ran, in whole seconds
  local t
  t=$(node "$1" systemctl show -p ExecMainStartTimestampMonotonic -p ExecMainExitTimestampMonotonic --value kb-user-data.service | paste -sd' ')
  echo $(((${t#* } - ${t% *}) / 1000000))
}
# ud_gave_up NODE SECONDS PATTERN WHAT: the user data ended with exit 1 within SECONDS and its log
# (kept as $WORK/ud-NODE.log) holds PATTERN.
ud_gave_up() {
  local st
  st=$(ud_wait "$1" "$2")
  ud_log "$1" >"$WORK/ud-$1.log"
  [ "$st" = "exit 1" ] || { cat "$WORK/ud-$1.log" >&2; fail "$1 ($4): user data $st, expected exit 1"; }
  grep -q -- "$3" "$WORK/ud-$1.log" || { cat "$WORK/ud-$1.log" >&2; fail "$1 ($4): no '$3' in its log"; }
}
ud_log() { node "$1" journalctl -q --no-pager -o cat -u kb-user-data.service 2>/dev/null || true; }
ud_tries() { node "$1" journalctl -q --no-pager -o cat -t kbundle-boot 2>/dev/null || true; }  # logger -t kbundle-boot
nothing_installed() {  # nothing_installed NODE: no bundle file, no unit, no installer generation
  local n=$1 f
  for f in /etc/systemd/system/etcd.service /var/lib/kubernetes /etc/etcd /var/lib/kbundle/current; do
    node "$n" test -e "$f" && fail "$n: $f exists, but nothing should have been installed"
  done
  [ "$(node "$n" systemctl is-active etcd.service)" != active ] || fail "$n: etcd runs, but nothing should have been installed"
  [ -z "$(node "$n" find /var/lib/kbundle -maxdepth 1 -name 'staging-*')" ] || fail "$n: a staging directory was left"
}

for i in 0 1; do prepare_node "${names[$i]}" "${ips[$i]}" "$WORK/ud/${names[$i]}.sh" "${IID[${names[$i]}]}"; done
prepare_node "${names[2]}" "${ips[2]}" "$WORK/ud/${names[2]}.sh" "${IID[${names[2]}]}"
prepare_node "$LATE" "$LATE_IP" "$WORK/ud/$LATE.sh" "${IID[${names[1]}]}"
for n in "${names[0]}" "${names[1]}" "$LATE"; do boot_node "$n"; done
for n in "${names[0]}" "${names[1]}" "$LATE"; do nspawn_wait "$n"; done
lap "control-0, control-1, late booted; none published"

# 4. gen (bound to the instance ids) and, for the wrong-key case, gen from another state.
"$KBUNDLE" gen --no-binaries --topology "$T" --state "$WORK/state" --out "$WORK/out" >"$WORK/gen.log" 2>&1 ||
  { cat "$WORK/gen.log" >&2; fail "kbundle gen failed"; }
for n in "${names[@]}"; do
  "$KBUNDLE" inspect --pubkey "$WORK/out/bundle-signing.pub" "$WORK/out/$n.kbundle" >"$WORK/inspect-$n.txt" ||
    fail "$n: inspect of its bundle failed"
  grep -q "EC2 instance ${IID[$n]}$" "$WORK/inspect-$n.txt" || fail "$n: the bundle is not bound to instance ${IID[$n]}"
done
"$KBUNDLE" gen --no-binaries --topology "$T" --state "$WORK/other-state" --out "$WORK/other-out" >"$WORK/gen-other.log" 2>&1 ||
  { cat "$WORK/gen-other.log" >&2; fail "kbundle gen (other state) failed"; }
lap "kbundle gen (and gen from another state)"

# The early nodes have tried and are waiting.
for n in "${names[0]}" "${names[1]}"; do
  # A retry line: "...: not published yet (HTTP 404 NoSuchKey); try 1, next in 5 s (gives up in ...)".
  for _ in $(seq 1 300); do ud_tries "$n" | grep -q "not published yet.*next in" && break; sleep 0.1; done
  ud_tries "$n" | grep -q "not published yet.*next in" ||
    { ud_log "$n" >&2; fail "$n: no retry logged by the user data (journal, tag kbundle-boot)"; }
  [ "$(ud_state "$n")" = running ] || { ud_log "$n" >&2; fail "$n: the user data stopped before its bundle was published: $(ud_state "$n")"; }
done
lap "control-0, control-1 waiting for their bundles"

# The late node waited its 2 s (a retry logged), then gave up with one clear line; nothing installed.
ud_gave_up "$LATE" 30 "next in" "its wait shortened to 2 s"
[ "$(ud_tries "$LATE" | tail -n 1 | grep -c "^FAILED: node ${names[1]} of cluster e2e was not installed: .*gave up after 2 s (KB_BOOT_DEADLINE)")" = 1 ] ||
  { cat "$WORK/ud-$LATE.log" >&2; fail "late node: the last line is not the clear give-up line"; }
nothing_installed "$LATE"
nspawn_stop "$LATE"
imds_stop "$LATE"
lap "late node: gave up after its 2 s deadline"

# 5. A bundle signed by another key at control-2's own key: refused at boot, nothing installed.
"$KBUNDLE" publish --out "$WORK/other-out" --to "s3://$BUCKET/$PREFIX" --node "${names[2]}" --installer "$INSTALLER" \
  >"$WORK/publish-other.log" 2>&1 || { cat "$WORK/publish-other.log" >&2; fail "publish of the other key's bundle failed"; }
boot_node "${names[2]}"
nspawn_wait "${names[2]}"
ud_gave_up "${names[2]}" 60 "kbundle-installer apply exited 3" "a bundle signed by another key"
nothing_installed "${names[2]}"
lap "control-2: another key's bundle refused at boot"
nspawn_stop "${names[2]}"
imds_stop "${names[2]}"

# 6. Publish; the waiting nodes install. control-2 boots afresh (a new root, the same instance);
#    the stray node tries control-0's key with control-2's signature.
"$KBUNDLE" publish --out "$WORK/out" --to "s3://$BUCKET/$PREFIX" --installer "$INSTALLER" >"$WORK/publish.log" 2>&1 ||
  { cat "$WORK/publish.log" >&2; fail "kbundle publish failed"; }
lap "kbundle publish --to s3://"

# Every other way to turn one node's URL into another read is refused as S3 refuses it (checked
# from the host, through the front): the URL up wrote reads control-2's bundle, each change does not.
url=$(grep -o "https://$FRONT/$BUCKET/$PREFIX${names[2]}.kbundle?[^\"' ]*" "$WORK/ud/${names[2]}.sh" | head -n 1)
[ -n "$url" ] || fail "no URL for control-2's bundle in its user data"
get() { curl -sS --cacert "$WORK/ca/ca.crt" -o "$WORK/get.body" -w '%{http_code}' "$@" || true; }
[ "$(get "$url")" = 200 ] && cmp -s "$WORK/get.body" "$WORK/out/${names[2]}.kbundle" ||
  fail "control-2's presigned URL does not read its bundle (HTTP $(get "$url"))"
sig=${url##*X-Amz-Signature=}
sig=${sig%%&*}
flip=$(printf %s "$sig" | tr 0-9a-f 1-9a-f0)
declare -A hostile=(
  ["another node's key"]=${url/${names[2]}.kbundle/${names[0]}.kbundle}
  ["the installer's key"]=${url/${names[2]}.kbundle/kbundle-installer}
  ["another bucket"]=${url/\/$BUCKET\//\/$BUCKET-x\/}
  ["another X-Amz-Expires"]=${url/X-Amz-Expires=604800/X-Amz-Expires=604799}
  ["another X-Amz-Date"]=$(sed 's/X-Amz-Date=\([0-9]\{8\}\)T\([0-9]\{6\}\)Z/X-Amz-Date=\1T000000Z/' <<<"$url")
  ["a changed signature"]=${url/$sig/$flip}
  ["a parameter added"]=${url}\&versionId=1
)
for what in "${!hostile[@]}"; do
  [ "${hostile[$what]}" != "$url" ] || fail "could not make the URL with $what"
  code=$(get "${hostile[$what]}")
  [ "$code" = 403 ] && grep -q SignatureDoesNotMatch "$WORK/get.body" ||
    fail "the URL with $what: HTTP $code $(head -c 300 "$WORK/get.body"), expected 403 SignatureDoesNotMatch"
done
[ "$(get "${url%%\?*}")" = 403 ] && grep -q AccessDenied "$WORK/get.body" || fail "an unsigned GET was not refused"
# A URL signed correctly 8 days ago for a week: expired, as S3 says it.
old=$(python3 - "${url%%\?*}" <<'PY'
import datetime, os, sys
import botocore.auth
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
then = datetime.datetime.utcnow() - datetime.timedelta(days=8)
botocore.auth.get_current_datetime = lambda remove_tzinfo=True: then
r = AWSRequest(method="GET", url=sys.argv[1])
S3SigV4QueryAuth(Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]), "s3", "us-east-1",
                 expires=604800).add_auth(r)
print(r.url)
PY
)
[ "$(get "$old")" = 403 ] && grep -q "Request has expired" "$WORK/get.body" || fail "an expired URL was not refused: $(cat "$WORK/get.body")"
lap "${#hostile[@]} changed URLs, expired, unsigned: 403"
prepare_node "${names[2]}" "${ips[2]}" "$WORK/ud/${names[2]}.sh" "${IID[${names[2]}]}"
prepare_node "$STRAY" "$STRAY_IP" "$WORK/ud/$STRAY.sh" i-0e2e0000000000000
boot_node "${names[2]}"
boot_node "$STRAY"
nspawn_wait "${names[2]}"
nspawn_wait "$STRAY"
# One try, one clear last line, no wait.
ud_gave_up "$STRAY" 30 "FAILED: .*SignatureDoesNotMatch.*not retried" "another node's URL"
grep -q "next in" "$WORK/ud-$STRAY.log" && { cat "$WORK/ud-$STRAY.log" >&2; fail "stray: retried a URL whose signature does not match"; }
[ "$(ud_seconds "$STRAY")" -lt 10 ] || fail "stray: took $(ud_seconds "$STRAY") s to give up, not at once"
grep -q "^GET /$BUCKET/$PREFIX${names[0]}.kbundle 403" "$WORK/front.log" || fail "the front refused no read of control-0's bundle"
nothing_installed "$STRAY"
lap "stray node: another node's URL refused (403), gave up"
for n in "${names[@]}"; do
  st=$(ud_wait "$n" 150)
  ud_log "$n" >"$WORK/ud-$n.log"
  [ "$st" = "exit 0" ] || { cat "$WORK/ud-$n.log" >&2; node "$n" journalctl -q --no-pager -u etcd.service | tail -n 20 >&2; fail "$n: user data $st"; }
done
lap "3 nodes installed their bundles"

# 7. What the user has now.
for n in "${names[@]}"; do
  for u in etcd kube-apiserver kube-controller-manager kube-scheduler; do
    [ "$(node "$n" systemctl is-active "$u.service")" = active ] || fail "$n: $u.service is not active"
  done
  [ "$(node "$n" systemctl is-enabled kbundle-recover.service)" = enabled ] || fail "$n: kbundle-recover.service is not enabled"
  # What an operator sees in the instance's console output.
  grep -q "kbundle-boot: done: node $n " "$(nspawn_dir "$n")/console.log" || fail "$n: no 'kbundle-boot: done' on the console"
  grep -q "PUT /latest/api/token 200" "$(nspawn_dir "$n")/imds.log" && grep -q "GET /latest/meta-data/instance-id 200" "$(nspawn_dir "$n")/imds.log" ||
    fail "$n: the installer did not ask IMDSv2 for the instance id"
done
nspawn_etcd_client "${names[0]}" "${ips[@]}"
nspawn_etcd_check
lap "etcd healthy over mutual TLS, recover enabled"

# The certificate metrics timer (i16-certs, docs/certs.md): enabled and active on every node; its
# service writes nothing without node_exporter's directory, and the Prometheus file once it exists.
for n in "${names[@]}"; do
  [ "$(node "$n" systemctl is-active kbundle-cert-metrics.timer)" = active ] || fail "$n: kbundle-cert-metrics.timer is not active"
done
m=${names[1]}
node "$m" systemctl start kbundle-cert-metrics.service
node "$m" test ! -e /var/lib/node_exporter || fail "$m: the metrics service wrote without node_exporter's directory"
node "$m" mkdir -p /var/lib/node_exporter/textfile_collector
node "$m" systemctl start kbundle-cert-metrics.service || { node "$m" journalctl -q --no-pager -u kbundle-cert-metrics.service | tail -n 20 >&2; fail "$m: metrics service"; }
node "$m" cat /var/lib/node_exporter/textfile_collector/kbundle.prom >"$WORK/kbundle.prom" || fail "$m: no kbundle.prom"
grep -q "^kbundle_certificate_days_left{node=\"$m\",path=\"/etc/etcd/server.crt\",source=\"/etc/etcd/server.crt\"" "$WORK/kbundle.prom" &&
  grep -q "^kbundle_certificate_renew_before_days{node=\"$m\"} 30$" "$WORK/kbundle.prom" || { cat "$WORK/kbundle.prom" >&2; fail "$m: kbundle.prom"; }
lap "certificate metrics: timer active, service writes kbundle.prom only where node_exporter's directory is"

# The bootstrap step on the designated node (the first control-plane node), per contract C.
d=${names[0]}
node "$d" test -f /var/lib/kubernetes/bootstrap/objects.json || fail "$d: no bootstrap objects.json installed"
node "$d" cat /var/lib/kubernetes/bootstrap/objects.json >"$WORK/objects.json"
node "$d" cat /run/kbundle-standin/kube-apiserver/requests.jsonl >"$WORK/requests.jsonl" 2>/dev/null ||
  fail "$d: the stand-in API recorded no request"
node "$d" cat /var/lib/kbundle/bootstrap.json >"$WORK/bootstrap.json" 2>/dev/null || fail "$d: no /var/lib/kbundle/bootstrap.json"
node "$d" /usr/local/bin/kbundle-installer status --json >"$WORK/status.json" 2>"$WORK/status.err" ||
  { cat "$WORK/status.err" >&2; fail "$d: kbundle-installer status --json failed"; }
python3 - "$WORK/objects.json" "$WORK/requests.jsonl" "$WORK/bootstrap.json" "$WORK/status.json" <<'PY' || fail "the bootstrap objects were not applied as contract C says"
import hashlib, json, sys
objects = json.load(open(sys.argv[1]))
reqs = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
patches = [r for r in reqs if r["method"] == "PATCH"]
want = [o["api_path"] for o in objects["objects"]]
applied = [r["path"] for r in patches if r["status"] in (200, 201)]
if not want:
    sys.exit("objects.json lists no objects")
if applied != want:  # each object once, in the order objects.json lists them
    sys.exit(f"applied {applied}, expected {want}")
for r in patches:
    if r["field_manager"] != "kbundle" or "force=true" not in r["query"] or r["client_cn"] != "kbundle:bootstrap" \
            or "system:masters" not in r["client_o"] or r["content_type"] != "application/apply-patch+yaml":
        sys.exit(f"a PATCH not as contract C says: { {k: v for k, v in r.items() if k != 'body'} }")
sha = hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()
state = json.load(open(sys.argv[3]))
if state.get("status") != "applied" or state.get("objects_sha256") != sha:
    sys.exit(f"bootstrap.json: status {state.get('status')}, objects_sha256 {state.get('objects_sha256')} (objects.json: {sha})")
status = json.load(open(sys.argv[4])).get("bootstrap") or {}
if status.get("status") != "applied" or status.get("objects_sha256") != sha:
    sys.exit(f"kbundle-installer status --json: bootstrap {status}")
print(f"bootstrap: {len(want)} objects applied with {len(patches)} PATCHes")
PY
for n in "${names[1]}" "${names[2]}"; do
  node "$n" test -e /var/lib/kubernetes/bootstrap/objects.json && fail "$n is not the designated node but has objects.json"
done
lap "bootstrap objects applied on $d (stand-in API)"

for nm in "$STRAY" "${names[@]}"; do nspawn_stop "$nm"; done
lap "nodes stopped and removed"
echo "wall time per step (seconds):"
lap_table
pass "aws up -> gen -> publish -> 3 nodes ran their user data: installed, etcd healthy over mTLS, bootstrap applied; waited for publish; late gave up at its deadline; another key refused (exit 3); another node's URL refused (403)"
