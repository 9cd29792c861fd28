# The bootstrap objects with the real parts (docs/bootstrap.md, G29): the real
# kbundle-installer applies a control-plane bundle that carries objects.json and the
# kbundle:bootstrap identity (issued with openssl by the cluster's kubernetes-ca) to the python
# kube-apiserver stand-in (tests/standins/kube-api-standin.py) on loopback, through the apply's own
# health gate (KB_TEST_NULL_SERVICES=1: no systemd here; the one health check left points at the
# stand-in). Checks the recorded requests (PATCH, path, content type, field manager, client CN and
# O), apply-once, retries (409, 500, a timeout), a permanent 403 (exit 6, no rollback, status,
# then `bootstrap`), the API down for the whole deadline, a kill between two objects, and hostile
# objects.json files refused before any write with nothing sent.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/installer_lib.bash"
need openssl python3 curl
REBUNDLE=$KB_BUILD_DIR/tests/kb_e2e_rebundle
[ -x "$REBUNDLE" ] || fail "kb_e2e_rebundle not built at $REBUNDLE"
STANDIN=$KB_SOURCE_DIR/tests/standins/kube-api-standin.py
T0=$(date +%s.%N)

"$KBUNDLE" gen --no-binaries --topology "$EXAMPLE" --state "$WORK/state" --out "$WORK/o1" >"$WORK/gen.log" 2>&1 ||
  { cat "$WORK/gen.log" >&2; fail "gen"; }
PUB=$WORK/o1/bundle-signing.pub
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
DOWN_PORT=$(free_port)

# ---- PKI: the stand-in's serving cert and the bootstrap client identity, from kubernetes-ca ----
CA=$WORK/state/ca/kubernetes-ca.crt
CAKEY=$WORK/state/ca/kubernetes-ca.key
issue() { # NAME SUBJECT EXTENSIONS
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$2" \
    -keyout "$WORK/$1.key" -out "$WORK/$1.csr" 2>/dev/null || fail "openssl req $1"
  printf '%b' "$3" >"$WORK/$1.ext"
  openssl x509 -req -in "$WORK/$1.csr" -CA "$CA" -CAkey "$CAKEY" -CAcreateserial -days 2 -sha256 \
    -extfile "$WORK/$1.ext" -out "$WORK/$1.crt" 2>/dev/null || fail "openssl x509 $1"
  chmod 600 "$WORK/$1.key"
}
issue server "/CN=kube-apiserver" 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'
issue client "/O=system:masters/CN=kbundle:bootstrap" 'extendedKeyUsage=clientAuth\n'
# A client certificate from another CA: the stand-in must not accept it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=rogue" \
  -keyout "$WORK/rogue.key" -out "$WORK/rogue.crt" 2>/dev/null

# ---- the stand-in ----
RECORD=$WORK/requests.jsonl
FAULTS=$WORK/faults.json
echo '{"rules": []}' >"$FAULTS"
# Started as the e2e nodes start it: tests/e2e/kube-standin under the name kube-apiserver, which
# checks the unit's flags and authentication config, then execs the python stand-in (here from the
# source tree instead of /usr/local/lib/kbundle-standin/).
mkdir -p "$WORK/bin"
sed "s|^standin_py=.*|standin_py=$STANDIN|" "$KB_SOURCE_DIR/tests/e2e/kube-standin" >"$WORK/bin/kube-apiserver"
chmod +x "$WORK/bin/kube-apiserver"
grep -q "^standin_py=$STANDIN\$" "$WORK/bin/kube-apiserver" || fail "tests/e2e/kube-standin has no standin_py= line"
printf '%s\n' 'apiVersion: apiserver.config.k8s.io/v1beta1' 'kind: AuthenticationConfiguration' 'anonymous:' \
  '  enabled: true' '  conditions:' '    - path: /livez' '    - path: /readyz' '    - path: /healthz' >"$WORK/authn.yaml"
KB_STANDIN_RECORD=$RECORD KB_STANDIN_FAULTS=$FAULTS "$WORK/bin/kube-apiserver" --advertise-address=10.0.1.10 \
  --secure-port="$PORT" --bind-address=127.0.0.1 --tls-cert-file="$WORK/server.crt" \
  --tls-private-key-file="$WORK/server.key" --client-ca-file="$CA" --authorization-mode=Node,RBAC \
  --authentication-config="$WORK/authn.yaml" >"$WORK/standin.log" 2>&1 &
