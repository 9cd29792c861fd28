#!/usr/bin/env bash
# First boot (docs/aws.md, "User data"): `kbundle aws up` against moto (signature checking on)
# renders for each instance a user-data script with presigned GET URLs for exactly its own bundle
# (botocore's signer agrees), the installer's sha256 and the signing-key fingerprint of the state it
# created as gen would; `kbundle publish` uploads to exactly those keys. The scripts then run for
# real, as cloud-init would (root, a private mount namespace with tmpfs over /var/lib and
# /usr/local/bin, so the host's are never written), through s3_tls_front.py (HTTPS with a test CA,
# checks presigned signatures as S3 does, which moto does not): one waits while its objects are
# missing and succeeds once published; one gives up at a short deadline with one clear last line;
# an installer whose sha256 differs is refused and never run; another node's key
# (SignatureDoesNotMatch), an expired URL and an http:// URL stop at once with no retry. No log
# ever holds a URL's signature or the secret key.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/aws_moto.bash"
source "$(dirname "$0")/publish_lib.bash"
need openssl sha256sum unshare
[ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null ||
  skip "needs root and unshare -m (the boot scripts write /var/lib/kbundle and /usr/local/bin, here in a private mount namespace)"
python3 -c 'import botocore, boto3' 2>/dev/null || skip "botocore/boto3 are not installed"
T0=$(date +%s.%N)
start_moto
export AWS_REGION=us-east-1
make_bucket kb-boot
DEST=s3://kb-boot/clusters/kthw/

# A test CA and the front's certificate for localhost; only the boot scripts' curl trusts it, through
# curl's own CURL_CA_BUNDLE.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/ca.key" -out "$WORK/ca.pem" \
  -subj /CN=kb-boot-test-ca -days 2 2>/dev/null || fail "openssl: test CA"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/tls.key" -subj /CN=localhost 2>/dev/null |
  openssl x509 -req -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -days 2 -out "$WORK/tls.pem" \
    -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n') 2>/dev/null ||
  fail "openssl: front certificate"
FRONT_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo 0 >"$WORK/skew"
python3 "$(dirname "$0")/s3_tls_front.py" --listen "127.0.0.1:$FRONT_PORT" --upstream "$MOTO_URL" --cert "$WORK/tls.pem" \
  --key "$WORK/tls.key" --log "$WORK/front.log" --skew-file "$WORK/skew" --no-list-file "$WORK/no-list" >"$WORK/front.out" 2>&1 &
FRONT_PID=$!
cleanup "kill $FRONT_PID 2>/dev/null; wait $FRONT_PID 2>/dev/null"
for _ in $(seq 1 100); do grep -qs ready "$WORK/front.out" && break; sleep 0.1; done
grep -q ready "$WORK/front.out" || fail "the TLS front did not start: $(cat "$WORK/front.out")"

make_topology "$WORK/t.yaml"
cp "$WORK/t.yaml" "$WORK/t0.yaml"
printf '  userData:\n    bundles: %s\n' "$DEST" >>"$WORK/t.yaml"
# kbundle-installer's stand-in: records its arguments and verifies the bundle with the key beside it.
cat >"$WORK/stub-installer" <<SH
#!/bin/sh
echo "\$*" >>"$WORK/applied"
[ "\$1" = apply ] && [ "\$2" = --trust-fingerprint ] || exit 2
"$KBUNDLE" inspect --pubkey "\$(dirname "\$4")/bundle-signing.pub" "\$4" >/dev/null || exit 3
[ ! -f "$WORK/stub-rc" ] || exit "\$(cat "$WORK/stub-rc")"
SH
chmod 0755 "$WORK/stub-installer"
# logger's stand-in: what would reach the journal.
mkdir -p "$WORK/bin"
printf '#!/bin/sh\necho "$*" >>%s\n' "$WORK/journal" >"$WORK/bin/logger"
chmod 0755 "$WORK/bin/logger"

# 1. Refusals before anything is created: a missing installer; plan without a state creates none.
expect 1 "--installer $WORK/none: not found" "$KBUNDLE" aws up --topology "$WORK/t.yaml" --state "$WORK/state" --installer "$WORK/none"
[ ! -e "$WORK/state" ] || fail "up without an installer created the state"
AWS_ENDPOINT_URL_S3=https://localhost:$FRONT_PORT "$KBUNDLE" aws plan --topology "$WORK/t.yaml" --state "$WORK/state" \
  --installer "$WORK/stub-installer" >"$WORK/plan.out" 2>&1 || { cat "$WORK/plan.out" >&2; fail "plan failed"; }
grep -q "state $WORK/state does not exist yet" "$WORK/plan.out" || fail "plan did not say the state is missing: $(cat "$WORK/plan.out")"
[ ! -e "$WORK/state" ] || fail "plan created the state"
# Temporary credentials: warned about (the URLs die with the session).
AWS_SESSION_TOKEN=FQoGZXIvYXdzEXAMPLE AWS_ENDPOINT_URL_S3=https://localhost:$FRONT_PORT "$KBUNDLE" aws plan \
  --topology "$WORK/t.yaml" --state "$WORK/state" --installer "$WORK/stub-installer" >"$WORK/plan2.out" 2>&1 || true
grep -q "are temporary (a session token)" "$WORK/plan2.out" || grep -q "does not exist yet" "$WORK/plan2.out" ||
  fail "no temporary-credentials warning: $(cat "$WORK/plan2.out")"

# 2. up: creates the state as gen would, launches the instances with their user data.
T1=$(date +%s.%N)
AWS_ENDPOINT_URL_S3=https://localhost:$FRONT_PORT "$KBUNDLE" aws up --topology "$WORK/t.yaml" --state "$WORK/state" \
  --installer "$WORK/stub-installer" >"$WORK/up.out" 2>"$WORK/up.err" || { cat "$WORK/up.out" "$WORK/up.err" >&2; fail "aws up failed"; }
T2=$(date +%s.%N)
grep -q "created state $WORK/state" "$WORK/up.out" || fail "up did not say it created the state: $(cat "$WORK/up.out")"
grep -q "valid until 20[0-9-]*T[0-9:]*Z" "$WORK/up.out" || fail "up did not print when the URLs expire"
grep -q -- "$AWS_SECRET_ACCESS_KEY\|X-Amz-Signature" "$WORK/up.out" "$WORK/up.err" && fail "up printed a credential"
# The temporary-credentials warning, now that the state exists (moto may refuse the token afterwards).
AWS_SESSION_TOKEN=FQoGZXIvYXdzEXAMPLE AWS_ENDPOINT_URL_S3=https://localhost:$FRONT_PORT "$KBUNDLE" aws plan \
  --topology "$WORK/t.yaml" --state "$WORK/state" --installer "$WORK/stub-installer" >"$WORK/plan3.out" 2>&1 || true
grep -q "are temporary (a session token): the presigned URLs in the user data stop working when that session expires" \
  "$WORK/plan3.out" || fail "no temporary-credentials warning: $(cat "$WORK/plan3.out")"

mkdir -p "$WORK/ud"
python3 - "$MOTO_URL" "$WORK/ud" <<'PY' || fail "reading the user data back with boto3"
import base64, sys, boto3
ec2 = boto3.client("ec2", endpoint_url=sys.argv[1], region_name="us-east-1")
for r in ec2.describe_instances()["Reservations"]:
    for i in r["Instances"]:
        node = {t["Key"]: t["Value"] for t in i.get("Tags", [])}.get("kbundle:node")
        data = ec2.describe_instance_attribute(InstanceId=i["InstanceId"], Attribute="userData")["UserData"]["Value"]
        open(f"{sys.argv[2]}/{node}.sh", "wb").write(base64.b64decode(data))
PY
NODES=$(cd "$WORK/ud" && ls | sed 's/\.sh$//')
[ "$(echo "$NODES" | wc -l)" = 6 ] || fail "expected user data for 6 nodes: $NODES"
val() { sed -n "s/^$1='\\(.*\\)'\$/\\1/p" "$2"; }
FP=$(val fingerprint "$WORK/ud/worker-0.sh")
for n in $NODES; do
  f=$WORK/ud/$n.sh
  [ "$(stat -c %s "$f")" -lt 16384 ] || fail "$n: user data over 16 KB"
  url=$(val bundle_url "$f")
  case $url in "https://localhost:$FRONT_PORT/kb-boot/clusters/kthw/$n.kbundle?"*X-Amz-Expires=604800*) ;;
    *) fail "$n: bundle URL is not its own presigned key: ${url%%\?*}" ;; esac
  [ "$(val bundle_name "$f")" = "${DEST}$n.kbundle" ] || fail "$n: bundle label"
  python3 "$(dirname "$0")/publish_presign_check.py" "$url" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" us-east-1 ||
    fail "$n: presigned URL not what botocore signs"
  python3 "$(dirname "$0")/publish_presign_check.py" "$(val installer_url "$f")" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" us-east-1 ||
    fail "$n: installer URL not what botocore signs"
  [ "$(val installer_sha256 "$f")" = "$(sha "$WORK/stub-installer")" ] || fail "$n: installer sha256 not pinned"
  [ "$(val fingerprint "$f")" = "$FP" ] || fail "$n: another fingerprint"
  grep -q '^KB_BOOT_DEADLINE=1800$' "$f" || fail "$n: no KB_BOOT_DEADLINE line"
  grep -q 'http://' "$f" && fail "$n: the user data holds an http:// URL"
