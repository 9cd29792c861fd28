#!/usr/bin/env bash
# `kbundle publish --to ssh --apply`: a rolling apply over real SSH (docs/rollout.md). Five nodes
# (systemd-nspawn, systemd as PID 1) each run sshd with its own ed25519 host key, pinned in a
# known_hosts file, root login by key only: three control-plane nodes (Debian's etcd, the kube-*
# stand-ins, as etcd_nodes.sh) and two workers (containerd, kubelet and kube-proxy stand-ins).
#   0. a known_hosts entry that does not match control-0's key: refused before anything is uploaded;
#   1. first rollout from nothing: nothing installed on any control-plane node, so the three are
#      applied together (etcd needs a quorum to pass its health check), every one gated with
#      `kbundle-installer health`, then both workers at once (--max-unavailable 2); etcd healthy
#      from the host over mutual TLS;
#   2. a second generation (every bundle re-signed with serial+1) rolled out one at a time: the
#      order of the commits, read from each node's installed manifest's mtime, is control-0,
#      control-1, control-2, worker-0, worker-1; the same generation again is "nothing to do" on
#      every node and exit 0;
#   3. a third generation whose control-1 bundle breaks etcd (kb_e2e_rebundle as etcd_nodes.sh
#      step 3): control-0 is applied, control-1's apply fails its health gate (exit 4, rolled back),
#      the rollout stops there: exit 1, --json says which node failed with what and that the rest
#      did not start; control-2 and the workers keep serial 2 and were never contacted (no new SSH
#      login in their sshd journal, their uploaded bundle unchanged); the cluster stays healthy;
#   4. control-1's bundle made again (good) and the same command: control-0 "nothing to do", the
#      other four applied, serial 3 everywhere, etcd healthy with every member.
source "$(dirname "$0")/../integration/lib.bash"
source "$(dirname "$0")/nspawn.bash"
nspawn_require
need etcd etcdctl openssl ssh-keygen python3
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep >/dev/null "statically linked" ||
  skip "/bin/busybox is not a static busybox (scripts/deps.sh test installs busybox-static)"

names=(control-0 control-1 control-2)
ips=("$NSPAWN_NET.1" "$NSPAWN_NET.2" "$NSPAWN_NET.3")
workers=(worker-0 worker-1)
wips=("$NSPAWN_NET.11" "$NSPAWN_NET.12")
all=("${names[@]}" "${workers[@]}")
nspawn_control_plane_topology "$WORK/topology.yaml"
for i in 0 1; do
  echo "  - {name: ${workers[$i]}, role: worker, privateIP: ${wips[$i]}}" >>"$WORK/topology.yaml"
done
"$KBUNDLE" gen --no-binaries --topology "$WORK/topology.yaml" --state "$WORK/state" --out "$WORK/gen1" >"$WORK/gen.log" 2>&1 ||
  { cat "$WORK/gen.log" >&2; fail "kbundle gen failed"; }

# Generations 2 and 3: every bundle re-signed with serial+1 (gen 3's control-1 with a broken etcd).
rebundle() {  # rebundle FROM TO NODE [ARGS...]
  "$REBUNDLE" --in "$1/$3.kbundle" --pub "$1/bundle-signing.pub" --key "$WORK/state/keys/bundle-signing.key" \
    --out "$2/$3.kbundle" --serial +1 "${@:4}" >>"$WORK/rebundle.log" 2>&1 || { cat "$WORK/rebundle.log" >&2; fail "rebundle $3"; }
}
for g in gen2 gen3; do mkdir -p "$WORK/$g" && cp "$WORK/gen1/bundle-signing.pub" "$WORK/$g/"; done
for n in "${all[@]}"; do rebundle "$WORK/gen1" "$WORK/gen2" "$n"; done

# SSH: the operator's key; each node's host key pinned in known_hosts.
ssh-keygen -q -t ed25519 -N '' -C operator -f "$WORK/id_ed25519"
: >"$WORK/known_hosts"