STANDIN_PID=$!
cleanup "kill $STANDIN_PID"
API=https://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf --cacert "$CA" "$API/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
[ "$(curl -sf --cacert "$CA" "$API/livez")" = ok ] || { cat "$WORK/standin.log" >&2; fail "the stand-in does not serve /livez"; }
grep -q "kube-api-standin: serving https://127.0.0.1:$PORT" "$WORK/standin.log" || fail "kube-standin did not exec the python stand-in"

# The stand-in answers like the API: 401 without a client certificate (or with one of another CA),
# 415 for another content type, 400 without fieldManager, 201 then 200 with uid and managedFields.
CR=/apis/rbac.authorization.k8s.io/v1/clusterroles/probe
body='{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"probe"}}'
code() { curl -s -o "$WORK/answer.json" -w '%{http_code}' --cacert "$CA" -X PATCH --data-binary "$body" "$@"; }
[ "$(code -H 'Content-Type: application/apply-patch+yaml' "$API$CR?fieldManager=t")" = 401 ] || fail "no client cert: not 401"
rc=$(code --cert "$WORK/rogue.crt" --key "$WORK/rogue.key" -H 'Content-Type: application/apply-patch+yaml' "$API$CR?fieldManager=t" || true)
[ "$rc" != 201 ] && [ "$rc" != 200 ] || fail "a client cert of another CA was accepted"
C=(--cert "$WORK/client.crt" --key "$WORK/client.key")
[ "$(code "${C[@]}" -H 'Content-Type: application/merge-patch+json' "$API$CR?fieldManager=t")" = 415 ] || fail "wrong content type: not 415"
grep -q '"kind": "Status"' "$WORK/answer.json" && grep -q '"reason": "UnsupportedMediaType"' "$WORK/answer.json" || fail "415 is not a Status"
[ "$(code "${C[@]}" -H 'Content-Type: application/apply-patch+yaml' "$API$CR")" = 400 ] || fail "no fieldManager: not 400"
[ "$(code "${C[@]}" -H 'Content-Type: application/apply-patch+yaml' "$API$CR?fieldManager=t")" = 201 ] || fail "first apply: not 201"
[ "$(code "${C[@]}" -H 'Content-Type: application/apply-patch+yaml' "$API$CR?fieldManager=t")" = 200 ] || fail "second apply: not 200"
python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["metadata"]; assert m["uid"] and m["resourceVersion"] and m["managedFields"][0]["manager"]=="t"' \
  "$WORK/answer.json" || fail "the applied object lacks uid, resourceVersion or managedFields"
: >"$RECORD"

# ---- bundles: control-0 with objects.json, the identity, and one health check (the stand-in's /livez) ----
objects_json() { # API_SERVER -> three objects in apply order
  cat <<EOF
{"version": 1, "api_server": "$1", "ca_file": "/var/lib/kubernetes/ca.crt",
 "cert_file": "/var/lib/kubernetes/bootstrap/kbundle-bootstrap.crt",
 "key_file": "/var/lib/kubernetes/bootstrap/kbundle-bootstrap.key", "field_manager": "kbundle",
 "objects": [
  {"api_path": "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:kube-apiserver-to-kubelet",
   "object": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
              "metadata": {"name": "system:kube-apiserver-to-kubelet", "labels": {"app.kubernetes.io/managed-by": "kbundle"}},
              "rules": [{"apiGroups": [""], "resources": ["nodes/proxy", "nodes/stats", "nodes/log", "nodes/spec", "nodes/metrics"], "verbs": ["*"]}]}},
  {"api_path": "/api/v1/namespaces/kube-system/serviceaccounts/coredns",
   "object": {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coredns", "namespace": "kube-system"}}},
  {"api_path": "/apis/apps/v1/namespaces/kube-system/deployments/coredns",
   "object": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "coredns", "namespace": "kube-system"},
              "spec": {"replicas": 2}}}]}
