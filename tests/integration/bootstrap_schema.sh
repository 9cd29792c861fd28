#!/usr/bin/env bash
# The bootstrap objects (docs/bootstrap.md) of the example cluster:
# - every object is valid against the Kubernetes OpenAPI schema, checked by a real validator from
#   npm: kubernetes-models 5.1.0 (its validators are generated from the OpenAPI definitions),
#   pinned with its dependencies by bootstrap_schema/package-lock.json, installed once per build
#   dir with `npm ci` and its cache kept there; offline it is SKIPPED with the reason;
# - the validator rejects deliberately broken objects (unknown field, wrong type, missing required
#   field, wrong enum value, unknown kind), so a pass means something;
# - the kubelet-API binding names the subject openssl reads from the apiserver's kubelet client cert;
#   the bootstrap identity is kbundle:bootstrap in system:masters, signed by kubernetes-ca, 0600;
# - only control-0 (the first control-plane node) carries them, `kbundle inspect` lists them, and
#   a second gen with the same state writes the same bytes.
source "$(dirname "$0")/lib.bash"
need node npm openssl python3
readonly KUBERNETES_MODELS=5.1.0  # also in bootstrap_schema/package.json and package-lock.json
# The lock file is lockfileVersion 3 (npm 7 or later). kubernetes-models declares node >= 22, but
# its validators are plain ES2022 modules and run on node 18 and later (checked here on node 20).
[ "$(npm --version | cut -d. -f1)" -ge 7 ] || skip "npm $(npm --version) cannot install from a lockfileVersion 3 lock file (npm 7 or later)"
[ "$(node -p 'process.versions.node.split(".")[0]')" -ge 18 ] || skip "node $(node --version) is older than 18"
HERE=$KB_SOURCE_DIR/tests/integration/bootstrap_schema
NPM_DIR=$KB_BUILD_DIR/npm-bootstrap-schema

# npm ci once per build dir (and again when the lock file changes).
stamp="$NPM_DIR/node_modules/.kb-lock-$(sha256sum "$HERE/package-lock.json" | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  rm -rf "$NPM_DIR/node_modules"
  mkdir -p "$NPM_DIR"
  cp "$HERE/package.json" "$HERE/package-lock.json" "$NPM_DIR/"
  if ! (cd "$NPM_DIR" && timeout 300 npm ci --prefer-offline --cache "$NPM_DIR/.npm-cache" --no-audit --no-fund --ignore-scripts \
          --fetch-retries 1 --loglevel error) >"$WORK/npm.log" 2>&1; then
    if grep -Eq 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network|offline' "$WORK/npm.log"; then
      skip "the npm registry is unreachable and kubernetes-models $KUBERNETES_MODELS is not cached in $NPM_DIR: $(grep -m1 -E 'npm (ERR|error)' "$WORK/npm.log" || tail -1 "$WORK/npm.log")"
    fi
    cat "$WORK/npm.log" >&2
    fail "npm ci of kubernetes-models $KUBERNETES_MODELS failed"
  fi
  touch "$stamp"
fi
got=$(node -p "require('$NPM_DIR/node_modules/kubernetes-models/package.json').version")
[ "$got" = "$KUBERNETES_MODELS" ] || fail "kubernetes-models $got installed, want $KUBERNETES_MODELS"
cp "$HERE/validate.mjs" "$NPM_DIR/validate.mjs"  # beside node_modules, where its imports resolve
validate() { node "$NPM_DIR/validate.mjs" "$@"; }

# The objects as gen writes them, in both output formats, from one state.
gen() { "$KBUNDLE" gen --no-binaries --topology "$EXAMPLE" --state "$WORK/state" "$@" >>"$WORK/gen.log" 2>&1 ||
          { cat "$WORK/gen.log" >&2; fail "kbundle gen $* failed"; }; }
gen --out "$WORK/dir" --format dir
gen --out "$WORK/bundles"
OBJ=$WORK/dir/control-0/var/lib/kubernetes/bootstrap/objects.json
[ -f "$OBJ" ] || fail "control-0 has no objects.json"

