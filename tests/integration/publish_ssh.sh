#!/usr/bin/env bash
# kbundle publish over SSH to a loopback OpenSSH server started here with its own config, host key
# and authorized_keys: an unknown host refused, --accept-new adding it to known_hosts (which OpenSSH's
# own client then accepts), every node's files uploaded 0600 into a 0700 directory and verifying with
# kbundle inspect, --host-fingerprint accepted when right and refused when wrong, and a changed host key
# refused with nothing written.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/publish_lib.bash"
need ssh-keygen ssh python3
SSHD=$(command -v sshd || echo /usr/sbin/sshd)
[ -x "$SSHD" ] || skip "sshd is not installed (apt-get install openssh-server)"
[ "$(id -u)" = 0 ] || skip "needs root: an sshd with its own config logs users in only as root"
curl -V | grep >/dev/null '^Protocols:.* sftp' || skip "this libcurl has no sftp (libssh2) support"
export HOME=$WORK/home
mkdir -p "$HOME" "$WORK/sshd"

# The server: loopback only (127.0.0.1-6, one per node of the topology), own host key and keys.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ssh-keygen -q -t ed25519 -N '' -C kb-test-host -f "$WORK/sshd/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -C kb-test-client -f "$WORK/id_ed25519"
cp "$WORK/id_ed25519.pub" "$WORK/sshd/authorized_keys"
{
  echo "Port $port"
  for i in 1 2 3 4 5 6; do echo "ListenAddress 127.0.0.$i"; done
  cat <<CFG
HostKey $WORK/sshd/host_ed25519
AuthorizedKeysFile $WORK/sshd/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
PidFile $WORK/sshd/sshd.pid
LogLevel VERBOSE
CFG
} >"$WORK/sshd/sshd_config"
[ -d /run/sshd ] || mkdir -p -m 0755 /run/sshd   # sshd's privilege-separation directory
"$SSHD" -t -f "$WORK/sshd/sshd_config" || fail "sshd rejects the test config"
"$SSHD" -D -e -f "$WORK/sshd/sshd_config" >"$WORK/sshd.log" 2>&1 &
SSHD_PID=$!
cleanup "kill $SSHD_PID 2>/dev/null; wait $SSHD_PID 2>/dev/null"
for _ in $(seq 1 50); do
  python3 -c "import socket,sys; socket.create_connection(('127.0.0.6', $port), 1)" 2>/dev/null && break
  kill -0 "$SSHD_PID" 2>/dev/null || { cat "$WORK/sshd.log" >&2; fail "sshd exited"; }
  sleep 0.1
done
HOST_FP=$(ssh-keygen -lf "$WORK/sshd/host_ed25519.pub" | cut -d' ' -f2)

gen_bundles
awk '/^ *privateIP:/ {n++; print; sub(/privateIP:.*/, "publicIP: 127.0.0." n); print; next} {print}' "$EXAMPLE" >"$WORK/topology.yaml"
"$KBUNDLE" validate --topology "$WORK/topology.yaml" >/dev/null || fail "test topology invalid"
KH=$WORK/known_hosts
P0=("$KBUNDLE" publish --out "$WORK/out" --installer "$INSTALLER" --identity "$WORK/id_ed25519")
P=("${P0[@]}" --known-hosts "$KH")
[ -x "$INSTALLER" ] || fail "kbundle-installer not built at $INSTALLER"

# 0. What a node would refuse never leaves: a damaged bundle, a renamed one, no signing key, an
# unknown --node; each is named with its fix, exit 1, before any connection is made.
B=("$KBUNDLE" publish --installer "$INSTALLER" --identity "$WORK/id_ed25519" --known-hosts "$KH" --to "scp://root@127.0.0.1:$port$WORK/r0")
cp -r "$WORK/out" "$WORK/bad"
printf 'X' | dd of="$WORK/bad/worker-1.kbundle" bs=1 seek=600 conv=notrunc status=none
expect 1 "worker-1.kbundle: does not verify with .*bundle-signing.pub" "${B[@]}" --out "$WORK/bad"
cp "$WORK/out/worker-1.kbundle" "$WORK/bad/worker-1.kbundle"
mv "$WORK/bad/worker-2.kbundle" "$WORK/bad/worker-9.kbundle"
expect 1 "worker-9.kbundle: the bundle is for node 'worker-2' (hint: do not rename bundles)" "${B[@]}" --out "$WORK/bad"
expect 1 "\-\-node nope: no nope.kbundle in" "${B[@]}" --out "$WORK/out" --node nope
rm "$WORK/bad/bundle-signing.pub"
expect 1 "bundle-signing.pub: not found (hint: --out is the directory" "${B[@]}" --out "$WORK/bad"
[ ! -e "$WORK/r0" ] || fail "files were sent although publish refused"

