#!/usr/bin/env bash
# The CIS Kubernetes Benchmark (kube-bench's cis-1.12 checks, vendored in tests/cis/)
# passes on what kbundle generates, except the exceptions listed with their reasons
# in tests/cis/exceptions.yaml; see docs/cis.md.
#
#   cis_benchmark.sh            generate the example cluster (--format dir), take modes and
#                               owners from the bundles' manifests, check every node; then
#                               check that weakened units and configs, and a topology that
#                               turns hardening off, are caught
#   cis_benchmark.sh ROOT...    check already applied roots (e.g. / on a node), modes and
#                               owners as stat sees them
#
# Prints `scored: P/N, manual: P/N`. Exit: 0 passed, 1 failed, 77 skipped (no python3-yaml).
source "$(dirname "$0")/lib.bash"
need python3
python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"
CHECK=(python3 "$KB_SOURCE_DIR/tests/cis/cis_check.py")

if [ $# -gt 0 ]; then
  "${CHECK[@]}" "$@"
  exit
fi

# expect_failures TREE MANIFESTS ID... : the checker fails, naming each ID as FAIL.
expect_failures() {
  local tree=$1 manifests=$2 rc=0
  shift 2
  "${CHECK[@]}" --quiet --manifest-dir "$manifests" "$tree"/*/ >"$WORK/weak.log" 2>&1 || rc=$?
  [ "$rc" -eq 1 ] || { cat "$WORK/weak.log" >&2; fail "the checker passed (rc=$rc) on $tree, expected $* to fail"; }
  for id in "$@"; do
    grep -qE "^$id +FAIL " "$WORK/weak.log" || { cat "$WORK/weak.log" >&2; fail "$tree: $id not reported as FAIL"; }
  done
}

# manifests STATE TOPOLOGY DIR: the plan's modes and owners, from `kbundle inspect --json` of the bundles.
manifests() {
  "$KBUNDLE" gen --no-binaries --topology "$2" --state "$1" --out "$3.bundles" >"$WORK/gen-bundles.log" 2>&1 ||
    { cat "$WORK/gen-bundles.log" >&2; fail "kbundle gen (bundles) failed"; }
  mkdir -p "$3"
  for b in "$3.bundles"/*.kbundle; do
    "$KBUNDLE" inspect "$b" --json >"$3/$(basename "$b" .kbundle).json" || fail "kbundle inspect $b failed"
  done
}

# 1. The example cluster, as generated.
gen_example
manifests "$WORK/state" "$EXAMPLE" "$WORK/manifests"
"${CHECK[@]}" --manifest-dir "$WORK/manifests" "$WORK/out"/*/ >"$WORK/cis.log" 2>&1 ||
  { cat "$WORK/cis.log" >&2; fail "the generated cluster fails the benchmark"; }
summary=$(grep '^scored: ' "$WORK/cis.log") || fail "no totals printed"
grep -q '^cis_check: note:' "$WORK/cis.log" && grep '^cis_check: note:' "$WORK/cis.log" >&2

# 2. A test that cannot fail is no test: weaken one setting per kind of check.
cp -a "$WORK/out" "$WORK/weak"
cp -a "$WORK/manifests" "$WORK/weak-manifests"
sed -i 's/ --profiling=false / /' "$WORK/weak/control-0/etc/systemd/system/kube-apiserver.service"
sed -i 's/--client-cert-auth=true/--client-cert-auth=false/' "$WORK/weak/control-1/etc/systemd/system/etcd.service"
sed -i 's/--tls-cipher-suites=/--tls-cipher-suites=TLS_RSA_WITH_AES_128_CBC_SHA,/' \
  "$WORK/weak/control-2/etc/systemd/system/kube-controller-manager.service"
python3 - "$WORK/weak/worker-0/var/lib/kubelet/kubelet-config.yaml" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
assert "anonymous:\n    enabled: false" in s
open(p, "w").write(s.replace("anonymous:\n    enabled: false", "anonymous:\n    enabled: true"))
PY
chmod 0644 "$WORK/weak/control-0/var/lib/kubernetes/ca.key"
python3 - "$WORK/weak-manifests/control-0.json" <<'PY'
import json, sys
p = sys.argv[1]
m = json.load(open(p))
for e in m["entries"]:
    if e["path"] == "/var/lib/kubernetes/ca.key":
        e["mode"] = "0644"
json.dump(m, open(p, "w"))
PY
expect_failures "$WORK/weak" "$WORK/weak-manifests" 1.2.15 2.2 1.2.29 4.2.1 1.1.21

# A tree whose modes differ from its manifest is caught too (the manifest is not trusted blindly).
chmod 0640 "$WORK/out/worker-1/var/lib/kubelet/kubeconfig"
rc=0
"${CHECK[@]}" --quiet --manifest-dir "$WORK/manifests" "$WORK/out"/*/ >"$WORK/mismatch.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && grep -q 'kubeconfig: mode 640 on disk, 600 in the manifest' "$WORK/mismatch.log" ||
  { cat "$WORK/mismatch.log" >&2; fail "a mode differing from the manifest was not reported"; }
chmod 0600 "$WORK/out/worker-1/var/lib/kubelet/kubeconfig"

# 3. A topology that turns hardening off: `kbundle lint` names the checks, the benchmark fails them.
sed 's/^  encryption:$/  hardening: {alwaysPullImages: false, denyServiceExternalIPs: false}\n  encryption:/' \
  "$EXAMPLE" >"$WORK/soft.yaml"
grep -q 'alwaysPullImages: false' "$WORK/soft.yaml" || fail "could not write the soft topology"
"$KBUNDLE" lint --topology "$WORK/soft.yaml" >"$WORK/lint.log" 2>&1 || { cat "$WORK/lint.log" >&2; fail "kbundle lint failed"; }
grep -q 'warning: CIS 1.2.11 (Manual) .*cluster.hardening.alwaysPullImages: false' "$WORK/lint.log" &&
  grep -q 'warning: CIS 1.2.3 (Manual) .*cluster.hardening.denyServiceExternalIPs: false' "$WORK/lint.log" &&
  grep -q '2 CIS checks turned off' "$WORK/lint.log" || { cat "$WORK/lint.log" >&2; fail "kbundle lint did not report 1.2.3 and 1.2.11"; }
"$KBUNDLE" lint --topology "$EXAMPLE" | grep >/dev/null -e '0 CIS checks turned off' || fail "kbundle lint reports checks off for the example"
"$KBUNDLE" gen --no-binaries --topology "$WORK/soft.yaml" --state "$WORK/soft-state" --out "$WORK/soft" --format dir >/dev/null 2>&1 ||
  fail "kbundle gen of the soft topology failed"
manifests "$WORK/soft-state" "$WORK/soft.yaml" "$WORK/soft-manifests"
expect_failures "$WORK/soft" "$WORK/soft-manifests" 1.2.3 1.2.11

# 4. The same checks on roots the installer applied (modes and owners as stat sees them),
#    under a careless umask: the installer's modes must not depend on it.
INSTALLER=$KB_BUILD_DIR/installer/kbundle-installer
[ -x "$INSTALLER" ] || fail "kbundle-installer not built at $INSTALLER"
for b in "$WORK/manifests.bundles"/*.kbundle; do
  n=$(basename "$b" .kbundle)
  mkdir -p "$WORK/applied/$n"/{etc/systemd/system,var/lib,usr/local/bin}
  (umask 000; "$INSTALLER" --no-systemd --root "$WORK/applied/$n" --node "$n" apply \
     --trust-key "$WORK/manifests.bundles/bundle-signing.pub" "$b" >"$WORK/apply-$n.log" 2>&1) ||
    { cat "$WORK/apply-$n.log" >&2; fail "kbundle-installer apply $n failed"; }
done
"${CHECK[@]}" "$WORK/applied"/*/ >"$WORK/cis-applied.log" 2>&1 ||
  { cat "$WORK/cis-applied.log" >&2; fail "an applied root fails the benchmark"; }
applied=$(grep '^scored: ' "$WORK/cis-applied.log") || fail "no totals for the applied roots"
[ "$applied" = "$summary" ] || fail "applied roots score '$applied', generated files '$summary'"

pass "$summary, on the generated files and on roots applied by kbundle-installer (weakened units and configs are caught)"
