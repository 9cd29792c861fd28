# Phase 3 of an encryption-key rotation on the designated node (docs/rotation.md, G38): the real
# `kbundle gen` makes control-0's phase-3 bundle (reencrypt-secrets.json and the kbundle:bootstrap
# identity it issues); kb_e2e_rebundle points its API address and the health gate at the python
# kube-apiserver stand-in (tests/standins/kube-api-standin.py) on a free loopback port, seeded with
# 230 Secrets in 4 namespaces; the real kbundle-installer applies it (null services). Checks: every
# Secret PUT exactly once, unchanged, with the bootstrap identity, across 3 list pages; an injected
# 409 re-read and put again; a 500 retried; the same bundle again sends nothing; the API down ->
# exit 8, nothing rolled back, status recorded, the next apply finishes; a hostile request refused
# before any write (exit 3).
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/installer_lib.bash"
need openssl python3 curl
REBUNDLE=$KB_BUILD_DIR/tests/kb_e2e_rebundle
[ -x "$REBUNDLE" ] || fail "kb_e2e_rebundle not built at $REBUNDLE"
STANDIN=$KB_SOURCE_DIR/tests/standins/kube-api-standin.py
T0=$(date +%s.%N)
S=$WORK/state
run_gen() { "$KBUNDLE" gen --no-binaries --topology "$EXAMPLE" --state "$S" --out "$1" >"$WORK/gen.log" 2>&1 || { cat "$WORK/gen.log" >&2; fail "gen $1"; }; }
rot() { "$KBUNDLE" rotate encryption-key "$@" --topology "$EXAMPLE" --state "$S" >/dev/null || fail "rotate $*"; }
run_gen "$WORK/o0"
rot
run_gen "$WORK/o1"
rot --advance
run_gen "$WORK/o2"
rot --advance
run_gen "$WORK/o3"
PUB=$WORK/o3/bundle-signing.pub

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
DOWN_PORT=$(free_port)
API=https://127.0.0.1:$PORT
CA=$S/ca/kubernetes-ca.crt
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=kube-apiserver" \
  -keyout "$WORK/server.key" -out "$WORK/server.csr" 2>/dev/null || fail "openssl req"
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$WORK/server.ext"
openssl x509 -req -in "$WORK/server.csr" -CA "$CA" -CAkey "$S/ca/kubernetes-ca.key" -CAcreateserial -days 2 -sha256 \
  -extfile "$WORK/server.ext" -out "$WORK/server.crt" 2>/dev/null || fail "openssl x509"

# 230 Secrets in 4 namespaces: three pages of 100.
python3 - >"$WORK/secrets.json" <<'EOF'
import base64, json
print(json.dumps([{"namespace": ["default", "kube-system", "app-a", "app-b"][i % 4], "name": "s-%03d" % i,
                   "data": {"v": base64.b64encode(b"value %d" % i).decode()}} for i in range(230)]))
EOF
RECORD=$WORK/requests.jsonl
FAULTS=$WORK/faults.json
echo '{"rules": []}' >"$FAULTS"
KB_STANDIN_RECORD=$RECORD KB_STANDIN_FAULTS=$FAULTS KB_STANDIN_SECRETS=$WORK/secrets.json python3 "$STANDIN" \
  --secure-port="$PORT" --bind-address=127.0.0.1 --tls-cert-file="$WORK/server.crt" \
  --tls-private-key-file="$WORK/server.key" --client-ca-file="$CA" >"$WORK/standin.log" 2>&1 &
STANDIN_PID=$!
cleanup "kill $STANDIN_PID"
for _ in $(seq 100); do curl -sf --cacert "$CA" "$API/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf --cacert "$CA" "$API/livez" >/dev/null || { cat "$WORK/standin.log" >&2; fail "the stand-in does not answer"; }