validate "$OBJ" >"$WORK/validate.log" 2>&1 || { cat "$WORK/validate.log" >&2; fail "the bootstrap objects are not valid"; }
grep -q "^ok: 9 objects valid" "$WORK/validate.log" || { cat "$WORK/validate.log" >&2; fail "not 9 objects validated"; }

# Each broken copy must be refused, naming the object and the field.
broken() { # broken NAME PYTHON-EXPRESSION-ON-objs EXPECTED-OUTPUT
  python3 - "$OBJ" "$WORK/broken-$1.json" "$2" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
objs = {o["object"]["kind"] + "/" + o["object"]["metadata"]["name"]: o["object"] for o in doc["objects"]}
exec(sys.argv[3])
json.dump(doc, open(sys.argv[2], "w"))
EOF
  expect 1 "$3" validate "$WORK/broken-$1.json"
}
broken unknown-field 'objs["Deployment/coredns"]["spec"]["template"]["spec"]["containers"][0]["imagePullPolicey"] = "Always"' \
  'objects\[7\] Deployment/coredns: /spec/template/spec/containers/0/imagePullPolicey: unknown field'
broken unknown-top-field 'objs["Service/kube-dns"]["spec"]["clusterIp"] = "10.32.0.10"' \
  'Service/kube-dns: /spec/clusterIp: unknown field'
broken unknown-in-rbac-rule 'objs["ClusterRole/system:coredns"]["rules"][0]["verb"] = ["get"]' \
  'ClusterRole/system:coredns: /rules/0/verb: unknown field'
broken wrong-type 'objs["Deployment/coredns"]["spec"]["replicas"] = "2"' \
  'Deployment/coredns: /spec/replicas: .*"type":"integer"'
broken wrong-type-port 'objs["Service/kube-dns"]["spec"]["ports"][0]["port"] = "53"' \
  'Service/kube-dns: /spec/ports/0/port: .*"type":"integer"'
broken wrong-type-label 'objs["ConfigMap/coredns"]["metadata"]["labels"]["x"] = 1' \
  'ConfigMap/coredns: /metadata/labels/x: .*"type":"string"'
broken missing-required 'del objs["ClusterRoleBinding/system:coredns"]["roleRef"]' \
  'ClusterRoleBinding/system:coredns: /: .*"missingProperty":"roleRef"'
broken missing-required-container 'del objs["Deployment/coredns"]["spec"]["template"]["spec"]["containers"][0]["name"]' \
  'Deployment/coredns: /spec/template/spec/containers/0: .*"missingProperty":"name"'
broken missing-selector 'del objs["Deployment/coredns"]["spec"]["selector"]' \
  'Deployment/coredns: /spec: .*"missingProperty":"selector"'
broken wrong-enum 'objs["Service/kube-dns"]["spec"]["ports"][0]["protocol"] = "QUIC"' \
  'Service/kube-dns: /spec/ports/0/protocol: .*allowedValues'
broken wrong-kind 'objs["Service/kube-dns"]["kind"] = "Servise"' \
  'Servise/kube-dns: no OpenAPI schema for apiVersion v1 kind Servise'
broken wrong-api-path 'doc["objects"][2]["api_path"] = "/api/v1/namespaces/default/serviceaccounts/coredns"' \
  'objects\[2\] ServiceAccount/coredns: api_path /api/v1/namespaces/default/serviceaccounts/coredns, want /api/v1/namespaces/kube-system/'
broken no-label 'del objs["PodDisruptionBudget/coredns"]["metadata"]["labels"]["app.kubernetes.io/managed-by"]' \
  'PodDisruptionBudget/coredns: no app.kubernetes.io/managed-by: kbundle label'
broken header 'doc["field_manager"] = "kubectl"' 'field_manager is "kubectl", want "kbundle"'

