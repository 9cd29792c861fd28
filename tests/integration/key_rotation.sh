# Encryption-key and service-account-key rotation with the real CLI (docs/rotation.md, G38):
# `kbundle rotate encryption-key|service-account-key` through every phase with a real `kbundle gen`
# (dir format) after each, on the example cluster. Checks, per phase: the EncryptionConfiguration
# of every control-plane node (valid YAML, the documented shape, unique key names, 32-byte keys,
# the right key first), tokens signed and verified with openssl using the PEMs the bundles carry
# (an old-key token still verifies with the phase-2 key set; a new-key token with the phase-1
# set; the old one no longer in phase 3), the units unchanged (and `systemd-analyze verify` of a
# mid-rotation generation through units_verify.sh), the re-encrypt request on the designated node
# only in phase 3; the provider change without a rotation refused by gen and plan (exit 3, state
# and output unchanged) and warned by validate --state; every refusal of rotate (exit 3, nothing
# written): advance before gen, abort after phase 1, a second start, the SA wait (and --force).
source "$(dirname "$0")/lib.bash"
need openssl python3
python3 -c 'import yaml' 2>/dev/null || skip "python3 yaml module missing (PyYAML)"
T0=$(date +%s.%N)
S=$WORK/state
CP="control-0 control-1 control-2"
gen() { # OUT [TOPOLOGY]
  "$KBUNDLE" gen --no-binaries --format dir --topology "${2:-$TOPO}" --state "$S" --out "$1" >"$WORK/gen.log" 2>&1 ||
    { cat "$WORK/gen.log" >&2; fail "gen $1"; }
}
rot() { "$KBUNDLE" rotate "$@" --topology "$TOPO" --state "$S"; }
state_sum() { (cd "$S" && find . -type f ! -name '*.lock' ! -name lock -print0 | sort -z | xargs -0 sha256sum); }
TOPO=$EXAMPLE

# config OUT NODE -> "provider:name provider:name ..." in config order, after checking the shape.
config() {
  python3 - "$1/$2/var/lib/kubernetes/encryption-config.yaml" <<'EOF'
import base64, sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
assert c["apiVersion"] == "apiserver.config.k8s.io/v1" and c["kind"] == "EncryptionConfiguration", c
(r,) = c["resources"]
assert r["resources"] == ["secrets"], r
ps = r["providers"]
assert ps[-1] == {"identity": {}}, "identity must be last: " + str(ps[-1])
out, names = [], set()
for p in ps[:-1]:
    (kind, body), = p.items()
    assert kind in ("aescbc", "secretbox", "aesgcm"), kind
    assert body["keys"], p
    for k in body["keys"]:
        assert set(k) == {"name", "secret"}, k
        assert k["name"] not in names, "key name twice: " + k["name"]
        names.add(k["name"])
        assert len(base64.b64decode(k["secret"], validate=True)) == 32, k["name"]
        out.append(kind + ":" + k["name"])
print(" ".join(out))
EOF
}
same_config_everywhere() { # OUT WANT
  for n in $CP; do
    got=$(config "$1" "$n") || fail "$1/$n: not a valid EncryptionConfiguration"
    [ "$got" = "$2" ] || fail "$1/$n: keys '$got', want '$2'"
  done
}

# ---- phase 0 ----
gen "$WORK/p0"
BYTES0=$(sha256sum <"$WORK/p0/control-0/var/lib/kubernetes/encryption-config.yaml")
same_config_everywhere "$WORK/p0" "aescbc:key1"
grep -q '"name":"key1","provider":"aescbc"' "$S/rotation/encryption.json" || fail "the key in use is not recorded"
[ "$(stat -c %a "$S/rotation/encryption.json")" = 600 ] || fail "rotation/encryption.json is not 0600"

# ---- encryption-key: the refusals before and at the start ----
expect 3 "no encryption-key rotation in progress" rot encryption-key --advance
expect 3 "nothing to abort" rot encryption-key --abort
rc=0; rot encryption-key --advance --json >"$WORK/refused.json" 2>/dev/null || rc=$?
[ "$rc" = 3 ] && python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["action"]=="refused" and "no encryption-key rotation" in j["error"], j' \
  "$WORK/refused.json" || fail "--json refusal"