# 1. An unknown host is refused, and nothing is written there.
expect 1 "unknown host: its key (ssh-ed25519 $HOST_FP) is not in $KH" \
  "${P[@]}" --to "scp://root@127.0.0.1:$port$WORK/r1"
[ ! -e "$WORK/r1" ] || fail "files written to an unknown host"

# 2. --to ssh --accept-new: every node (127.0.0.1-6) gets its bundle, the key and the installer.
start=$(date +%s.%N)
"${P[@]}" --to ssh --topology "$WORK/topology.yaml" --ssh-port "$port" --remote-dir "$WORK/r2" --accept-new --json \
  >"$WORK/p2.json" 2>"$WORK/p2.err" || { cat "$WORK/p2.err" "$WORK/sshd.log" >&2; fail "publish --to ssh failed"; }
end=$(date +%s.%N)
[ "$(grep -c "^\[127.0.0.[1-6]\]:$port ssh-ed25519 " "$KH")" = 6 ] || fail "known_hosts: $(cat "$KH")"
ssh -o BatchMode=yes -o UserKnownHostsFile="$KH" -o StrictHostKeyChecking=yes -i "$WORK/id_ed25519" -p "$port" \
  root@127.0.0.3 true || fail "OpenSSH's client does not accept the known_hosts lines kbundle wrote"
