#!/usr/bin/env bash
# kbundle publish --to s3:// against a private moto_server with signature checking on: every bundle,
# the trust key and the installer uploaded with SSE-S3 and x-amz-meta-sha256, a bundle above the part
# size as a multipart upload, only changed objects uploaded again, SSE-KMS on request, presigned URLs
# that botocore's signer agrees with and that plain curl downloads byte for byte, the printed node
# command run as is, and a wrong secret refused without being printed.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/aws_moto.bash"
source "$(dirname "$0")/publish_lib.bash"
need sha256sum
[ -x "$INSTALLER" ] || fail "kbundle-installer not built at $INSTALLER"
start_moto
export AWS_REGION=us-east-1
make_bucket kb-test
gen_bundles
grow_bundle worker-2 12   # 12 MiB: three parts of 5 MiB
DEST=s3://kb-test/clusters/kthw/

# 1. Everything goes up; worker-2 in parts.
start=$(date +%s.%N)
"$KBUNDLE" publish --out "$WORK/out" --to "$DEST" --part-size 5 --installer "$INSTALLER" --json \
  >"$WORK/p1.json" 2>"$WORK/p1.err" || { cat "$WORK/p1.err" >&2; fail "publish failed"; }
end=$(date +%s.%N)
J=$(cat "$WORK/p1.json")
[ "$(jget "$J" 'sorted(set(o["status"] for o in j["objects"]))')" = "['uploaded']" ] || fail "not all uploaded: $J"
[ "$(jget "$J" 'len(j["objects"])')" = 8 ] || fail "expected 6 bundles + key + installer: $J"
[ "$(jget "$J" '[o["parts"] for o in j["objects"] if o["name"]=="worker-2.kbundle"][0]')" = 3 ] || fail "worker-2 not in 3 parts"
[ "$(jget "$J" '[o["parts"] for o in j["objects"] if o["name"]=="worker-0.kbundle"][0]')" = 0 ] || fail "worker-0 not one PUT"
grep -q "$AWS_SECRET_ACCESS_KEY" "$WORK/p1.json" "$WORK/p1.err" && fail "the secret key was printed"