rot encryption-key --json >"$WORK/started.json" || fail "--json start"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["action"]=="started" and j["phase"]==1 and j["lastPhase"]==4 and j["next"], j' \
  "$WORK/started.json" || fail "--json start output"
expect 0 "aborted" rot encryption-key --abort
expect 0 "phase 1/4" rot encryption-key
expect 3 "already in progress" rot encryption-key
before=$(state_sum)
expect 3 "was not generated yet; run \`kbundle gen\`" rot encryption-key --advance
[ "$(state_sum)" = "$before" ] || fail "a refused advance changed the state"
# Abort in phase 1 drops it; start again.
expect 0 "aborted" rot encryption-key --abort
[ ! -e "$S/rotation/encryption-new.json" ] || fail "abort left the new key"
gen "$WORK/pa"
[ "$(sha256sum <"$WORK/pa/control-0/var/lib/kubernetes/encryption-config.yaml")" = "$BYTES0" ] || fail "after abort: the config changed"
expect 0 "phase 1/4" rot encryption-key
[ "$(stat -c %a "$S/rotation/encryption-new.json")" = 600 ] || fail "the new key is not 0600"
! grep -rq "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secret"])' "$S/rotation/encryption-new.json")" "$WORK/out.log" ||
  fail "rotate printed the new key"

# ---- encryption-key phases ----
gen "$WORK/e1"; same_config_everywhere "$WORK/e1" "aescbc:key1 aescbc:key2"
expect 0 "phase 2/4" rot encryption-key --advance
gen "$WORK/e2"; same_config_everywhere "$WORK/e2" "aescbc:key2 aescbc:key1"
expect 3 "phase 2: the new key already encrypts" rot encryption-key --abort
expect 0 "phase 3/4" rot encryption-key --advance
grep -q "kubectl get secrets --all-namespaces -o json | kubectl replace -f -" "$WORK/out.log" || fail "phase 3 does not print the command"
gen "$WORK/e3"; same_config_everywhere "$WORK/e3" "aescbc:key2 aescbc:key1"
# The re-encrypt request: on the designated node (control-0) only, naming the key that writes.
python3 - "$WORK/e3/control-0/var/lib/kubernetes/reencrypt-secrets.json" <<'EOF' || fail "the re-encrypt request"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["version"] == 1 and j["write_key"] == "aescbc:key2", j
assert j["api_server"].startswith("https://127.0.0.1:"), j
assert j["key_file"] == "/var/lib/kubernetes/bootstrap/kbundle-bootstrap.key", j
EOF
for n in control-1 control-2 worker-0; do [ ! -e "$WORK/e3/$n/var/lib/kubernetes/reencrypt-secrets.json" ] || fail "$n has a re-encrypt request"; done
for p in e1 e2; do [ ! -e "$WORK/$p/control-0/var/lib/kubernetes/reencrypt-secrets.json" ] || fail "$p has a re-encrypt request"; done
expect 0 "phase 4/4" rot encryption-key --advance
gen "$WORK/e4"; same_config_everywhere "$WORK/e4" "aescbc:key2"
[ ! -e "$WORK/e4/control-0/var/lib/kubernetes/reencrypt-secrets.json" ] || fail "phase 4 still asks for a re-encrypt"
expect 0 "completed" rot encryption-key --advance
gen "$WORK/e5"
diff -r "$WORK/e4" "$WORK/e5" >/dev/null || fail "completing changed the bundles of phase 4"
grep -q '"name":"key2","provider":"aescbc"' "$S/rotation/encryption.json" || fail "the completed key is not recorded"
[ ! -e "$S/rotation/encryption-new.json" ] || fail "completion left the new key file"
# The units never change during a key rotation (the flags name the same files).
for p in e1 e2 e3 e4; do diff -r "$WORK/p0/control-0/etc/systemd/system" "$WORK/$p/control-0/etc/systemd/system" >/dev/null || fail "$p: a unit changed"; done

# ---- a provider change without a rotation: refused; with one: both providers in phases ----
sed 's/provider: aescbc/provider: secretbox/' "$EXAMPLE" >"$WORK/secretbox.yaml"
grep -q "provider: secretbox" "$WORK/secretbox.yaml" || fail "could not make the secretbox topology"
before=$(state_sum)
expect 3 "cluster.encryption.provider: secretbox, but the Secrets are encrypted with aescbc" \
  "$KBUNDLE" gen --no-binaries --format dir --topology "$WORK/secretbox.yaml" --state "$S" --out "$WORK/refused"
