#!/usr/bin/env bash
# Every systemd unit kbundle generates passes `systemd-analyze verify`.
#
# Generates the example cluster with the real CLI
#   $KB_BUILD_DIR/cli/kbundle gen --topology $KB_SOURCE_DIR/examples/aws-ha.yaml \
#       --state S --out O --format dir
# (or takes already generated node folders from $KB_UNITS_DIR, laid out the same
# way: <dir>/<node>/etc/systemd/system/*.service), then, per node, builds a
# throw-away root holding the host's own systemd units, the node's units and a
# stand-in executable at every Exec*= path, and verifies the units against it.
# No running systemd is needed. Any message that names one of our units fails
# the test: systemd-analyze only warns (exit 0) about unknown keys.
#
# Exit: 0 passed, 1 failed, 77 skipped (systemd-analyze or the inputs missing).
set -euo pipefail

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAILED: $*" >&2; exit 1; }

command -v systemd-analyze >/dev/null 2>&1 || skip "systemd-analyze not found"
system_units=""
for d in /usr/lib/systemd/system /lib/systemd/system; do
  if [[ -f $d/sysinit.target && -f $d/multi-user.target ]]; then system_units=$d; break; fi
done
[[ -n $system_units ]] || skip "no systemd unit directory with sysinit.target on this host"

work=$(mktemp -d "${TMPDIR:-/tmp}/kb-units-verify.XXXXXX")
keep_work=0
cleanup() { if [[ $keep_work == 0 ]]; then rm -rf "$work"; else echo "kept $work for inspection" >&2; fi; }
trap cleanup EXIT

if [[ -n ${KB_UNITS_DIR:-} ]]; then
  out=$KB_UNITS_DIR
  [[ -d $out ]] || fail "KB_UNITS_DIR=$out is not a directory"
else
  : "${KB_BUILD_DIR:?set KB_BUILD_DIR (ctest does)}"
  : "${KB_SOURCE_DIR:?set KB_SOURCE_DIR (ctest does)}"
  kbundle=$KB_BUILD_DIR/cli/kbundle
  topology=$KB_SOURCE_DIR/examples/aws-ha.yaml
  [[ -x $kbundle ]] || skip "$kbundle not built"
  [[ -f $topology ]] || skip "$topology missing"
  out=$work/out
  if ! "$kbundle" gen --no-binaries --topology "$topology" --state "$work/state" --out "$out" --format dir >"$work/gen.log" 2>&1; then
    cat "$work/gen.log" >&2
    fail "kbundle gen failed"
  fi
fi

# The executable an Exec*= line runs: the first word after the key, without
# systemd's prefixes (-, @, :, +, !).
exec_paths() {
  sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\([^ ]*\).*/\1/p' "$@" | sort -u
}

stand_in() {
  local path=$1
  mkdir -p "$(dirname "$path")"
  printf '#!/bin/sh\nexit 0\n' >"$path"
  chmod 0755 "$path"
}

nodes=0
units_checked=0
failed=0
for node_dir in "$out"/*/; do
  unit_dir=${node_dir}etc/systemd/system
  shopt -s nullglob
  units=("$unit_dir"/*.service "$unit_dir"/*.timer)  # timers too: kbundle-cert-metrics.timer, etcd-snapshot.timer
  shopt -u nullglob
  [[ ${#units[@]} -gt 0 ]] || continue
  node=$(basename "$node_dir")
  nodes=$((nodes + 1))

  root=$work/root/$node
  mkdir -p "$root/usr/lib/systemd" "$root/etc/systemd/system"
  cp -a "$system_units" "$root/usr/lib/systemd/system"
  cp "${units[@]}" "$root/etc/systemd/system/"

  while read -r exe; do
    [[ $exe == /* ]] || fail "$node: Exec path '$exe' is not absolute"
    stand_in "$root$exe"
  done < <(exec_paths "${units[@]}")

  root_units=()
  names=()
  for u in "${units[@]}"; do
    root_units+=("$root/etc/systemd/system/$(basename "$u")")
    names+=("$(basename "$u")")
  done

  rc=0
  output=$(cd "$root" && systemd-analyze verify --root="$root" --man=no "${root_units[@]}" 2>&1) || rc=$?
  ours=$(grep -F -f <(printf '%s\n' "${names[@]}") <<<"$output" || true)
  if [[ $rc != 0 || -n $ours ]]; then
    echo "--- $node: systemd-analyze verify (exit $rc)" >&2
    printf '%s\n' "$output" >&2
    failed=$((failed + 1))
  elif [[ -n $output ]]; then
    # Messages about the host's own units are not ours to fix; show them anyway.
    echo "note: $node: $output"
  fi
  units_checked=$((units_checked + ${#units[@]}))
done

[[ $nodes -gt 0 ]] || fail "no <node>/etc/systemd/system/*.service under $out"
if [[ $failed -gt 0 ]]; then
  keep_work=1
  fail "$failed of $nodes nodes have unit problems"
fi
echo "PASSED: $units_checked units on $nodes nodes verified"