done

# run_boot NAME SCRIPT [DEADLINE]: runs SCRIPT as root in a private mount namespace with short
# waits (the lines tests may edit); status in $WORK/NAME.rc, stderr in $WORK/NAME.log, the files
# it left (mode and path) in $WORK/NAME.files.
run_boot() {
  sed -e "s/^KB_BOOT_DEADLINE=1800\$/KB_BOOT_DEADLINE=${3:-60}/" -e 's/^KB_BOOT_DELAY=5$/KB_BOOT_DELAY=1/' \
    -e 's/^KB_BOOT_MAX_DELAY=60$/KB_BOOT_MAX_DELAY=2/' "$2" >"$WORK/$1.run.sh"
  local rc=0
  CURL_CA_BUNDLE=${BOOT_CA:-$WORK/ca.pem} PATH=$WORK/bin:$PATH unshare -m sh -c '
    mount -t tmpfs -o mode=0755 kb-var /var/lib && mount -t tmpfs -o mode=0755 kb-bin /usr/local/bin || exit 99
    sh "$1"; rc=$?
    find /var/lib /usr/local/bin -mindepth 1 -printf "%m %p\n" | sort >"$2.files"
    exit $rc' sh "$WORK/$1.run.sh" "$WORK/$1" 2>"$WORK/$1.log" || rc=$?
  echo "$rc" >"$WORK/$1.rc"
}
rc_of() { cat "$WORK/$1.rc"; }
requests() { grep -c "^GET /kb-boot/clusters/kthw/$1 " "$WORK/front.log" || true; }