grep -q "nothing was written" "$WORK/out.log" || fail "gen: the refusal does not say nothing was written"
[ ! -e "$WORK/refused" ] && [ "$(state_sum)" = "$before" ] || fail "a refused gen wrote something"
expect 3 "kbundle rotate encryption-key" "$KBUNDLE" plan --no-binaries --topology "$WORK/secretbox.yaml" --state "$S"
rc=0; "$KBUNDLE" plan --json --no-binaries --topology "$WORK/secretbox.yaml" --state "$S" >"$WORK/plan.json" 2>/dev/null || rc=$?
[ "$rc" = 3 ] && python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["refused"] and "secretbox" in j["problems"][0], j' \
  "$WORK/plan.json" || fail "plan --json does not carry the refusal"
expect 0 "warning: cluster.encryption.provider: secretbox" "$KBUNDLE" validate --topology "$WORK/secretbox.yaml" --state "$S"
"$KBUNDLE" validate --json --topology "$WORK/secretbox.yaml" --state "$S" | python3 -c \
  'import json,sys; d=json.load(sys.stdin); assert d["valid"] and any(x["severity"]=="warning" and "secretbox" in x["message"] for x in d["diagnostics"]), d' ||
  fail "validate --json does not carry the warning"
expect 0 "valid" "$KBUNDLE" validate --topology "$WORK/secretbox.yaml"  # without the state it cannot know
TOPO=$WORK/secretbox.yaml
expect 0 "key3 (secretbox) replaces key2 (aescbc)" rot encryption-key
gen "$WORK/s1" "$TOPO"; same_config_everywhere "$WORK/s1" "aescbc:key2 secretbox:key3"
# The provider put back in the middle of a rotation is refused too.
expect 3 "rotation in progress (phase 1) switches to secretbox" \
  "$KBUNDLE" gen --no-binaries --format dir --topology "$EXAMPLE" --state "$S" --out "$WORK/refused2"
expect 0 "phase 2/4" rot encryption-key --advance
gen "$WORK/s2" "$TOPO"; same_config_everywhere "$WORK/s2" "secretbox:key3 aescbc:key2"
expect 0 "phase 3/4" rot encryption-key --advance
gen "$WORK/s3" "$TOPO"
expect 0 "phase 4/4" rot encryption-key --advance
gen "$WORK/s4" "$TOPO"; same_config_everywhere "$WORK/s4" "secretbox:key3"
expect 0 "completed" rot encryption-key --advance
gen "$WORK/s5" "$TOPO"; same_config_everywhere "$WORK/s5" "secretbox:key3"

