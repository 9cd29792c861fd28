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
source "$(dirname "$0")/aws_moto.bash"
run_moto
port=$MOTO_PORT
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

# apply_on NODE ROOT: the installer on a test root, asking moto's metadata service.
apply_on() {
  env KB_IMDS_ENDPOINT=127.0.0.1:$port "$INSTALLER" --no-systemd --root "$2" --node "$1" apply \
    --trust-key "$WORK/o/bundle-signing.pub" "$WORK/o/$1.kbundle"
}

# 1. The right instance: applied, and the test-only endpoint is announced.
new_root "$WORK/r0"
expect 0 'KB_IMDS_ENDPOINT, tests only' apply_on worker-0 "$WORK/r0"

# 2. Another instance: refused, naming both ids; the root unchanged.
new_root "$WORK/r1"
before=$(snap "$WORK/r1")
expect 5 'bundle is for EC2 instance i-0b0b (node worker-1), this is i-fake' apply_on worker-1 "$WORK/r1"
[ "$(snap "$WORK/r1")" = "$before" ] || fail "a refused bundle changed the root"

# 3. No metadata service: fail closed.
kill "$MOTO_PID"; wait "$MOTO_PID" 2>/dev/null || true
expect 5 "identity cannot be read" apply_on worker-0 "$WORK/r1"
[ "$(snap "$WORK/r1")" = "$before" ] || fail "a refused bundle changed the root"

# 4. Unbound: the metadata service (still down) is not asked.
new_root "$WORK/r2"
apply_on worker-2 "$WORK/r2" >"$WORK/a3.log" 2>&1 || { cat "$WORK/a3.log" >&2; fail "unbound worker-2 refused"; }
pass "bound to i-fake: applied; bound to i-0b0b: refused (exit 5); no IMDS: refused; unbound: applied"
