#!/usr/bin/env bash
# A bundle bound to an EC2 instance (topology nodes[].instanceId, written by `kbundle aws up`)
# installs only where the instance metadata service (IMDSv2: token, then instance-id) names that
# instance. The metadata service is moto_server's real IMDS emulation on loopback (its instance is
# always i-fake), reached through KB_IMDS_ENDPOINT (tests only; the installer says so):
#   1. worker-0 bound to i-fake: applied (exit 0);
#   2. worker-1 bound to i-0b0b: refused (exit 5) naming both ids, the root unchanged;
#   3. no metadata service at all: a bound bundle fails closed (exit 5), root unchanged;
#   4. an unbound bundle (worker-2) never asks the metadata service.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/installer_lib.bash"
command -v moto_server >/dev/null 2>&1 || skip "moto_server is not installed (pip install 'moto[server]')"
need curl python3

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" >"$WORK/moto.log" 2>&1 &
moto_pid=$!
cleanup "kill $moto_pid 2>/dev/null; wait $moto_pid 2>/dev/null"
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/moto-api/" && break
  kill -0 "$moto_pid" 2>/dev/null || { cat "$WORK/moto.log" >&2; fail "moto_server exited"; }
  sleep 0.1
done
id=$(curl -sS -H 'Host: 169.254.169.254' "http://127.0.0.1:$port/latest/meta-data/instance-id") || fail "moto IMDS"
[ "$id" = i-fake ] || fail "moto's IMDS names instance '$id', this test expects i-fake"

python3 - "$EXAMPLE" "$WORK/topology.yaml" <<'PY'
import sys
text = open(sys.argv[1]).read()
for name, iid in (("worker-0", "i-fake"), ("worker-1", "i-0b0b")):
    marker = "  - name: " + name + "\n"
    at = text.index(marker) + len(marker)
    text = text[:at] + "    instanceId: " + iid + "\n" + text[at:]
open(sys.argv[2], "w").write(text)
PY
"$KBUNDLE" gen --no-binaries --topology "$WORK/topology.yaml" --state "$WORK/state" --out "$WORK/o" >"$WORK/gen.log" 2>&1 ||
  { cat "$WORK/gen.log" >&2; fail "gen"; }
"$KBUNDLE" inspect --pubkey "$WORK/o/bundle-signing.pub" "$WORK/o/worker-0.kbundle" | grep >/dev/null -e 'i-fake' ||
  fail "inspect does not show worker-0's instance id"

# 1. The right instance.
new_root "$WORK/r0"
KB_IMDS_ENDPOINT=127.0.0.1:$port inst --root "$WORK/r0" --node worker-0 apply --trust-key "$WORK/o/bundle-signing.pub" \
  "$WORK/o/worker-0.kbundle" >"$WORK/a0.log" 2>&1 || { cat "$WORK/a0.log" >&2; fail "worker-0 on i-fake refused"; }
grep >/dev/null -e 'KB_IMDS_ENDPOINT, tests only' "$WORK/a0.log" || fail "the endpoint override was not announced"

# 2. Another instance.
new_root "$WORK/r1"
before=$(snap "$WORK/r1")
set +e
KB_IMDS_ENDPOINT=127.0.0.1:$port inst --root "$WORK/r1" --node worker-1 apply --trust-key "$WORK/o/bundle-signing.pub" \
  "$WORK/o/worker-1.kbundle" >"$WORK/a1.log" 2>&1
rc=$?
set -e
[ $rc -eq 5 ] || { cat "$WORK/a1.log" >&2; fail "worker-1 bound to i-0b0b applied on i-fake: exit $rc, want 5"; }
grep >/dev/null -e 'bundle is for EC2 instance i-0b0b (node worker-1), this is i-fake' "$WORK/a1.log" ||
  { cat "$WORK/a1.log" >&2; fail "refusal does not name both instance ids"; }
[ "$(snap "$WORK/r1")" = "$before" ] || fail "a refused bundle changed the root"

# 3. No metadata service: fail closed.
kill "$moto_pid"; wait "$moto_pid" 2>/dev/null || true
set +e
KB_IMDS_ENDPOINT=127.0.0.1:$port inst --root "$WORK/r1" --node worker-0 apply --trust-key "$WORK/o/bundle-signing.pub" \
  "$WORK/o/worker-0.kbundle" >"$WORK/a2.log" 2>&1
rc=$?
set -e
[ $rc -eq 5 ] || { cat "$WORK/a2.log" >&2; fail "bound bundle without a metadata service: exit $rc, want 5"; }
grep >/dev/null -e "identity cannot be read" "$WORK/a2.log" || { cat "$WORK/a2.log" >&2; fail "no reason given"; }
[ "$(snap "$WORK/r1")" = "$before" ] || fail "a refused bundle changed the root"

# 4. Unbound: the metadata service (still down) is not asked.
new_root "$WORK/r2"
KB_IMDS_ENDPOINT=127.0.0.1:$port inst --root "$WORK/r2" --node worker-2 apply --trust-key "$WORK/o/bundle-signing.pub" \
  "$WORK/o/worker-2.kbundle" >"$WORK/a3.log" 2>&1 || { cat "$WORK/a3.log" >&2; fail "unbound worker-2 refused"; }
pass "bound to i-fake: applied; bound to i-0b0b: refused (exit 5); no IMDS: refused; unbound: applied"
