# Shared by the publish_*.sh tests (sourced after lib.bash): bundles in the default format, one of
# them made larger than a multipart part, and helpers for a moto S3 bucket.

REBUNDLE=$KB_BUILD_DIR/tests/kb_e2e_rebundle
INSTALLER=$KB_BUILD_DIR/installer/kbundle-installer

# gen_bundles: $WORK/state, $WORK/out with one <node>.kbundle per node.
gen_bundles() {
  "$KBUNDLE" gen --no-binaries --topology "${1:-$EXAMPLE}" --state "$WORK/state" --out "$WORK/out" >"$WORK/gen.log" 2>&1 ||
    { cat "$WORK/gen.log" >&2; fail "kbundle gen failed"; }
}

# grow_bundle NODE MIB: re-signs NODE's bundle (serial + 1) with a file replaced by MIB MiB of
# random bytes, so that the bundle itself is that large and still verifies.
grow_bundle() {
  [ -x "$REBUNDLE" ] || fail "kb_e2e_rebundle not built at $REBUNDLE"
  head -c "$(($2 * 1048576))" /dev/urandom >"$WORK/filler"
  local path
  path=$("$KBUNDLE" inspect --json --pubkey "$WORK/out/bundle-signing.pub" "$WORK/out/$1.kbundle" |
    python3 -c 'import json,sys; print(next(e["path"] for e in json.load(sys.stdin)["entries"] if e["type"] == "file"))')
  "$REBUNDLE" --in "$WORK/out/$1.kbundle" --pub "$WORK/out/bundle-signing.pub" --key "$WORK/state/keys/bundle-signing.key" \
    --out "$WORK/$1.big" --serial +1 --replace "$path=$WORK/filler" >"$WORK/rebundle.log" 2>&1 ||
    { cat "$WORK/rebundle.log" >&2; fail "kb_e2e_rebundle failed"; }
  mv "$WORK/$1.big" "$WORK/out/$1.kbundle"
}

# s3curl ARGS...: curl signed with the test's moto credentials.
EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
s3curl() {
  curl -sS --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: $EMPTY_SHA" "$@"
}
make_bucket() { s3curl --fail-with-body -X PUT "$MOTO_URL/$1" >/dev/null || fail "moto: CreateBucket $1"; }
# moto checks header signatures but not query-string ones (it wants an Authorization header):
# presigned URLs are checked against botocore's signer instead, and fetched with auth off.
moto_auth() { curl -fsS -o /dev/null -H "Content-Type: text/plain" --data-binary "$1" "$MOTO_URL/moto-api/reset-auth" || fail "moto: reset-auth"; }

sha() { sha256sum "$1" | cut -d' ' -f1; }
# jget JSON EXPR (as in aws_moto.bash): a Python expression over the parsed JSON `j`.
declare -F jget >/dev/null || jget() { python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }
