# G21 with the real binaries: hostile bundles, validly signed with the cluster's own key
# (kb_e2e_rebundle --add/--add-dir/--add-unit), are refused by `kbundle inspect` (exit 1) and by
# `kbundle-installer apply` and `verify` (exit 3), each naming the path and the rule, and the
# node root -- installer state and pinned key included -- is byte for byte, mode and owner unchanged.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/installer_lib.bash"
REBUNDLE=$KB_BUILD_DIR/tests/kb_e2e_rebundle
[ -x "$REBUNDLE" ] || fail "kb_e2e_rebundle not built at $REBUNDLE"

"$KBUNDLE" gen --no-binaries --topology "$EXAMPLE" --state "$WORK/state" --out "$WORK/o1" >"$WORK/gen.log" 2>&1 ||
  { cat "$WORK/gen.log" >&2; fail "gen"; }
PUB=$WORK/o1/bundle-signing.pub
# What gen writes passes the policy, every role.
for n in control-0 worker-0; do expect 0 "policy: ok" "$KBUNDLE" inspect "$WORK/o1/$n.kbundle"; done

# A worker root that runs serial 1, with the accounts a Debian node has.
ROOT=$WORK/root
new_root "$ROOT"
mkdir -p "$ROOT/root" "$ROOT/usr/bin"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$ROOT/etc/group"
inst --root "$ROOT" --node worker-0 --trust-key "$PUB" apply "$WORK/o1/worker-0.kbundle" >"$WORK/apply1.log" 2>&1 ||
  { cat "$WORK/apply1.log" >&2; fail "the good bundle did not apply"; }
# Everything, the installer's state and the pinned key included: type, mode, owner, size, mtime, content.
listing() {
  (cd "$1" && find . -printf '%p %y %m %U:%G %s %T@\n' | LC_ALL=C sort &&
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}
listing "$ROOT" >"$WORK/before"
stat -c '%n %a %U:%G' "$ROOT/etc" "$ROOT/root" "$ROOT/usr" >"$WORK/system-before"

echo 'hostile' >"$WORK/payload"
other_key="$WORK/other.pub"
openssl genpkey -algorithm ed25519 2>/dev/null | openssl pkey -pubout >"$other_key"
echo '[Service]' >"$WORK/unit"
# name | the path or unit the refusal names | kb_e2e_rebundle arguments
cases=(
  "sudoers|/etc/sudoers.d/x|--add /etc/sudoers.d/x=$WORK/payload:0440"
  "authorized_keys|/root/.ssh/authorized_keys|--add /root/.ssh/authorized_keys=$WORK/payload:0600"
  "ld.so.preload|/etc/ld.so.preload|--add /etc/ld.so.preload=$WORK/payload:0644"
  "profile.d|/etc/profile.d/x.sh|--add /etc/profile.d/x.sh=$WORK/payload:0644"
  "cron.d|/etc/cron.d/x|--add /etc/cron.d/x=$WORK/payload:0644"
  "installer binary|/usr/local/bin/kbundle-installer|--add /usr/local/bin/kbundle-installer=$WORK/payload:0755"
  "unknown binary|/usr/local/bin/x|--add /usr/local/bin/x=$WORK/payload:0755"
  "/usr/bin|/usr/bin/x|--add /usr/bin/x=$WORK/payload:0755"
  "/lib/systemd|/lib/systemd/system/x.service|--add /lib/systemd/system/x.service=$WORK/unit:0644"
  "unit not listed|/etc/systemd/system/etcd.service|--add /etc/systemd/system/etcd.service=$WORK/unit:0600"
  "ssh.service listed|ssh.service|--add-unit ssh.service --add /etc/systemd/system/ssh.service=$WORK/unit:0644"
  "trust store|/etc/kbundle/trust.pub|--add /etc/kbundle/trust.pub=$other_key:0644"
  "installer state|/var/lib/kbundle/current/manifest.json|--add /var/lib/kbundle/current/manifest.json=$WORK/payload:0600"
  "kubernetesX|/etc/kubernetesX/a.yaml|--add /etc/kubernetesX/a.yaml=$WORK/payload:0600"
  "unit 0666 nobody|/etc/systemd/system/kubelet.service.d/x.conf|--add /etc/systemd/system/kubelet.service.d/x.conf=$WORK/unit:0666:nobody:nogroup"
  "world-writable file|/var/lib/kubelet/x|--add /var/lib/kubelet/x=$WORK/payload:0666"
  "world-writable dir|/var/lib/kubelet/d|--add-dir /var/lib/kubelet/d=0777"
  "owner nobody|/var/lib/kubelet/x|--add /var/lib/kubelet/x=$WORK/payload:0600:nobody:nogroup"
  "unknown user|/var/lib/kubelet/x|--add /var/lib/kubelet/x=$WORK/payload:0600:mallory:mallory"
  "/etc 0777 nobody|/etc|--add-dir /etc=0777:nobody:nogroup"
  "/root 0777|/root|--add-dir /root=0777"
  "/usr 0700|/usr|--add-dir /usr=0700"
)
for c in "${cases[@]}"; do
  IFS='|' read -r name path args <<<"$c"
  # shellcheck disable=SC2086 # args is a list of options
  "$REBUNDLE" --in "$WORK/o1/worker-0.kbundle" --pub "$PUB" --key "$WORK/state/keys/bundle-signing.key" \
    --out "$WORK/bad.kbundle" --serial +1 $args >"$WORK/rebundle.log" 2>&1 || { cat "$WORK/rebundle.log" >&2; fail "$name: rebundle"; }
  expect 1 "kbundle: error: $WORK/bad.kbundle: policy: $path: .*(rule: " "$KBUNDLE" inspect --pubkey "$PUB" "$WORK/bad.kbundle"
  grep -q "refused (policy-violation)" "$WORK/out.log" || fail "$name: inspect does not say refused"
  expect 3 "kbundle-installer: error: $WORK/bad.kbundle: $path: .*(rule: .*(policy-violation); refused" \
    inst --root "$ROOT" --node worker-0 apply "$WORK/bad.kbundle"
  expect 3 "$path: .*(policy-violation); refused" inst --root "$ROOT" verify "$WORK/bad.kbundle"
  listing "$ROOT" >"$WORK/after"
  diff "$WORK/before" "$WORK/after" >&2 || fail "$name: the root changed"
done
stat -c '%n %a %U:%G' "$ROOT/etc" "$ROOT/root" "$ROOT/usr" | diff "$WORK/system-before" - >&2 || fail "system directories changed"

# The root still takes the next good bundle, and reset leaves /etc, /root and /usr as they were.
"$REBUNDLE" --in "$WORK/o1/worker-0.kbundle" --pub "$PUB" --key "$WORK/state/keys/bundle-signing.key" \
  --out "$WORK/good2.kbundle" --serial +1 >"$WORK/rebundle.log" 2>&1 || fail "rebundle good"
expect 0 "applied serial" inst --root "$ROOT" --node worker-0 apply "$WORK/good2.kbundle"
expect 0 "rolled back" inst --root "$ROOT" rollback
expect 0 "removed" inst --root "$ROOT" --yes reset
stat -c '%n %a %U:%G' "$ROOT/etc" "$ROOT/root" "$ROOT/usr" | diff "$WORK/system-before" - >&2 || fail "reset changed system directories"
pass "${#cases[@]} hostile, validly signed bundles refused by inspect (exit 1), apply and verify (exit 3); root unchanged"