nspawn_base
lap "base root ready"
nspawn_net_up
boot() {  # boot NAME IP
  local root
  nspawn_prepare "$1" "$2"
  root=$(nspawn_root "$1")
  nspawn_sshd "$1" "$2" "$WORK/id_ed25519.pub" "$WORK/known_hosts"
  case $1 in
    control-*)
      nspawn_control_plane_bins "$root"
      nspawn_boot "$1"
      ;;
    *)
      install -D -m 0755 "$KB_SOURCE_DIR/tests/e2e/containerd-standin" "$root/usr/local/bin/containerd"
      for c in kubelet kube-proxy; do install -D -m 0755 "$KB_SOURCE_DIR/tests/e2e/kube-standin" "$root/usr/local/bin/$c"; done
      nspawn_boot "$1" --bind-ro=/bin/busybox:/usr/local/sbin/busybox
      ;;
  esac
}
for i in 0 1 2; do boot "${names[$i]}" "${ips[$i]}"; done
for i in 0 1; do boot "${workers[$i]}" "${wips[$i]}"; done
for n in "${all[@]}"; do nspawn_wait "$n"; done
for n in "${all[@]}"; do
  for _ in $(seq 1 50); do [ "$(node "$n" systemctl is-active ssh.service)" = active ] && break; sleep 0.1; done
  [ "$(node "$n" systemctl is-active ssh.service)" = active ] || fail "$n: sshd is not running"
done
lap "5 nodes booted, sshd up"

publish() {  # publish OUT NAME [ARGS...]: exit status in $rc, JSON in $WORK/NAME.json, progress in NAME.err
  rc=0
  "$KBUNDLE" publish --out "$1" --to ssh --topology "$WORK/topology.yaml" --identity "$WORK/id_ed25519" \
    --known-hosts "${KNOWN:-$WORK/known_hosts}" --installer "$INSTALLER" --apply --json --no-progress "${@:3}" \
    >"$WORK/$2.json" 2>"$WORK/$2.err" || rc=$?
}
# jq-less JSON checks: py FILE 'python expression on j' must be true.
py() {
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" ||
    { cat "$1" >&2; fail "$(basename "$1"): not true: $2"; }
}
logins() { node "$1" journalctl --no-pager -o cat -t sshd | grep -c "Accepted publickey" || true; }
serial() { node "$1" /usr/local/bin/kbundle-installer status --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("serial", "none"))'; }
show_failure() { for n in "$@"; do node "$n" systemctl --no-pager status etcd.service 2>&1 | tail -n 15 >&2 || true; done; }

# 0. A host key that is not the pinned one: refused at control-0, nothing uploaded anywhere.
ssh-keygen -q -t ed25519 -N '' -f "$WORK/impostor"
sed "s|^${ips[0]} .*|${ips[0]} $(cut -d' ' -f1,2 "$WORK/impostor.pub")|" "$WORK/known_hosts" >"$WORK/known_hosts.bad"
KNOWN=$WORK/known_hosts.bad publish "$WORK/gen1" refused
[ "$rc" -eq 1 ] || { cat "$WORK/refused.err" >&2; fail "a mismatched host key gave exit $rc, not 1"; }
grep -q "REFUSED: the host key" "$WORK/refused.err" || { cat "$WORK/refused.err" >&2; fail "no REFUSED host key message"; }
py "$WORK/refused.json" 'j["rollout"]["nodes"][0]["step"] == "probe" and all(n["result"] == "not-started" for n in j["rollout"]["nodes"][1:])'
for n in "${all[@]}"; do
  [ "$(logins "$n")" -eq 0 ] || fail "$n: a login happened although control-0's host key was refused"
  node "$n" test ! -e /var/lib/kbundle/incoming || fail "$n: something was uploaded after the refusal"
done
lap "0. mismatched host key refused, nothing sent"

# 1. First rollout: the control plane together, then both workers at once.
publish "$WORK/gen1" first --max-unavailable 2
[ "$rc" -eq 0 ] || { cat "$WORK/first.err" "$WORK/first.json" >&2; show_failure "${names[@]}"; fail "first rollout exit $rc"; }
grep -q "^rollout order: control-0, then control-1, then control-2, then \[worker-0 worker-1\]" "$WORK/first.err" ||
  { cat "$WORK/first.err" >&2; fail "the order was not said before starting"; }
py "$WORK/first.json" 'j["rollout"]["firstInstall"] and j["rollout"]["ok"]'
py "$WORK/first.json" 'j["rollout"]["order"] == [["control-0", "control-1", "control-2"], ["worker-0", "worker-1"]]'
py "$WORK/first.json" 'all(n["result"] == "applied" for n in j["rollout"]["nodes"]) and len(j["rollout"]["nodes"]) == 5'
for n in "${all[@]}"; do [ "$(serial "$n")" = 1 ] || fail "$n: serial $(serial "$n") after the first rollout, not 1"; done
for n in "${workers[@]}"; do
  for u in containerd kubelet kube-proxy; do [ "$(node "$n" systemctl is-active $u.service)" = active ] || fail "$n: $u not active"; done
done
nspawn_etcd_client "${names[0]}" "${ips[@]}"
nspawn_etcd_check
lap "1. first rollout: control plane together, workers by 2"

# 2. Generation 2 in order, one node at a time; then the same again: nothing to do anywhere.
publish "$WORK/gen2" second
[ "$rc" -eq 0 ] || { cat "$WORK/second.err" "$WORK/second.json" >&2; show_failure "${names[@]}"; fail "second rollout exit $rc"; }
py "$WORK/second.json" 'not j["rollout"]["firstInstall"] and j["rollout"]["order"] == [[n] for n in ["control-0", "control-1", "control-2", "worker-0", "worker-1"]]'
py "$WORK/second.json" 'all(n["result"] == "applied" for n in j["rollout"]["nodes"])'
offsets=$(python3 -c 'import json,sys; print(" ".join(n["node"] for n in sorted(json.load(open(sys.argv[1]))["rollout"]["nodes"], key=lambda n: n["startOffsetSeconds"])))' "$WORK/second.json")
[ "$offsets" = "${all[*]}" ] || fail "kbundle started the nodes in the order '$offsets'"
# The nodes' own record: when each committed serial 2 (its installed manifest's mtime, ns).
for n in "${all[@]}"; do echo "$(node "$n" stat -c %.9Y /var/lib/kbundle/current/manifest.json) $n"; done | sort -n >"$WORK/commits.txt"
committed=$(awk '{print $2}' "$WORK/commits.txt" | xargs)
[ "$committed" = "${all[*]}" ] || { cat "$WORK/commits.txt" >&2; fail "the nodes committed serial 2 in the order '$committed'"; }
for n in "${all[@]}"; do [ "$(serial "$n")" = 2 ] || fail "$n: serial $(serial "$n") after the second rollout"; done
sed 's/^/    /' "$WORK/commits.txt"
lap "2. gen 2 rolled out in order: $committed"
publish "$WORK/gen2" again
[ "$rc" -eq 0 ] || { cat "$WORK/again.err" >&2; fail "re-publishing gen 2 exit $rc"; }
py "$WORK/again.json" 'all(n["result"] == "unchanged" for n in j["rollout"]["nodes"])'
lap "2b. the same generation again: nothing to do on 5 nodes"

# 3. Generation 3: control-1's etcd cannot start. The rollout stops at control-1.
for n in control-0 control-2 "${workers[@]}"; do rebundle "$WORK/gen2" "$WORK/gen3" "$n"; done
node control-1 cat /etc/systemd/system/etcd.service >"$WORK/etcd.service.good"
sed 's|^ExecStart=\(.*\)etcd \\$|ExecStart=\1etcd --kbundle-e2e-no-such-flag \\|' "$WORK/etcd.service.good" >"$WORK/etcd.service.broken"
grep -q -- --kbundle-e2e-no-such-flag "$WORK/etcd.service.broken" || fail "could not break etcd.service"
rebundle "$WORK/gen2" "$WORK/gen3" control-1 --health-timeout 10 --replace "/etc/systemd/system/etcd.service=$WORK/etcd.service.broken"
declare -A logins_before digest_before
for n in control-2 "${workers[@]}"; do
  logins_before[$n]=$(logins "$n")
  # The journal does see the rollout's logins (probe, upload, apply, health), or "no new login" proves nothing.
  [ "${logins_before[$n]}" -ge 6 ] || fail "$n: only ${logins_before[$n]} sshd logins recorded after three rollouts"
  digest_before[$n]=$(node "$n" cat "/var/lib/kbundle/incoming/.$n.kbundle.sha256")
