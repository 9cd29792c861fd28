#!/usr/bin/env bash
# G11: an apply into a file system that is too small is refused before anything is
# written; and when space runs out anyway (the check disabled, ENOSPC while staging
# or in the middle of the switch), the live files end exactly as they were.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/installer_lib.bash"
gen_serials
N=control-0 KEY=$WORK/o1/bundle-signing.pub
M=$WORK/mnt
mkdir -p "$M"
mount -t tmpfs -o size=2m,mode=0755 kb-tiny "$M" 2>/dev/null || skip "cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)"
cleanup "umount '$M'"
new_root "$M"
inst --root "$M" --node $N --trust-key "$KEY" apply "$WORK/o1/$N.kbundle" >/dev/null 2>&1 || fail "apply 1 into 2 MiB"
S1=$(snap "$M")
free_kb() { df -k --output=avail "$M" | tail -1 | tr -d ' '; }
# Fill until only $1 KiB are left.
fill_to() { rm -f "$M/filler"; local f; f=$(( $(free_kb) - $1 )); [ $f -gt 0 ] && head -c $((f * 1024)) /dev/zero >"$M/filler" || true; }

# 1. The check refuses cleanly.
fill_to 64
set +e; out=$(inst --root "$M" --node $N apply "$WORK/o2/$N.kbundle" 2>&1); rc=$?; set -e
[ $rc -eq 1 ] || fail "apply with 64 KiB free: exit $rc, expected 1"
grep -q "not enough free space" <<<"$out" || fail "no free-space message: $out"
diff <(echo "$S1" | grep -v "[.]/filler") <(snap "$M" | grep -v "[.]/filler") >&2 || fail "refused apply changed the root"

# 2. ENOSPC wherever it falls: with the check off, from almost nothing free to enough.
refused=0 restored=0 applied=0
for kb in $(seq 8 4 320); do
  fill_to $kb
  set +e; out=$(KB_TEST_SKIP_SPACE_CHECK=1 inst --root "$M" --node $N apply "$WORK/o2/$N.kbundle" 2>&1); rc=$?; set -e
  s=$(snap "$M" | grep -v "[.]/filler")
  if [ $rc -eq 0 ]; then
    applied=$((applied + 1))
    break
  fi
  [ $rc -eq 1 ] || fail "$kb KiB free: exit $rc: $out"
  grep -qi "no space left" <<<"$out" || fail "$kb KiB free: not an ENOSPC failure: $out"
  [ "$s" = "$(echo "$S1" | grep -v "[.]/filler")" ] || fail "$kb KiB free: ENOSPC left the root changed"
  [ ! -e "$M/var/lib/kbundle/journal.json" ] || fail "$kb KiB free: journal left behind"
  echo "$kb KiB: ${out##*error: }" >>"$WORK/enospc.log"
  if grep -q "restored to serial" <<<"$out"; then restored=$((restored + 1)); else refused=$((refused + 1)); fi
done
[ $applied -eq 1 ] || fail "the apply never succeeded, even with 256 KiB free"

# 3. ENOSPC in the middle of the switch: /var/lib/kubernetes is its own tiny file system
# (the state directory, where staging and backups go, has room).
R=$WORK/split; new_root "$R"; mkdir -p "$R/var/lib/kubernetes"
mount -t tmpfs -o size=1m,mode=0700 kb-tiny2 "$R/var/lib/kubernetes"
cleanup "umount '$R/var/lib/kubernetes'"
inst --root "$R" --node $N --trust-key "$KEY" apply "$WORK/o1/$N.kbundle" >/dev/null 2>&1 || fail "split: apply 1"
T1=$(snap "$R")
M=$R/var/lib/kubernetes
switch_failed=0
for kb in 0 4 8 12 16 20 24 28 32 40 48 64 128; do
  fill_to $kb
  set +e; out=$(inst --root "$R" --node $N apply "$WORK/o2/$N.kbundle" 2>&1); rc=$?; set -e
  [ $rc -eq 0 ] && break
  grep -q "every file was restored to serial 1" <<<"$out" || fail "split, $kb KiB free: $out"
  [ "$(snap "$R" | grep -v "[.]/var/lib/kubernetes/filler")" = "$(echo "$T1" | grep -v "[.]/var/lib/kubernetes/filler")" ] ||
    fail "split, $kb KiB free: ENOSPC during the switch left the root changed"
  switch_failed=$((switch_failed + 1))
done
[ $switch_failed -gt 0 ] || fail "the switch never ran out of space"
restored=$switch_failed
pass "space check refuses cleanly; ENOSPC $refused x before the switch, $restored x during it (rolled back), root unchanged each time"