EOF
}
make_bundle() { # OUT OBJECTS_FILE [KEY_MODE]
  "$REBUNDLE" --in "$WORK/o1/control-0.kbundle" --pub "$PUB" --key "$WORK/state/keys/bundle-signing.key" \
    --out "$1" --serial 2 --health-only "kube-apiserver=$API/livez" \
    --add "/var/lib/kubernetes/bootstrap/objects.json=$2:0600" \
    --add "/var/lib/kubernetes/bootstrap/kbundle-bootstrap.crt=$WORK/client.crt:0644" \
    --add "/var/lib/kubernetes/bootstrap/kbundle-bootstrap.key=$WORK/client.key:${3:-0600}" >/dev/null ||
    fail "rebundle $1"
}
objects_json "$API" >"$WORK/objects.json"
make_bundle "$WORK/good.kbundle" "$WORK/objects.json"
objects_json "https://127.0.0.1:$DOWN_PORT" >"$WORK/objects-down.json"
make_bundle "$WORK/down.kbundle" "$WORK/objects-down.json"

# node ROOT ARGS...: the installer on a fresh root, systemd replaced by the null manager, health checks run.
node() { local root=$1; shift; KB_TEST_NULL_SERVICES=1 "$INSTALLER" --root "$root" --node control-0 "$@"; }
fresh() { rm -rf "$WORK/$1"; new_root "$WORK/$1"; echo "$WORK/$1"; }
lines() { grep -c '"method": "PATCH"' "$RECORD" || true; }  # the health gate's GETs are not counted
faults() { printf '%s\n' "$1" >"$FAULTS"; }
status_of() { node "$1" status --json 2>/dev/null | python3 -c 'import json,sys; b=json.load(sys.stdin)["bootstrap"]; print(b["status"]); print(b.get("error") or "")'; }
state_of() { status_of "$1" | sed -n 1p; }
CRPATH=/apis/rbac.authorization.k8s.io/v1/clusterroles/system:kube-apiserver-to-kubelet
SAPATH=/api/v1/namespaces/kube-system/serviceaccounts/coredns

# 1. A healthy apply sends each object once, as server-side apply, with the bootstrap identity.
R=$(fresh r1)
t=$(date +%s.%N)
node "$R" --trust-key "$PUB" apply "$WORK/good.kbundle" >"$WORK/apply1.log" 2>&1 || { cat "$WORK/apply1.log" >&2; fail "apply 1"; }
APPLY_S=$(echo "$(date +%s.%N) - $t" | bc)
grep -q "health kube-apiserver: ok" "$WORK/apply1.log" || fail "the health gate did not run against the stand-in"
grep -q "bootstrap: applied 3 objects" "$WORK/apply1.log" || { cat "$WORK/apply1.log" >&2; fail "apply 1 did not apply the objects"; }
python3 - "$RECORD" <<'EOF' || fail "the recorded requests are not server-side applies by kbundle:bootstrap"
import json, sys
recs = [r for r in map(json.loads, open(sys.argv[1])) if r["method"] != "GET"]  # GETs: the health gate
assert [r["path"] for r in recs] == [
    "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:kube-apiserver-to-kubelet",
    "/api/v1/namespaces/kube-system/serviceaccounts/coredns",
    "/apis/apps/v1/namespaces/kube-system/deployments/coredns"], recs
for r in recs:
    assert r["method"] == "PATCH", r
    assert r["query"] == "fieldManager=kbundle&force=true", r
    assert r["content_type"] == "application/apply-patch+yaml", r
    assert r["field_manager"] == "kbundle" and r["force"] == "true", r
    assert r["client_cn"] == "kbundle:bootstrap" and r["client_o"] == ["system:masters"], r
    assert r["status"] == 201, r
    assert r["body"]["metadata"]["name"] in r["path"], r
EOF
[ "$(stat -c %a "$R/var/lib/kbundle/bootstrap.json")" = 600 ] || fail "bootstrap.json is not 0600"
[ "$(state_of "$R")" = applied ] || fail "status does not say applied"
node "$R" status | grep -q "bootstrap objects (sha256 [0-9a-f]*): applied at" || fail "status line"
# The key is read, never printed or recorded.
keyline=$(sed -n 2p "$WORK/client.key")
! grep -rqF -- "$keyline" "$WORK/apply1.log" "$R/var/lib/kbundle" "$RECORD" "$WORK/standin.log" || fail "the key's content leaked"

# 2. The same bundle again, and `bootstrap`: nothing sent.
n=$(lines)
expect 0 "bootstrap objects already applied" node "$R" apply "$WORK/good.kbundle"
expect 0 "nothing sent" node "$R" bootstrap
[ "$(lines)" = "$n" ] || fail "a second apply of the same bundle sent requests"