# 2. What landed: encryption, stored sha256, no public grant.
for f in "$WORK"/out/*.kbundle "$WORK/out/bundle-signing.pub"; do
  n=$(basename "$f")
  s3curl -I "$MOTO_URL/kb-test/clusters/kthw/$n" >"$WORK/head" || fail "HEAD $n"
  grep -qi '^x-amz-server-side-encryption: AES256' "$WORK/head" || fail "$n: not SSE-S3: $(cat "$WORK/head")"
  grep -qi "^x-amz-meta-sha256: $(sha "$f")" "$WORK/head" || fail "$n: x-amz-meta-sha256 missing or wrong"
done
s3curl "$MOTO_URL/kb-test/clusters/kthw/control-0.kbundle?acl=" >"$WORK/acl.xml"
grep -q "<Owner>" "$WORK/acl.xml" || fail "no ACL document: $(cat "$WORK/acl.xml")"
grep -qi "AllUsers\|AuthenticatedUsers" "$WORK/acl.xml" && fail "a bundle has a public grant"

# 3. Presigned URLs: the same signature as the AWS SDK's, the same bytes with plain curl.
for i in 0 5; do
  url=$(jget "$J" "j['nodes'][$i]['url']")
  python3 "$(dirname "$0")/publish_presign_check.py" "$url" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" us-east-1 ||
    fail "presigned URL not what botocore signs"
  python3 "$(dirname "$0")/publish_presign_check.py" "$url" "$AWS_ACCESS_KEY_ID" wrong-secret us-east-1 2>/dev/null &&
    fail "the presign check cannot fail"
done
moto_auth inf
mkdir -p "$WORK/dl"
for i in 0 1 2 3 4 5; do
  node=$(jget "$J" "j['nodes'][$i]['node']")
  curl -fsS -o "$WORK/dl/$node.kbundle" "$(jget "$J" "j['nodes'][$i]['url']")" || fail "$node: presigned download"
  cmp "$WORK/dl/$node.kbundle" "$WORK/out/$node.kbundle" || fail "$node: downloaded bytes differ"
done
"$KBUNDLE" inspect --pubkey "$WORK/out/bundle-signing.pub" "$WORK/dl/worker-2.kbundle" >/dev/null || fail "inspect of the download"
# The printed command, run as is (kbundle-installer stood in for by a script that verifies and records).
mkdir -p "$WORK/bin"
cat >"$WORK/bin/kbundle-installer" <<SH
#!/bin/sh
echo "\$@" >"$WORK/installer.args"
"$KBUNDLE" inspect --pubkey bundle-signing.pub "\$4" >/dev/null
SH
chmod +x "$WORK/bin/kbundle-installer"
cmd=$(jget "$J" "j['nodes'][5]['command']" | sed "s#/var/lib/kbundle/incoming#$WORK/node#g")
PATH=$WORK/bin:$PATH bash -c "$cmd" >"$WORK/cmd.log" 2>&1 || { cat "$WORK/cmd.log" >&2; fail "the printed command failed"; }
grep -q "apply --trust-fingerprint sha256:$(cat "$WORK/out/bundle-signing.sha256") worker-2.kbundle" "$WORK/installer.args" ||
  fail "installer called with: $(cat "$WORK/installer.args")"
cmp "$WORK/node/bundle-signing.pub" "$WORK/out/bundle-signing.pub" || fail "the command wrote another key"
moto_auth 0

# 4. Only what changed goes up again.
"$KBUNDLE" publish --out "$WORK/out" --to "$DEST" --part-size 5 --installer "$INSTALLER" --json >"$WORK/p2.json" 2>"$WORK/p2.err" ||
  { cat "$WORK/p2.err" >&2; fail "second publish failed"; }
[ "$(jget "$(cat "$WORK/p2.json")" 'sorted(set(o["status"] for o in j["objects"]))')" = "['unchanged']" ] || fail "re-uploaded unchanged objects"
grow_bundle control-1 1
"$KBUNDLE" publish --out "$WORK/out" --to "$DEST" --installer "$INSTALLER" >"$WORK/p3.out" 2>"$WORK/p3.err" ||
  { cat "$WORK/p3.err" >&2; fail "third publish failed"; }
[ "$(grep -c '^uploaded' "$WORK/p3.out")" = 1 ] && grep -q '^uploaded   s3://kb-test/clusters/kthw/control-1.kbundle' "$WORK/p3.out" ||
  fail "expected only control-1 uploaded: $(cat "$WORK/p3.out")"
grep -q "^# control-1 (serial 2" "$WORK/p3.out" || fail "no command for control-1 serial 2"
grep -q "kbundle-installer apply --trust-fingerprint" "$WORK/p3.out" || fail "no apply command printed"

# 5. SSE-KMS on request.
"$KBUNDLE" publish --out "$WORK/out" --to s3://kb-test/kms/ --kms-key-id alias/kbundle --node worker-0 --no-installer \
  >"$WORK/p4.out" 2>&1 || { cat "$WORK/p4.out" >&2; fail "SSE-KMS publish failed"; }
s3curl -I "$MOTO_URL/kb-test/kms/worker-0.kbundle" >"$WORK/head"
grep -qi '^x-amz-server-side-encryption: aws:kms' "$WORK/head" || fail "not SSE-KMS: $(cat "$WORK/head")"

# 6. Refusals: a wrong secret (moto checks the signature), bad options.
rc=0
AWS_SECRET_ACCESS_KEY=wrong-secret "$KBUNDLE" publish --out "$WORK/out" --to "$DEST" --force --no-installer >"$WORK/bad.log" 2>&1 || rc=$?
[ $rc = 1 ] || { cat "$WORK/bad.log" >&2; fail "a wrong secret: exit $rc, expected 1"; }
grep -q "403" "$WORK/bad.log" || fail "no 403 in: $(cat "$WORK/bad.log")"
grep -q "wrong-secret" "$WORK/bad.log" && fail "the secret was printed"
rc=0; "$KBUNDLE" publish --out "$WORK/out" --to "$DEST" --part-size 4 --no-installer >"$WORK/bad.log" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q -- "--part-size 4: 5 to 512" "$WORK/bad.log" || fail "--part-size 4: exit $rc $(cat "$WORK/bad.log")"
rc=0; "$KBUNDLE" publish --out "$WORK/nothing" --to "$DEST" >"$WORK/bad.log" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "bundle-signing.pub: not found" "$WORK/bad.log" || fail "missing out dir: exit $rc $(cat "$WORK/bad.log")"

printf 'publish_s3: first publish %s s for %s bytes (worker-2: %s bytes in 3 parts)\n' "$(python3 -c "print(f'{$end - $start:.2f}')")" \
  "$(cat "$WORK"/out/*.kbundle "$INSTALLER" | wc -c)" "$(stat -c %s "$WORK/out/worker-2.kbundle")"
pass "S3 upload, multipart, SSE-S3/KMS, integrity, only changed re-uploaded, presigned downloads, wrong secret refused"