# The generated request, pointed at the stand-in (objects.json too: the bootstrap objects go first).
R3=/var/lib/kubernetes/reencrypt-secrets.json
OBJ=/var/lib/kubernetes/bootstrap/objects.json
extract() { # BUNDLE NODEPATH OUT: one file's bytes, through the installer's own verify/extract of a dir root
  local root; root=$(mktemp -d "$WORK/ex.XXXX"); new_root "$root"
  inst --root "$root" --node control-0 --trust-key "$PUB" apply "$1" >/dev/null 2>&1 || fail "extract: apply $1"
  cp "$root$2" "$3"
}
extract "$WORK/o3/control-0.kbundle" "$R3" "$WORK/request.json"
extract "$WORK/o3/control-0.kbundle" "$OBJ" "$WORK/objects.json"
grep -q '"write_key": "aescbc:key2"' "$WORK/request.json" || fail "the generated request does not name aescbc:key2"
make_bundle() { # OUT PORT [REQUEST_FILE]
  sed "s|127.0.0.1:6443|127.0.0.1:$2|" "${3:-$WORK/request.json}" >"$WORK/req-$2.json"
  sed "s|127.0.0.1:6443|127.0.0.1:$PORT|" "$WORK/objects.json" >"$WORK/obj-$2.json"  # the bootstrap objects succeed
  "$REBUNDLE" --in "$WORK/o3/control-0.kbundle" --pub "$PUB" --key "$S/keys/bundle-signing.key" --out "$1" --serial +1 \
    --health-only "kube-apiserver=$API/livez" --add "$R3=$WORK/req-$2.json:0600" --add "$OBJ=$WORK/obj-$2.json:0600" >/dev/null ||
    fail "rebundle $1"
}
make_bundle "$WORK/good.kbundle" "$PORT"
make_bundle "$WORK/down.kbundle" "$DOWN_PORT"
node() { local root=$1; shift; KB_TEST_NULL_SERVICES=1 "$INSTALLER" --root "$root" --node control-0 "$@"; }
fresh() { rm -rf "$WORK/$1"; new_root "$WORK/$1"; echo "$WORK/$1"; }
puts() { python3 -c 'import json,sys; print(sum(1 for r in map(json.loads, open(sys.argv[1])) if r["method"] == "PUT"))' "$RECORD"; }
faults() { printf '%s\n' "$1" >"$FAULTS"; }

# 1. A 409 on one Secret and a 500 on another: every Secret PUT once (the 409 one twice, re-read between).
faults '{"rules": [{"path_regex": "namespaces/app-a/secrets/s-002$", "answers": [409]},
                   {"path_regex": "namespaces/kube-system/secrets/s-101$", "answers": [500]}]}'
: >"$RECORD"
R=$(fresh r1)
t=$(date +%s.%N)
node "$R" --trust-key "$PUB" apply "$WORK/good.kbundle" >"$WORK/apply1.log" 2>&1 || { cat "$WORK/apply1.log" >&2; fail "apply 1"; }
APPLY_S=$(echo "$(date +%s.%N) - $t" | bc)
grep -q "re-encrypt: rewrote 230 Secrets with aescbc:key2 (0 deleted meanwhile, 1 conflicts retried)" "$WORK/apply1.log" ||
  { cat "$WORK/apply1.log" >&2; fail "apply 1 did not rewrite 230 Secrets"; }
python3 - "$RECORD" "$WORK/secrets.json" <<'EOF' || fail "the recorded requests"
import collections, json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
want = {"/api/v1/namespaces/%s/secrets/%s" % (s["namespace"], s["name"]): s["data"] for s in map(dict, json.load(open(sys.argv[2])))}
lists = [r for r in recs if r["method"] == "GET" and r["path"] == "/api/v1/secrets"]
assert len(lists) == 3, len(lists)
puts = [r for r in recs if r["method"] == "PUT"]
ok = collections.Counter(r["path"] for r in puts if r["status"] == 200)
assert set(ok) == set(want) and set(ok.values()) == {1}, "not every Secret written once: %s" % [p for p in want if ok[p] != 1][:5]
tries = collections.Counter(r["path"] for r in puts)
assert tries["/api/v1/namespaces/app-a/secrets/s-002"] == 2 and tries["/api/v1/namespaces/kube-system/secrets/s-101"] == 2, tries
gets = [r["path"] for r in recs if r["method"] == "GET" and r["path"] == "/api/v1/namespaces/app-a/secrets/s-002"]
assert len(gets) == 1, "the conflicting Secret was not read again"
for r in puts:
    if r["status"] != 200:
        continue  # an injected fault: answered before the body was read
    assert r["client_cn"] == "kbundle:bootstrap" and r["client_o"] == ["system:masters"], r
    assert r["content_type"] == "application/json", r
    assert r["body"]["data"] == want[r["path"]], "a Secret was not written back unchanged: " + r["path"]