# ---- service-account key ----
ENC_S=$(echo "$(date +%s.%N) - $T0" | bc)
K=/var/lib/kubernetes/service-accounts.key
P=/var/lib/kubernetes/service-accounts.pub
split_pems() { # FILE DIR -> DIR/0.pem, DIR/1.pem ...
  mkdir -p "$2"
  python3 - "$1" "$2" <<'EOF'
import re, sys
pems = re.findall(r"-----BEGIN PUBLIC KEY-----\n.*?-----END PUBLIC KEY-----\n", open(sys.argv[1]).read(), re.S)
for i, p in enumerate(pems):
    open("%s/%d.pem" % (sys.argv[2], i), "w").write(p)
print(len(pems))
EOF
}
echo '{"iss":"https://kubernetes.example","sub":"system:serviceaccount:default:app"}' >"$WORK/claims"
sign() { openssl dgst -sha256 -sign "$1" -out "$2" "$WORK/claims" || fail "openssl sign with $1"; }
# verifies SIG PUBFILE: exit 0 when one of the public keys in PUBFILE (as the apiserver reads it) verifies SIG.
verifies() {
  local d; d=$(mktemp -d "$WORK/v.XXXX")
  split_pems "$2" "$d" >/dev/null
  for k in "$d"/*.pem; do openssl dgst -sha256 -verify "$k" -signature "$1" "$WORK/claims" >/dev/null 2>&1 && return 0; done
  return 1
}
gen "$WORK/a0"
sign "$WORK/a0/control-0$K" "$WORK/old.sig"
verifies "$WORK/old.sig" "$WORK/a0/control-0$P" || fail "phase 0: the key pair does not verify its own token"
expect 0 "phase 1/3" rot service-account-key
gen "$WORK/a1"
[ "$(split_pems "$WORK/a1/control-1$P" "$WORK/a1pems")" = 2 ] || fail "phase 1: not two public keys"
cmp -s "$WORK/a0/control-0$K" "$WORK/a1/control-0$K" || fail "phase 1: the signing key changed already"
verifies "$WORK/old.sig" "$WORK/a1/control-0$P" || fail "phase 1: an old token no longer verifies"
expect 0 "phase 2/3" rot service-account-key --advance
gen "$WORK/a2"
! cmp -s "$WORK/a0/control-0$K" "$WORK/a2/control-0$K" || fail "phase 2: the new key does not sign"
sign "$WORK/a2/control-0$K" "$WORK/new.sig"
verifies "$WORK/old.sig" "$WORK/a2/control-2$P" || fail "phase 2: a token of the old key does not verify with the phase-2 keys"
verifies "$WORK/new.sig" "$WORK/a2/control-2$P" || fail "phase 2: a token of the new key does not verify"
# Mixed rollout: an apiserver still on phase 1 verifies what a phase-2 signer made.
verifies "$WORK/new.sig" "$WORK/a1/control-2$P" || fail "phase 1 keys do not verify a token of the phase-2 signer"
# kube-controller-manager signs with the same file the apiserver does.
grep -q -- "--service-account-private-key-file=$K" "$WORK/a2/control-0/etc/systemd/system/kube-controller-manager.service" ||
  fail "controller-manager does not sign with $K"
grep -q -- "--service-account-signing-key-file=$K" "$WORK/a2/control-0/etc/systemd/system/kube-apiserver.service" &&
  grep -q -- "--service-account-key-file=$P" "$WORK/a2/control-0/etc/systemd/system/kube-apiserver.service" || fail "apiserver flags"
# A mid-rotation generation's units pass systemd-analyze verify (skipped there when it is missing).
if command -v systemd-analyze >/dev/null; then
  KB_UNITS_DIR=$WORK/a2 bash "$KB_SOURCE_DIR/tests/integration/units_verify.sh" >"$WORK/uv.log" 2>&1 ||
    { cat "$WORK/uv.log" >&2; fail "units_verify.sh on phase 2"; }
fi
# Advancing to 3 waits for the tokens of the old key; --force does it with a warning.
before=$(state_sum)
expect 3 "tokens signed by the old service-account key may still be in use" rot service-account-key --advance
grep -q "pass --force" "$WORK/out.log" || fail "the SA wait does not name --force"
[ "$(state_sum)" = "$before" ] || fail "a refused SA advance changed the state"
expect 0 "warning: --force" rot service-account-key --advance --force
grep -q "phase 3/3" "$WORK/out.log" || fail "--force did not enter phase 3"
gen "$WORK/a3"
[ "$(split_pems "$WORK/a3/control-0$P" "$WORK/a3pems")" = 1 ] || fail "phase 3: not one public key"
! verifies "$WORK/old.sig" "$WORK/a3/control-0$P" || fail "phase 3: a token of the old key still verifies"
verifies "$WORK/new.sig" "$WORK/a3/control-0$P" || fail "phase 3: a token of the new key does not verify"
expect 0 "completed" rot service-account-key --advance
gen "$WORK/a4"
diff -r "$WORK/a3" "$WORK/a4" >/dev/null || fail "completing changed the bundles of phase 3"
cmp -s "$S/keys/service-account.key" "$WORK/a4/control-0$K" || fail "the new key is not the state's key"
# A damaged rotation file is refused on open, naming it (the framework's pin).
expect 0 "phase 1/3" rot service-account-key
echo tampered >>"$S/rotation/service-account-new.key"
expect 1 "service-account-new.key" "$KBUNDLE" gen --no-binaries --format dir --topology "$TOPO" --state "$S" --out "$WORK/x"
# --force belongs to --advance only.
expect 2 "" rot service-account-key --force

TOTAL_S=$(echo "$(date +%s.%N) - $T0" | bc)
pass "$(printf 'encryption-key: two rotations (aescbc->aescbc, aescbc->secretbox) and a refused provider change in %.1f s; service-account-key rotation in %.1f s' "$ENC_S" "$(echo "$TOTAL_S - $ENC_S" | bc)")"
