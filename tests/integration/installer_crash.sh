#!/usr/bin/env bash
# G7/G8: kill -9 at every fault point of an apply (first install, and serial 1 -> 2),
# then again during the recovery; the next run must leave the root fully old or fully
# new, never a mix, and a final apply must reach the new generation.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/installer_lib.bash"
gen_serials
N=control-0
B1=$WORK/o1/$N.kbundle B2=$WORK/o2/$N.kbundle KEY=$WORK/o1/bundle-signing.pub
"$KBUNDLE" inspect "$B2" | grep -E >/dev/null -e "^serial: +2$" || fail "topology change did not raise $N to serial 2"

new_root "$WORK/t0"                       # template: empty node
cp -a "$WORK/t0" "$WORK/t1"
inst --root "$WORK/t1" --node $N --trust-key "$KEY" apply "$B1" >/dev/null 2>&1 || fail "clean apply 1"
cp -a "$WORK/t1" "$WORK/t2"
inst --root "$WORK/t2" --node $N apply "$B2" >/dev/null 2>&1 || fail "clean apply 2"
S0=$(snap "$WORK/t0") S1=$(snap "$WORK/t1") S2=$(snap "$WORK/t2")
[ "$S0" != "$S1" ] && [ "$S1" != "$S2" ] || fail "generations do not differ"

points_tested=0 old=0 new=0
# scenario FROM_TEMPLATE BUNDLE OLD_SNAP NEW_SNAP
scenario() {
  local from=$1 bundle=$2 want_old=$3 want_new=$4 label=$5
  rm -rf "$WORK/list"; cp -a "$from" "$WORK/list"
  mapfile -t points < <(KB_FAULT_LIST=1 inst --root "$WORK/list" --node $N --trust-key "$KEY" apply "$bundle" 2>&1 >/dev/null |
    sed -n 's/^kb-fault-point: //p')
  [ ${#points[@]} -gt 10 ] || fail "$label: only ${#points[@]} fault points listed"
  for p in "${points[@]}"; do
    rm -rf "$WORK/r"; cp -a "$from" "$WORK/r"
    set +e
    KB_FAULT_POINT=$p inst --root "$WORK/r" --node $N --trust-key "$KEY" apply "$bundle" >/dev/null 2>&1; rc=$?
    [ $rc -eq 137 ] || fail "$label: fault point $p: exit $rc, expected SIGKILL"
    # Crash again during the recovery (restore and roll-forward points), then recover for good.
    for p2 in after-restore-0 after-restore-2 after-commit-current after-journal-0; do
      KB_FAULT_POINT=$p2 inst --root "$WORK/r" recover >/dev/null 2>&1; rc=$?
      [ $rc -eq 0 ] || [ $rc -eq 137 ] || fail "$label: $p then recover crashing at $p2: exit $rc"
    done
    inst --root "$WORK/r" recover >"$WORK/recover.log" 2>&1; rc=$?
    set -e
    [ $rc -eq 0 ] || { cat "$WORK/recover.log" >&2; fail "$label: recover after $p: exit $rc"; }
    [ ! -e "$WORK/r/var/lib/kbundle/journal.json" ] || fail "$label: journal left after $p"
    s=$(snap "$WORK/r")
    if [ "$s" = "$want_old" ]; then
      old=$((old + 1)); state=old
    elif [ "$s" = "$want_new" ]; then
      new=$((new + 1)); state=new
    else
      diff <(echo "$want_old") <(echo "$s") | head -20 >&2
      fail "$label: after a crash at $p the root is neither fully old nor fully new"
    fi
    case $p in after-file-*|after-backup-*|after-stage|after-restart-*) [ $state = old ] || fail "$label: $p ended new";; esac
    case $p in after-commit-*) [ $state = new ] || fail "$label: $p ended old";; esac
    # And the next apply gets there.
    inst --root "$WORK/r" --node $N --trust-key "$KEY" apply "$bundle" >/dev/null 2>&1 || fail "$label: apply after $p"
    [ "$(snap "$WORK/r")" = "$want_new" ] || fail "$label: apply after $p did not reach the new generation"
    points_tested=$((points_tested + 1))
  done
}
scenario "$WORK/t0" "$B1" "$S0" "$S1" "first install"
scenario "$WORK/t1" "$B2" "$S1" "$S2" "serial 1 -> 2"

# Drift repair (G30): serial 1 applied again on a node where a config was edited, a key made 0644
# and a unit file deleted. status shows the three; the repair is the same transaction, so a crash at
# any point leaves the drifted root or the repaired one.
cp -a "$WORK/t1" "$WORK/td"
echo "# edited by hand" >>"$WORK/td/var/lib/kubernetes/encryption-config.yaml"
chmod 0644 "$WORK/td/var/lib/kubernetes/kube-apiserver.key"
rm "$WORK/td/etc/systemd/system/etcd.service"
SD=$(snap "$WORK/td")
inst --root "$WORK/td" --json status >"$WORK/drift.json" || fail "status on a drifted node"
python3 - "$WORK/drift.json" <<'PY' || fail "status does not show the drift: $(cat "$WORK/drift.json")"
import json, sys
d = {x["path"]: x["why"] for x in json.load(open(sys.argv[1]))["drift"]}
assert d == {"/etc/systemd/system/etcd.service": ["missing"],
             "/var/lib/kubernetes/encryption-config.yaml": ["content"],
             "/var/lib/kubernetes/kube-apiserver.key": ["mode 0644 (want 0600)"]}, d
PY
cp -a "$WORK/td" "$WORK/tr"
inst --root "$WORK/tr" --node $N apply "$B1" >"$WORK/repair.log" 2>&1 || { cat "$WORK/repair.log" >&2; fail "repair"; }
grep -q "repaired 3 drifted paths of serial 1" "$WORK/repair.log" || fail "repair said: $(cat "$WORK/repair.log")"
[ "$(snap "$WORK/tr")" = "$S1" ] || fail "the repair did not bring back serial 1 exactly"
inst --root "$WORK/tr" verify >/dev/null || fail "drift left after the repair"
scenario "$WORK/td" "$B1" "$SD" "$S1" "drift repair at serial 1"
pass "$points_tested fault points (each followed by 4 crashing recoveries): $old ended fully old, $new fully new; never mixed"