EOF
[ "$(stat -c %a "$R/var/lib/kbundle/reencrypt.json")" = 600 ] || fail "reencrypt.json is not 0600"
grep -q '"status": "done"' "$R/var/lib/kbundle/reencrypt.json" || fail "the record does not say done"
keyline=$(sed -n 2p "$R/var/lib/kubernetes/bootstrap/kbundle-bootstrap.key")
! grep -rqF -- "$keyline" "$WORK/apply1.log" "$R/var/lib/kbundle/reencrypt.json" "$RECORD" || fail "the key's content leaked"

# 2. The same bundle again: nothing sent.
n=$(puts)
expect 0 "already rewritten" node "$R" apply "$WORK/good.kbundle"
[ "$(puts)" = "$n" ] || fail "a second apply rewrote Secrets again"

# 3. The API down: exit 8, nothing rolled back; the node's record says failed; applying the good bundle finishes.
faults '{"rules": []}'
R=$(fresh r3)
t=$(date +%s.%N)
expect 8 "the Secrets were not all rewritten" node "$R" --trust-key "$PUB" --bootstrap-deadline 2 apply "$WORK/down.kbundle"
DOWN_S=$(echo "$(date +%s.%N) - $t" | bc)
grep -q "last: connection refused" "$WORK/out.log" && grep -q "nothing was rolled back" "$WORK/out.log" || fail "down: the warning"
[ -f "$R/var/lib/kbundle/current/manifest.json" ] && [ ! -f "$R/var/lib/kbundle/journal.json" ] || fail "down: not committed"
grep -q '"status": "failed"' "$R/var/lib/kbundle/reencrypt.json" || fail "down: the record does not say failed"
node "$R" status | grep -q "re-encrypt of every Secret (encryption-key rotation): failed.*connection refused" ||
  fail "down: status does not say the re-encrypt failed"
# The API failing (503) for the whole deadline, then well: the same bundle again finishes it.
R=$(fresh r3b)
faults '{"rules": [{"path_regex": "^/api/v1/secrets$", "answers": [503, 503, 503, 503, 503, 503, 503, 503]}]}'
expect 8 "HTTP 503" node "$R" --trust-key "$PUB" --bootstrap-deadline 2 apply "$WORK/good.kbundle"
faults '{"rules": []}'
: >"$RECORD"
expect 0 "re-encrypt: rewrote 230 Secrets" node "$R" apply "$WORK/good.kbundle"
[ "$(puts)" = 230 ] || fail "the retry after the API came back sent $(puts) PUTs"

# 4. A hostile request (another host): refused before any write, nothing sent.
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); j["api_server"]="https://10.0.0.9:6443"; print(json.dumps(j))' \
  "$WORK/request.json" >"$WORK/hostile.json"
make_bundle "$WORK/hostile.kbundle" 6443 "$WORK/hostile.json"
R=$(fresh rh)
snap "$R" >"$WORK/before"
: >"$RECORD"
expect 3 "reencrypt-secrets.json: api_server: .* is not this node" node "$R" --trust-key "$PUB" apply "$WORK/hostile.kbundle"
snap "$R" | diff "$WORK/before" - >/dev/null || fail "hostile: the root changed"
[ "$(puts)" = 0 ] || fail "hostile: requests were sent"

TOTAL_S=$(echo "$(date +%s.%N) - $T0" | bc)
pass "$(printf 'apply re-encrypting 230 Secrets (1 conflict, 1 error 500) in %.2f s; API down, 2 s deadline: exit 8 in %.2f s; whole test %.1f s' \
  "$APPLY_S" "$DOWN_S" "$TOTAL_S")"