# 3. Booted before anything is published: worker-0 waits (deadline 60 s) through S3's two answers
# for a missing object (403 AccessDenied while the signer may not list the bucket, then 404
# NoSuchKey); control-0 gives up (3 s).
touch "$WORK/no-list"
run_boot worker-0 "$WORK/ud/worker-0.sh" 60 &
W0=$!
for _ in $(seq 1 100); do [ "$(cat "$WORK/worker-0.log" 2>/dev/null | grep -c '403 AccessDenied')" -ge 2 ] && break; sleep 0.1; done
rm "$WORK/no-list"
run_boot control-0 "$WORK/ud/control-0.sh" 3
[ "$(rc_of control-0)" = 1 ] || fail "control-0 gave up with status $(rc_of control-0): $(cat "$WORK/control-0.log")"
tail -n 1 "$WORK/control-0.log" | grep -q "^kbundle-boot: FAILED: node control-0 of cluster kthw was not installed: ${DEST}kbundle-installer: not published yet (HTTP 404 NoSuchKey); gave up after 3 s (KB_BOOT_DEADLINE)" ||
  fail "control-0's last line: $(tail -n 1 "$WORK/control-0.log")"
[ "$(grep -c 'not published yet.*; try [0-9]*, next in' "$WORK/control-0.log")" -ge 2 ] || fail "control-0 did not log each try: $(cat "$WORK/control-0.log")"
grep -q "not published yet, or not readable (HTTP 403 AccessDenied: Access Denied); try 2" "$WORK/worker-0.log" ||
  fail "worker-0 did not wait through 403 AccessDenied: $(cat "$WORK/worker-0.log")"
grep -q "not published yet (HTTP 404 NoSuchKey)" "$WORK/worker-0.log" || fail "worker-0 did not wait through 404: $(cat "$WORK/worker-0.log")"