# 3. 409 -> 500 -> timeout -> a closed connection -> success: retried within a short deadline
# (each step then waits 4 s: a quarter of the deadline).
R=$(fresh r3)
faults "{\"rules\": [{\"path_regex\": \"clusterroles/system:kube-apiserver-to-kubelet\$\", \"answers\": [409, 500, \"timeout\", \"close\"]}]}"
: >"$RECORD"
t=$(date +%s.%N)
node "$R" --trust-key "$PUB" --bootstrap-deadline 16 apply "$WORK/good.kbundle" >"$WORK/apply3.log" 2>&1 || { cat "$WORK/apply3.log" >&2; fail "apply 3"; }
RETRY_S=$(echo "$(date +%s.%N) - $t" | bc)
got=$(python3 -c 'import json,sys; print(" ".join(str(r["status"]) for r in map(json.loads, open(sys.argv[1])) if r["method"] == "PATCH"))' "$RECORD")
[ "$got" = "409 500 timeout close 200 200 200" ] || { cat "$WORK/apply3.log" >&2; fail "retries: answers were '$got'"; }
grep -q "HTTP 409.*retrying in" "$WORK/apply3.log" && grep -q "no response (timed out); retrying" "$WORK/apply3.log" || fail "retries not said"
[ "$(state_of "$R")" = applied ] || fail "after retries: not applied"

# 4. A permanent 403: exit 6, the control plane stays (no rollback), status says why; `bootstrap` later succeeds.
R=$(fresh r4)
faults "{\"rules\": [{\"path_regex\": \"serviceaccounts/coredns\$\", \"answers\": [403]}]}"
expect 6 "the bootstrap objects were not applied: ServiceAccount coredns" node "$R" --trust-key "$PUB" apply "$WORK/good.kbundle"
grep -q "injected fault 403" "$WORK/out.log" && grep -q "nothing was rolled back" "$WORK/out.log" || fail "403: the warning lacks the API's message"
! grep -q "error:" "$WORK/out.log" || fail "403: reported as an error of the apply"
[ -f "$R/var/lib/kbundle/current/manifest.json" ] && [ ! -f "$R/var/lib/kbundle/journal.json" ] || fail "403: the apply was not committed"
[ -f "$R/etc/systemd/system/kube-apiserver.service" ] || fail "403: the control plane was removed"
{ read -r st; read -r why; } < <(status_of "$R")
[ "$st" = failed ] && [[ "$why" == *"injected fault 403"* ]] || fail "403: status says '$st: $why'"
node "$R" status | grep -q ": failed at .*run \`kbundle-installer bootstrap\`" || fail "403: the status line does not say what to run"
faults '{"rules": []}'
expect 0 "bootstrap: applied 3 objects" node "$R" bootstrap
[ "$(state_of "$R")" = applied ] || fail "403 then bootstrap: not applied"

# 5. The API down for the whole deadline: failed, after the deadline and not much more.
R=$(fresh r5)
t=$(date +%s.%N)
expect 6 "did not accept it within 2 s" node "$R" --trust-key "$PUB" --bootstrap-deadline 2 apply "$WORK/down.kbundle"
DOWN_S=$(echo "$(date +%s.%N) - $t" | bc)
grep -q "last: connection refused" "$WORK/out.log" || fail "down: the last error is not said"
[ "$(state_of "$R")" = failed ] || fail "down: status is not failed"
(($(echo "$DOWN_S < 6" | bc))) || fail "down: took $DOWN_S s with a 2 s deadline"

# 5b. A server the CA does not vouch for (ca_file names the etcd CA): final at once, not retried.
sed 's|"/var/lib/kubernetes/ca.crt"|"/etc/etcd/ca.crt"|' "$WORK/objects.json" >"$WORK/objects-ca.json"
make_bundle "$WORK/ca.kbundle" "$WORK/objects-ca.json"
R=$(fresh r5b)
n=$(lines)
expect 6 "certificate does not verify against ca_file" node "$R" --trust-key "$PUB" apply "$WORK/ca.kbundle"
! grep -q "retrying" "$WORK/out.log" || fail "a server that does not verify was retried"
[ "$(lines)" = "$n" ] || fail "a request reached a server that does not verify"

