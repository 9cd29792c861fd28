#!/usr/bin/env bash
# A connection dropped in the middle of an upload is retried: a proxy in front of moto_server cuts
# (TCP RST) the first connection after 1 MiB of a 12 MiB bundle's multipart upload; publish still
# succeeds, reports the retry, and the object in S3 has exactly the bundle's bytes.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/aws_moto.bash"
source "$(dirname "$0")/publish_lib.bash"
need sha256sum cmp
start_moto
export AWS_REGION=us-east-1
make_bucket kb-test
gen_bundles
grow_bundle worker-2 12

python3 -u "$(dirname "$0")/publish_drop_proxy.py" 127.0.0.1 "${MOTO_URL##*:}" 1048576 >"$WORK/proxy.log" 2>&1 &
PROXY_PID=$!
cleanup "kill $PROXY_PID 2>/dev/null; wait $PROXY_PID 2>/dev/null"
for _ in $(seq 1 50); do [ -s "$WORK/proxy.log" ] && break; sleep 0.1; done
PROXY_URL=http://127.0.0.1:$(head -1 "$WORK/proxy.log")

start=$(date +%s.%N)
AWS_ENDPOINT_URL=$PROXY_URL "$KBUNDLE" publish --out "$WORK/out" --to s3://kb-test/r/ --part-size 5 --no-installer --json \
  >"$WORK/p.json" 2>"$WORK/p.err" || { cat "$WORK/p.err" "$WORK/proxy.log" >&2; fail "publish through the dropping proxy failed"; }
end=$(date +%s.%N)
grep -q "^cut a connection after" "$WORK/proxy.log" || fail "the proxy cut nothing: the test proves nothing"
J=$(cat "$WORK/p.json")
[ "$(jget "$J" '[o["retries"] for o in j["objects"] if o["name"]=="worker-2.kbundle"][0]')" -ge 1 ] || fail "no retry reported: $J"
[ "$(jget "$J" '[o["parts"] for o in j["objects"] if o["name"]=="worker-2.kbundle"][0]')" = 3 ] || fail "not 3 parts: $J"

# The stored object, fetched directly from moto (signed), is the bundle byte for byte.
s3curl --fail-with-body -o "$WORK/got.kbundle" "$MOTO_URL/kb-test/r/worker-2.kbundle" || fail "GET worker-2"
cmp "$WORK/got.kbundle" "$WORK/out/worker-2.kbundle" || fail "the stored bytes differ from the bundle"
"$KBUNDLE" inspect --pubkey "$WORK/out/bundle-signing.pub" "$WORK/got.kbundle" >/dev/null || fail "stored bundle does not verify"
# No multipart upload was left behind.
s3curl "$MOTO_URL/kb-test?uploads=" | grep >/dev/null "<Upload>" && fail "an unfinished multipart upload is left"

echo "publish_retry: $(sed -n 2p "$WORK/proxy.log"); $(stat -c %s "$WORK/out/worker-2.kbundle") bytes in" \
  "$(python3 -c "print(f'{$end - $start:.2f}')") s"
pass "a connection dropped mid-upload was retried; the stored object is byte-identical"