T3=$(date +%s.%N)
gen_bundles "$WORK/t.yaml"
[ "$(cat "$WORK/out/bundle-signing.sha256")" = "$FP" ] || fail "gen signed with another key than the one up pinned"
grep -q "user data pins: signing key sha256:$FP, kbundle-installer sha256 $(sha "$WORK/stub-installer")" "$WORK/up.out" ||
  fail "up did not print what it pinned: $(cat "$WORK/up.out")"
AWS_ENDPOINT_URL_S3=$MOTO_URL "$KBUNDLE" publish --out "$WORK/out" --to "$DEST" --installer "$WORK/stub-installer" --json \
  >"$WORK/publish.json" 2>"$WORK/publish.err" || { cat "$WORK/publish.err" >&2; fail "publish failed"; }
T4=$(date +%s.%N)
grep -q "kbundle: warning: s3://kb-boot: it has no Block Public Access configuration of its own" "$WORK/publish.err" ||
  fail "publish did not warn about a bucket without Block Public Access: $(cat "$WORK/publish.err")"
wait "$W0" || true
T5=$(date +%s.%N)
[ "$(rc_of worker-0)" = 0 ] || fail "worker-0 exited $(rc_of worker-0): $(cat "$WORK/worker-0.log")"
tail -n 1 "$WORK/worker-0.log" | grep -q "^kbundle-boot: done: node worker-0 of cluster kthw installed its bundle$" ||
  fail "worker-0's last line: $(tail -n 1 "$WORK/worker-0.log")"
grep -qx "apply --trust-fingerprint sha256:$FP /var/lib/kbundle/incoming/worker-0.kbundle" "$WORK/applied" ||
  fail "the installer was called with: $(cat "$WORK/applied")"
for want in "700 /var/lib/kbundle" "700 /var/lib/kbundle/incoming" "600 /var/lib/kbundle/incoming/worker-0.kbundle" \
  "600 /var/lib/kbundle/incoming/bundle-signing.pub" "755 /usr/local/bin/kbundle-installer"; do
  grep -qx "$want" "$WORK/worker-0.files" || fail "worker-0 left no '$want': $(cat "$WORK/worker-0.files")"
done
# Every try went to the console and to the journal.
[ "$(grep -c '^kbundle-boot: ' "$WORK/worker-0.log")" -ge 4 ] || fail "worker-0 logged too little"
[ "$(grep -c . "$WORK/journal")" -ge "$(($(grep -c '^kbundle-boot: ' "$WORK/worker-0.log") + $(grep -c '^kbundle-boot: ' "$WORK/control-0.log")))" ] ||
  fail "not every line reached logger: $(cat "$WORK/journal")"