done
publish "$WORK/gen3" broken
[ "$rc" -eq 1 ] || { cat "$WORK/broken.err" "$WORK/broken.json" >&2; fail "the broken rollout gave exit $rc, not 1"; }
py "$WORK/broken.json" 'not j["rollout"]["ok"] and j["rollout"]["failure"].startswith("control-1: apply")'
py "$WORK/broken.json" '[n["result"] for n in j["rollout"]["nodes"]] == ["applied", "failed", "not-started", "not-started", "not-started"]'
py "$WORK/broken.json" 'j["rollout"]["nodes"][1]["exitCode"] == 4 and j["rollout"]["nodes"][1]["step"] == "apply"'
py "$WORK/broken.json" 'any("health etcd: FAILED" in l for l in j["rollout"]["nodes"][1]["lastLines"])'
py "$WORK/broken.json" '[t["node"] for t in j["targets"]] == ["control-0", "control-1"]'
grep -q "rollout stopped at control-1: apply: kbundle-installer apply exited 4" "$WORK/broken.err" ||
  { cat "$WORK/broken.err" >&2; fail "no one-line reason on stderr"; }
grep "^kbundle: error: " "$WORK/broken.err" | cut -c1-160 | sed 's/^/    /'
python3 -c 'import json,sys; [print("    %-10s %-12s %s" % (n["node"], n["result"], n.get("exitCode", ""))) for n in json.load(open(sys.argv[1]))["rollout"]["nodes"]]' "$WORK/broken.json"
[ "$(serial control-0)" = 3 ] || fail "control-0: serial $(serial control-0), not 3"
[ "$(serial control-1)" = 2 ] || fail "control-1: serial $(serial control-1) after its rollback, not 2"
for n in control-2 "${workers[@]}"; do
  [ "$(serial "$n")" = 2 ] || fail "$n: serial $(serial "$n"): a node after the failure was applied"
  [ "$(logins "$n")" = "${logins_before[$n]}" ] || fail "$n: contacted after the failure (sshd logins ${logins_before[$n]} -> $(logins "$n"))"
  [ "$(node "$n" cat "/var/lib/kbundle/incoming/.$n.kbundle.sha256")" = "${digest_before[$n]}" ] || fail "$n: its bundle was replaced"
done
cmp -s "$WORK/etcd.service.good" <(node control-1 cat /etc/systemd/system/etcd.service) || fail "control-1: etcd.service not rolled back"
nspawn_etcd_healthy || { show_failure "${names[@]}"; fail "the cluster is not healthy after the stopped rollout"; }
lap "3. gen 3 stopped at control-1 (exit 4, rolled back); 3 nodes untouched"

# 4. The fix (control-1's bundle made again, good) and the same command: the rollout carries on.
rm "$WORK/gen3/control-1.kbundle"
rebundle "$WORK/gen2" "$WORK/gen3" control-1
publish "$WORK/gen3" fixed
[ "$rc" -eq 0 ] || { cat "$WORK/fixed.err" "$WORK/fixed.json" >&2; show_failure "${names[@]}"; fail "the fixed rollout exit $rc"; }
py "$WORK/fixed.json" '[n["result"] for n in j["rollout"]["nodes"]] == ["unchanged", "applied", "applied", "applied", "applied"]'
for n in "${all[@]}"; do [ "$(serial "$n")" = 3 ] || fail "$n: serial $(serial "$n") after the fixed rollout, not 3"; done
nspawn_etcd_check
lap "4. fixed gen 3: control-0 nothing to do, the other 4 applied"

for n in "${all[@]}"; do nspawn_stop "$n"; done
lap "nodes stopped and removed"
lap_table
pass "rolling apply over SSH: first install together, then in order ($committed), a failing control-plane node stops the rollout with the rest untouched"