[ "$(stat -c %a "$WORK/r2")" = 700 ] || fail "remote dir mode $(stat -c %a "$WORK/r2")"
for f in "$WORK"/out/*.kbundle "$WORK/out/bundle-signing.pub" "$INSTALLER"; do
  n=$(basename "$f")
  cmp "$f" "$WORK/r2/$n" || fail "$n: uploaded bytes differ"
  [ "$(stat -c %a "$WORK/r2/$n")" = 600 ] || fail "$n: mode $(stat -c %a "$WORK/r2/$n"), expected 600"
done
ls -a "$WORK/r2" | grep >/dev/null '\.part$' && fail "a temporary .part file was left"
for f in "$WORK"/r2/*.kbundle; do
  "$KBUNDLE" inspect --pubkey "$WORK/r2/bundle-signing.pub" "$f" >/dev/null || fail "$f does not verify"
done
J=$(cat "$WORK/p2.json")
[ "$(jget "$J" 'len(j["targets"])')" = 6 ] || fail "expected 6 targets: $J"
jget "$J" 'j["targets"][4]["commands"][0]["ssh"]' | grep >/dev/null "^ssh -p $port root@127.0.0.5 .*kbundle-installer apply --trust-fingerprint sha256:" ||
  fail "no apply command for worker-1"

# 2b. Only what changed is sent again: a second run sends nothing; a damaged remote bundle (other size)
# and one whose digest file is gone are sent again, and end byte-identical.
"${P[@]}" --to ssh --topology "$WORK/topology.yaml" --ssh-port "$port" --remote-dir "$WORK/r2" --json >"$WORK/p2b.json" 2>"$WORK/p2b.err" ||
  { cat "$WORK/p2b.err" >&2; fail "second publish --to ssh failed"; }
J=$(cat "$WORK/p2b.json")
[ "$(jget "$J" 'sum(f["status"] == "unchanged" for t in j["targets"] for f in t["files"])')" = 18 ] ||
  fail "second run re-sent files: $J"
head -c 1000 "$WORK/out/worker-1.kbundle" >"$WORK/r2/worker-1.kbundle"
rm "$WORK/r2/.control-2.kbundle.sha256"
"${P[@]}" --to ssh --topology "$WORK/topology.yaml" --ssh-port "$port" --remote-dir "$WORK/r2" --json >"$WORK/p2c.json" 2>"$WORK/p2c.err" ||
  { cat "$WORK/p2c.err" >&2; fail "third publish --to ssh failed"; }
J=$(cat "$WORK/p2c.json")
[ "$(jget "$J" 'sorted(f["name"] for t in j["targets"] for f in t["files"] if f["status"] == "uploaded")')" = "['control-2.kbundle', 'worker-1.kbundle']" ] ||
  fail "expected exactly control-2 and worker-1 re-sent: $J"
cmp "$WORK/out/worker-1.kbundle" "$WORK/r2/worker-1.kbundle" || fail "worker-1 not repaired"

# 3. Known now: a plain run (no --accept-new) works; a changed host key is refused, nothing written.
expect 0 "uploaded   root@\[127.0.0.1\]:$port:$WORK/r3/control-0.kbundle" "${P[@]}" --to "scp://root@127.0.0.1:$port$WORK/r3" --node control-0
ssh-keygen -q -t ed25519 -N '' -f "$WORK/other_host"
cp "$KH" "$WORK/known_hosts.good"
sed -i "s#^\[127.0.0.1\]:$port .*#[127.0.0.1]:$port $(cut -d' ' -f1,2 "$WORK/other_host.pub")#" "$KH"
expect 1 "REFUSED: the host key (ssh-ed25519 $HOST_FP) does not match $KH" \
  "${P[@]}" --to "scp://root@127.0.0.1:$port$WORK/r4" --accept-new
[ ! -e "$WORK/r4" ] || fail "files written after a host-key mismatch"
cmp -s "$KH" "$WORK/known_hosts.good" && fail "known_hosts was 'repaired'"

# 4. --host-fingerprint: right is accepted (known_hosts not needed), wrong is refused.
expect 0 "uploaded" "${P0[@]}" --known-hosts /nonexistent --to "scp://root@127.0.0.1:$port$WORK/r5" --host-fingerprint "$HOST_FP"
"$KBUNDLE" inspect --pubkey "$WORK/r5/bundle-signing.pub" "$WORK/r5/worker-2.kbundle" >/dev/null || fail "r5 bundle does not verify"
OTHER_FP=$(ssh-keygen -lf "$WORK/other_host.pub" | cut -d' ' -f2)
expect 1 "REFUSED: the host key is not $OTHER_FP" \
  "${P[@]}" --to "scp://root@127.0.0.1:$port$WORK/r6" --host-fingerprint "$OTHER_FP"
[ ! -e "$WORK/r6" ] || fail "files written to a host with the wrong fingerprint"
expect 2 "expected SHA256:<base64>" "${P[@]}" --to "scp://root@127.0.0.1:$port$WORK/r7" --host-fingerprint abc
expect 1 "login as nobody-here" "${P[@]}" --to "scp://nobody-here@127.0.0.1:$port$WORK/r8" --host-fingerprint "$HOST_FP"

# 5. --apply: a rolling apply (control-0, then worker-0) over SSH: the real installer, into a scratch
# root, no systemd (so the health gate, given the same flags, says it skips); rollout_ssh.sh has the real one.
A=("${P[@]}" --to ssh --topology "$WORK/topology.yaml" --ssh-port "$port" --remote-dir "$WORK/r9" --node worker-0 --node control-0
   --remote-installer "$WORK/nodebin/kbundle-installer" --apply)
cp "$WORK/known_hosts.good" "$KH"
mkdir -p "$WORK/root-worker-0" "$WORK/root-control-0"
"${A[@]}" --apply-flags "--root $WORK/root-{node} --no-systemd --node {node}" >"$WORK/apply.out" 2>&1 ||
  { cat "$WORK/apply.out" >&2; fail "publish --apply failed"; }
grep -q "^rollout order: control-0, then worker-0$" "$WORK/apply.out" || { cat "$WORK/apply.out" >&2; fail "no rollout order"; }
grep -q "^rollout: 2 of 2 nodes done$" "$WORK/apply.out" || { cat "$WORK/apply.out" >&2; fail "not applied on 2 nodes"; }
for n in worker-0 control-0; do
  "$WORK/nodebin/kbundle-installer" status --root "$WORK/root-$n" --no-systemd --json >"$WORK/status.json" 2>&1 ||
    { cat "$WORK/status.json" >&2; fail "$n: installer status failed"; }
  grep -q '"serial": *1' "$WORK/status.json" || fail "$n: not installed at serial 1: $(cat "$WORK/status.json")"
  grep -q "\"fingerprint\":\"$(cat "$WORK/out/bundle-signing.sha256")\"" "$WORK/root-$n/etc/kbundle/trust.json" || fail "$n: another key was pinned"
done
# A failing installer stops publish with its exit status and output; worker-0 is not started.
expect 1 "rollout stopped at control-0: apply: kbundle-installer apply exited 2" "${A[@]}" --apply-flags "--no-such-flag"
grep -q "unknown flag --no-such-flag" "$WORK/out.log" || { cat "$WORK/out.log" >&2; fail "the installer's last lines are not shown"; }
grep -q "^  worker-0 .*not started" "$WORK/out.log" || { cat "$WORK/out.log" >&2; fail "worker-0 not reported as not started"; }
expect 2 "--max-unavailable is for a rolling apply" "${P[@]}" --to "scp://root@127.0.0.1:$port$WORK/r10" --max-unavailable 2

printf 'publish_ssh: 6 nodes x 3 files (%s distinct bytes; the installer goes to every node) in %s s\n' "$(cat "$WORK"/out/*.kbundle "$INSTALLER" "$WORK/out/bundle-signing.pub" | wc -c)" \
  "$(python3 -c "print(f'{$end - $start:.2f}')")"
pass "upload over SSH, 0600 files, host keys checked (unknown, changed, fingerprint), bundles verify"
