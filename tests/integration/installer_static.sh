#!/usr/bin/env bash
# kbundle-installer is one static binary without libcurl or yaml-cpp; it applies every
# real bundle of the example cluster; start-up time and size are reported.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/installer_lib.bash"
need file
file "$INSTALLER" | grep >/dev/null -e "statically linked" || fail "not statically linked: $(file "$INSTALLER")"
if ldd "$INSTALLER" >/dev/null 2>&1; then fail "ldd finds shared libraries"; fi
strings "$INSTALLER" | grep -E >/dev/null -e "curl_easy_|YAML::" && fail "links libcurl or yaml-cpp"
"$INSTALLER" --version | grep >/dev/null -e "^kbundle-installer " || fail "--version"
start=$(date +%s%N)
for _ in $(seq 100); do "$INSTALLER" --version >/dev/null; done
us=$(( ($(date +%s%N) - start) / 100000 ))  # per run
size=$(stat -c %s "$INSTALLER")
stripped=$(strip -o "$WORK/stripped" "$INSTALLER" && stat -c %s "$WORK/stripped")

gen_serials
KEY=$WORK/o1/bundle-signing.pub FP=$(cat "$WORK/o1/bundle-signing.sha256")
for n in control-0 control-1 control-2 worker-0 worker-1 worker-2; do
  R=$WORK/root-$n; new_root "$R"
  # Not this machine: refused without --node (G5), before anything is written.
  set +e; inst --root "$R" --trust-key "$KEY" apply "$WORK/o1/$n.kbundle" >/dev/null 2>&1; rc=$?; set -e
  [ $rc -eq 5 ] || fail "$n: apply on the wrong machine: exit $rc, expected 5"
  [ -z "$(find "$R" -newer "$WORK/o1/$n.kbundle" -not -type d)" ] || fail "$n: refused apply wrote files"
  inst --root "$R" --node $n --trust-fingerprint "$FP" apply "$WORK/o1/$n.kbundle" >/dev/null 2>&1 || fail "$n: apply 1"
  inst --root "$R" verify >/dev/null || fail "$n: drift right after apply"
  inst --root "$R" --node $n apply "$WORK/o2/$n.kbundle" >/dev/null 2>&1 || fail "$n: apply 2"
  inst --root "$R" --json status | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["serial"]==2 and s["certificates"], s' ||
    fail "$n: status --json"
  # Keys and kubeconfigs 0600 in 0700 directories (G10).
  bad=$(cd "$R" && find var/lib/kubernetes var/lib/kubelet var/lib/kube-proxy etc/etcd -maxdepth 1 \( -name '*.key' -o -name '*.kubeconfig' \) ! -perm 0600 2>/dev/null || true)
  [ -z "$bad" ] || fail "$n: not 0600: $bad"
  inst --root "$R" rollback >/dev/null 2>&1 || fail "$n: rollback"
  inst --root "$R" --json status | python3 -c 'import json,sys; assert json.load(sys.stdin)["serial"]==1' || fail "$n: rollback status"
  # Secrets never printed.
  inst --root "$R" --json status 2>&1 | grep >/dev/null -e "PRIVATE KEY" && fail "$n: status printed a key"
done
# A bad --root is one clear line and exit 1 (it once aborted with an uncaught exception, exit 134).
set +e
"$INSTALLER" --no-systemd --root "$WORK/no-such-root" status >"$WORK/badroot.log" 2>&1
rc=$?
set -e
[ $rc -eq 1 ] || { cat "$WORK/badroot.log" >&2; fail "--root of a missing directory: exit $rc, want 1"; }
grep >/dev/null -e "^kbundle-installer: error: --root $WORK/no-such-root" "$WORK/badroot.log" || fail "--root error not named"
pass "statically linked, $size bytes ($stripped stripped), --version $((us / 1000)).$(((us % 1000) / 100)) ms average over 100 runs; 6 real bundles applied, 2 serials, rollback"