# 6. Killed between two objects: pending; the same apply again finishes it.
R=$(fresh r6)
: >"$RECORD"
rc=0
KB_FAULT_POINT=bootstrap-after-object-0 node "$R" --trust-key "$PUB" apply "$WORK/good.kbundle" >"$WORK/apply6.log" 2>&1 || rc=$?
[ "$rc" = 137 ] || { cat "$WORK/apply6.log" >&2; fail "the fault point did not kill the installer (exit $rc)"; }
[ "$(lines)" = 1 ] || fail "killed after object 0, but $(lines) requests were sent"
[ "$(state_of "$R")" = pending ] || fail "after the kill: not pending"
expect 0 "bootstrap: applied 3 objects" node "$R" apply "$WORK/good.kbundle"
[ "$(lines)" = 4 ] || fail "the next run sent $(lines) requests in all, want 1 + 3"

# 7. Hostile objects.json: refused before any write (exit 3), nothing sent, the root unchanged.
: >"$RECORD"
hostile=(
  'not JSON|{"version": 1,|not valid JSON'
  'api_path outside the API|{"api_path": "/healthz"}|does not start with /api/ or /apis/'
  'path traversal|{"api_path": "/apis/../../../etc/passwd"}|non-name segment'
  'query injection|{"api_path": "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:kube-apiserver-to-kubelet?dryRun=All"}|non-name segment'
  'percent-encoding|{"api_path": "/apis/rbac.authorization.k8s.io/v1/clusterroles/%2e%2e"}|non-name segment'
  'header injection|{"api_path": "/apis/rbac.authorization.k8s.io/v1/clusterroles/a\r\nX-Evil: 1"}|non-name segment'
  'another object than the path|{"api_path": "/apis/rbac.authorization.k8s.io/v1/clusterroles/cluster-admin"}|metadata.name is'
  'another server|{"api_server": "https://10.0.0.5:6443"}|is not this node'
  'plain http|{"api_server": "http://127.0.0.1:6443"}|is not https://'
  'a key the bundle does not carry|{"key_file": "/etc/shadow"}|is not a file this bundle installs'
  'field manager injection|{"field_manager": "kbundle&dryRun=All"}|field_manager'
  'unknown field|{"proxy": "http://x"}|unknown field'
  'huge|HUGE|larger than'
)
for case in "${hostile[@]}"; do
  IFS='|' read -r name change want <<<"$case"
  if [ "$change" = '{"version": 1,' ]; then
    printf '%s' "$change" >"$WORK/h.json"
  elif [ "$change" = HUGE ]; then
    head -c $((4 * 1024 * 1024 + 10)) /dev/zero | tr '\0' ' ' >"$WORK/h.json"
  else
    python3 - "$WORK/objects.json" "$change" >"$WORK/h.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
for k, v in json.loads(sys.argv[2]).items():
    if k == "api_path":
        j["objects"][0]["api_path"] = v
    else:
        j[k] = v
print(json.dumps(j))
EOF
  fi
  make_bundle "$WORK/h.kbundle" "$WORK/h.json"
  R=$(fresh rh)
  snap "$R" >"$WORK/before"
  expect 3 "$want" node "$R" --trust-key "$PUB" apply "$WORK/h.kbundle"
  grep -q "objects.json: .*refused, nothing was changed" "$WORK/out.log" || { cat "$WORK/out.log" >&2; fail "$name: not refused by name"; }
  [ ! -e "$R/var/lib/kbundle" ] && [ ! -e "$R/etc/kbundle" ] || fail "$name: the installer wrote its state"
  snap "$R" | diff "$WORK/before" - >/dev/null || fail "$name: the root changed"
  expect 3 "$want" node "$R" --trust-key "$PUB" verify "$WORK/h.kbundle"
done
[ "$(lines)" = 0 ] || fail "a hostile objects.json sent $(lines) requests"
# A key installed world-readable is refused too.
make_bundle "$WORK/k.kbundle" "$WORK/objects.json" 0644
expect 3 "a private key must be 0600" node "$(fresh rk)" --trust-key "$PUB" apply "$WORK/k.kbundle"

TOTAL_S=$(echo "$(date +%s.%N) - $T0" | bc)
pass "$(printf 'apply with 3 objects %.2f s; 409/500/timeout/close retried in %.2f s; API down, 2 s deadline: failed in %.2f s; %d hostile files refused; whole test %.1f s' \
  "$APPLY_S" "$RETRY_S" "$DOWN_S" "${#hostile[@]}" "$TOTAL_S")"