# The binding's subject is the apiserver's kubelet client cert's, as openssl reads it.
K=$WORK/dir/control-0/var/lib/kubernetes
subject=$(openssl x509 -in "$K/apiserver-kubelet-client.crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
want=$(python3 - "$subject" <<'EOF'
import json, sys
rdns = [r.split("=", 1) for r in sys.argv[1].split(",")]
subjects = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": v} for k, v in rdns if k == "CN"]
subjects += [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": v} for k, v in rdns if k == "O"]
print(json.dumps(subjects, sort_keys=True))
EOF
)
have=$(python3 -c '
import json, sys
for o in json.load(open(sys.argv[1]))["objects"]:
    if o["object"]["kind"] == "ClusterRoleBinding" and o["object"]["roleRef"]["name"] == "system:kube-apiserver-to-kubelet":
        print(json.dumps(o["object"]["subjects"], sort_keys=True))' "$OBJ")
[ -n "$have" ] && [ "$have" = "$want" ] || fail "binding subjects $have, but the kubelet client cert ($subject) wants $want"

# The bootstrap identity.
B=$K/bootstrap
bsubject=$(openssl x509 -in "$B/kbundle-bootstrap.crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
[ "$bsubject" = "CN=kbundle:bootstrap,O=system:masters" ] || fail "bootstrap cert subject is $bsubject"
openssl verify -CAfile "$WORK/state/ca/kubernetes-ca.crt" -purpose sslclient "$B/kbundle-bootstrap.crt" >/dev/null ||
  fail "the bootstrap cert does not verify as a client cert of kubernetes-ca"
[ "$(openssl x509 -in "$B/kbundle-bootstrap.crt" -noout -pubkey)" = "$(openssl pkey -in "$B/kbundle-bootstrap.key" -pubout)" ] ||
  fail "the bootstrap key does not match its cert"
for f in objects.json kbundle-bootstrap.crt kbundle-bootstrap.key; do
  [ "$(stat -c %a "$B/$f")" = 600 ] || fail "$f is mode $(stat -c %a "$B/$f"), want 600"
done
[ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cert_file"])' "$OBJ")" = /var/lib/kubernetes/bootstrap/kbundle-bootstrap.crt ] ||
  fail "objects.json names another cert file"

# Only control-0, in both formats; inspect lists the three files.
for n in control-1 control-2 worker-0 worker-1 worker-2; do
  [ ! -e "$WORK/dir/$n/var/lib/kubernetes/bootstrap" ] || fail "$n got the bootstrap directory"
  "$KBUNDLE" inspect "$WORK/bundles/$n.kbundle" >"$WORK/inspect-$n.log" 2>&1 || fail "inspect $n failed"
  ! grep -q /var/lib/kubernetes/bootstrap "$WORK/inspect-$n.log" || fail "$n's bundle lists a bootstrap file"
done
"$KBUNDLE" inspect "$WORK/bundles/control-0.kbundle" >"$WORK/inspect.log" 2>&1 || { cat "$WORK/inspect.log" >&2; fail "inspect control-0 failed"; }
for f in objects.json kbundle-bootstrap.crt kbundle-bootstrap.key; do
  grep -q "/var/lib/kubernetes/bootstrap/$f" "$WORK/inspect.log" || { cat "$WORK/inspect.log" >&2; fail "inspect does not list $f"; }
done

# Same state, same bytes: objects.json, the cert, and the whole signed bundle.
cp "$WORK/bundles/control-0.kbundle" "$WORK/control-0.before"
cp "$OBJ" "$WORK/objects.before"
gen --out "$WORK/dir" --format dir
gen --out "$WORK/bundles"
cmp -s "$OBJ" "$WORK/objects.before" || fail "objects.json changed on a second gen with the same state"
cmp -s "$WORK/bundles/control-0.kbundle" "$WORK/control-0.before" || fail "control-0.kbundle changed on a second gen with the same state"
pass "9 objects valid against the OpenAPI schema (kubernetes-models $KUBERNETES_MODELS), 14 broken copies refused, subjects match openssl, only control-0"