# 4. publish put every object at exactly the key the user data names.
for n in $NODES; do
  key=$(val bundle_name "$WORK/ud/$n.sh"); key=${key#s3://kb-boot/}
  s3curl -fI "$MOTO_URL/kb-boot/$key" >"$WORK/head" || fail "$n: nothing at $key"
  grep -qi "^x-amz-meta-sha256: $(sha "$WORK/out/$n.kbundle")" "$WORK/head" || fail "$n: $key is not its bundle"
done
s3curl -fI "$MOTO_URL/kb-boot/clusters/kthw/kbundle-installer" | grep -qi "^x-amz-meta-sha256: $(sha "$WORK/stub-installer")" ||
  fail "the installer is not at the key the user data names"

# 5. Another node's key in a URL: SignatureDoesNotMatch, final, one request.
sed "s#^bundle_url='\\(.*\\)/worker-1.kbundle?#bundle_url='\\1/control-0.kbundle?#" "$WORK/ud/worker-1.sh" >"$WORK/swapped.sh"
grep -q "/control-0.kbundle?" "$WORK/swapped.sh" || fail "could not swap the key"
before=$(requests control-0.kbundle)
run_boot swapped "$WORK/swapped.sh"
[ "$(rc_of swapped)" = 1 ] || fail "another node's key: status $(rc_of swapped)"
tail -n 1 "$WORK/swapped.log" | grep -q "FAILED: node worker-1 .*: ${DEST}worker-1.kbundle: the URL's signature does not match (HTTP 403 SignatureDoesNotMatch).*; not retried$" ||
  fail "swapped key: $(tail -n 1 "$WORK/swapped.log")"
[ "$(requests control-0.kbundle)" = $((before + 1)) ] || fail "a refused signature was retried"
grep -q 'control-0.kbundle' "$WORK/swapped.files" && fail "control-0's bundle landed on worker-1"

# 6. An installer whose sha256 differs (an older upload at the key): deleted unrun, waited past until
# the deadline, never installed.
printf '#!/bin/sh\ntouch %s\n' "$WORK/evil-ran" >"$WORK/evil-installer"
curl -fsS --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
  -H "x-amz-content-sha256: $(sha "$WORK/evil-installer")" -T "$WORK/evil-installer" "$MOTO_URL/kb-boot/clusters/kthw/kbundle-installer" >/dev/null ||
  fail "could not replace the installer"
run_boot evil "$WORK/ud/worker-1.sh" 3
[ "$(rc_of evil)" = 1 ] || fail "a changed installer: status $(rc_of evil)"
tail -n 1 "$WORK/evil.log" | grep -q "FAILED: .*kbundle-installer: sha256 $(sha "$WORK/evil-installer") is not $(sha "$WORK/stub-installer"), the one kbundle aws up pinned; not run .*; gave up after 3 s" ||
  fail "changed installer: $(tail -n 1 "$WORK/evil.log")"
grep -q "kbundle-installer: sha256 .* not run .*; try 2, next in" "$WORK/evil.log" || fail "a changed installer was not waited past: $(cat "$WORK/evil.log")"
[ ! -e "$WORK/evil-ran" ] || fail "the changed installer was run"
grep -q 'kbundle-installer' "$WORK/evil.files" && fail "the changed installer was left on the node: $(cat "$WORK/evil.files")"
# (and with the bucket's public access blocked, publish has nothing to warn about)
python3 -c 'import boto3, sys; boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1").put_public_access_block(
    Bucket="kb-boot", PublicAccessBlockConfiguration={k: True for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")})' \
  "$MOTO_URL" || fail "could not block public access"
AWS_ENDPOINT_URL_S3=$MOTO_URL "$KBUNDLE" publish --out "$WORK/out" --to "$DEST" --installer "$WORK/stub-installer" \
  >"$WORK/publish2.out" 2>&1 || { cat "$WORK/publish2.out" >&2; fail "publish again failed"; }
grep -q "warning" "$WORK/publish2.out" && fail "publish warned about a private bucket: $(cat "$WORK/publish2.out")"

# 7. An expired URL (the front's clock 8 days on): final, one request.
echo 700000 >"$WORK/skew"
before=$(requests kbundle-installer)
run_boot expired "$WORK/ud/worker-2.sh"
echo 0 >"$WORK/skew"
[ "$(rc_of expired)" = 1 ] || fail "an expired URL: status $(rc_of expired)"
tail -n 1 "$WORK/expired.log" | grep -q "kbundle-installer: the URL has expired (HTTP 403 AccessDenied: Request has expired; it was valid until 20.*); not retried$" ||
  fail "expired: $(tail -n 1 "$WORK/expired.log")"
[ "$(requests kbundle-installer)" = $((before + 1)) ] || fail "an expired URL was retried"

# 8. An http:// URL: curl refuses it (--proto =https), final.
sed "s#^bundle_url='https://localhost:$FRONT_PORT/#bundle_url='http://127.0.0.1:$MOTO_PORT/#" "$WORK/ud/worker-2.sh" >"$WORK/http.sh"
run_boot http "$WORK/http.sh"
[ "$(rc_of http)" = 1 ] || fail "an http:// URL: status $(rc_of http)"
tail -n 1 "$WORK/http.log" | grep -q "worker-2.kbundle: curl refused the URL (https only); not retried$" || fail "http: $(tail -n 1 "$WORK/http.log")"

# 9. A server whose certificate the node does not trust (another CA): final, nothing fetched.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/other-ca.key" -out "$WORK/other-ca.pem" \
  -subj /CN=other-ca -days 2 2>/dev/null || fail "openssl: other CA"
before=$(grep -c . "$WORK/front.log")
BOOT_CA=$WORK/other-ca.pem run_boot tls "$WORK/ud/worker-2.sh"
[ "$(rc_of tls)" = 1 ] || fail "an untrusted certificate: status $(rc_of tls)"
tail -n 1 "$WORK/tls.log" | grep -q "kbundle-installer: TLS: curl: (60) .*; not retried$" || fail "tls: $(tail -n 1 "$WORK/tls.log")"
[ "$(grep -c . "$WORK/front.log")" = "$before" ] || fail "a request got through an untrusted TLS connection"

# 10. The untouched scripts of the other nodes install.
for n in worker-1 worker-2 control-1; do
  run_boot "ok-$n" "$WORK/ud/$n.sh"
  [ "$(rc_of "ok-$n")" = 0 ] || fail "$n: status $(rc_of "ok-$n"): $(cat "$WORK/ok-$n.log")"
done

# 10b. Installed, but the bootstrap objects not applied (the installer's exit 6): the script says so
# and keeps the 6, so cloud-init reports the boot as failed and the line says what to run.
echo 6 >"$WORK/stub-rc"
run_boot rc6 "$WORK/ud/control-0.sh"
rm -f "$WORK/stub-rc"
[ "$(rc_of rc6)" = 6 ] || fail "installer exit 6: status $(rc_of rc6)"
tail -n 1 "$WORK/rc6.log" | grep -q "FAILED: node control-0 .* installed its bundle, but the bootstrap objects were not applied: run kbundle-installer bootstrap" ||
  fail "exit 6: $(tail -n 1 "$WORK/rc6.log")"

# 11. bundleURL instead of bundles (another cluster): the template expanded per node, the installer
# URL's sha256 pinned too, labels without the query.
sed 's/^  name: kthw  /  name: kthw2 /' "$WORK/t0.yaml" >"$WORK/t2.yaml"
printf "  userData:\n    bundleURL: 'https://bundles.example.com/{cluster}/{node}.kbundle?token=abc'\n    installerURL: https://bundles.example.com/kbundle-installer\n" >>"$WORK/t2.yaml"
"$KBUNDLE" aws up --topology "$WORK/t2.yaml" --state "$WORK/state2" --installer "$WORK/stub-installer" --keep-topology \
  >"$WORK/up2.out" 2>&1 || { cat "$WORK/up2.out" >&2; fail "aws up with bundleURL failed"; }
mkdir -p "$WORK/ud2"
python3 - "$MOTO_URL" "$WORK/ud2" <<'PY' || fail "reading the user data back with boto3"
import base64, sys, boto3
ec2 = boto3.client("ec2", endpoint_url=sys.argv[1], region_name="us-east-1")
for r in ec2.describe_instances(Filters=[{"Name": "tag:kbundle:cluster", "Values": ["kthw2"]}])["Reservations"]:
    for i in r["Instances"]:
        node = {t["Key"]: t["Value"] for t in i.get("Tags", [])}.get("kbundle:node")
        data = ec2.describe_instance_attribute(InstanceId=i["InstanceId"], Attribute="userData")["UserData"]["Value"]
        open(f"{sys.argv[2]}/{node}.sh", "wb").write(base64.b64decode(data))
PY
f=$WORK/ud2/worker-1.sh
[ -f "$f" ] || fail "no user data for kthw2's worker-1"
[ "$(val bundle_url "$f")" = "https://bundles.example.com/kthw2/worker-1.kbundle?token=abc" ] || fail "bundleURL: $(val bundle_url "$f")"
[ "$(val bundle_name "$f")" = "https://bundles.example.com/kthw2/worker-1.kbundle" ] || fail "bundleURL label: $(val bundle_name "$f")"
[ "$(val installer_url "$f")" = "https://bundles.example.com/kbundle-installer" ] || fail "installerURL: $(val installer_url "$f")"
[ "$(val installer_sha256 "$f")" = "$(sha "$WORK/stub-installer")" ] || fail "installerURL: sha256 not pinned"
[ "$(val fingerprint "$f")" != "$FP" ] || fail "kthw2 pinned kthw's signing key"

# No log, journal line or front record holds a signature, a credential or the secret.
for f in "$WORK"/*.log "$WORK/journal" "$WORK/front.log"; do
  grep -q "X-Amz-\|$AWS_SECRET_ACCESS_KEY\|$AWS_ACCESS_KEY_ID" "$f" && fail "$f holds a credential"
done
T6=$(date +%s.%N)
[ -n "${KB_BOOT_KEEP:-}" ] && cp -r "$WORK" "$KB_BOOT_KEEP"
pass "$(printf 'up %.1f s; gen+publish %.1f s; a waiting node done %.1f s after publish; whole test %.1f s' \
  "$(echo "$T2 - $T1" | bc)" "$(echo "$T4 - $T3" | bc)" "$(echo "$T5 - $T4" | bc)" "$(echo "$T6 - $T0" | bc)")"
