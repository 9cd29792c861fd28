#!/usr/bin/env bash
# `kbundle plan` with the real binary (issue 15 §1, G31): offline, writes nothing, exit 0 when
# nothing would change, 2 when something would, 1 for a damaged state, 3 for an invalid topology;
# `gen` prints the same summary when it writes.
source "$(dirname "$0")/lib.bash"
need tar zstd python3
S=$WORK/state O=$WORK/out
# Every path under the state with its mode, size, mtime and content hash: plan must change none.
hash_dir() { [ -e "$1" ] || { echo absent; return; }; (cd "$1" && find . -printf '%p %m %s %T@\n' | sort && find . -type f -exec sha256sum {} + | sort) | sha256sum; }
# The same without the lock file, whose content (the last pid) any gen rewrites.
hash_state() { (cd "$1" && find . ! -name .lock -printf '%p %m %s\n' | sort && find . -type f ! -name .lock -exec sha256sum {} + | sort) | sha256sum; }
plan() { "$KBUNDLE" plan --no-binaries --state "$S" "$@"; }
gen() { "$KBUNDLE" gen --no-binaries --state "$S" --out "$O" "$@"; }
status_of() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(' '.join(n['name']+'='+n['status'] for n in d['nodes'] if n['status']!='unchanged') or 'none')" "$1"; }

# 1. No state yet: every node new, exit 2, nothing created (not even the directory).
expect 2 "0 changed, 6 new, 0 removed, 0 unchanged, 5 shared certificates (re)issued; the state will be created" plan --topology "$EXAMPLE"
grep -q "apply order: control-0, then control-1, then control-2, then worker-0, then worker-1, then worker-2$" "$WORK/out.log" || fail "order: $(cat "$WORK/out.log")"
[ ! -e "$S" ] || fail "plan created the state directory"
mkdir -m 0700 "$S"; before=$(hash_dir "$S")
expect 2 "6 new" plan --topology "$EXAMPLE"
[ "$(hash_dir "$S")" = "$before" ] && [ -z "$(ls -A "$S")" ] || fail "plan wrote into an empty state directory: $(ls -A "$S")"

# 2. gen writes, and says what changed.
expect 0 "kbundle: changes: cluster kthw: 0 changed, 6 new" gen --topology "$EXAMPLE"
[ "$(ls "$S/manifests")" = "$(printf '%s.json\n' control-0 control-1 control-2 worker-0 worker-1 worker-2)" ] || fail "manifests: $(ls "$S/manifests")"
[ "$(stat -c %a "$S/manifests")" = 700 ] && [ "$(stat -c %a "$S/manifests/worker-0.json")" = 600 ] || fail "manifest modes"
# Each is the signed manifest of the bundle, byte for byte (plus a newline).
for n in control-0 worker-2; do
  tar --zstd -xOf "$O/$n.kbundle" kbundle/manifest.json > "$WORK/m.json" || fail "cannot read $n's manifest"
  echo >> "$WORK/m.json"
  cmp -s "$WORK/m.json" "$S/manifests/$n.json" || fail "$S/manifests/$n.json is not $n.kbundle's manifest"
done

# 3. Nothing changed: plan exit 0 and writes nothing; gen says so in one line.
before=$(hash_dir "$S"); out_before=$(hash_dir "$O")
expect 0 "kbundle plan: cluster kthw: no changes (6 nodes as before)" plan --topology "$EXAMPLE"
[ "$(hash_dir "$S")" = "$before" ] && [ "$(hash_dir "$O")" = "$out_before" ] || fail "plan changed the state or out/"
"$KBUNDLE" gen --no-binaries --state "$S" --out "$O" --topology "$EXAMPLE" > "$WORK/gen.out" 2>&1 || fail "gen: $(cat "$WORK/gen.out")"
[ "$(wc -l < "$WORK/gen.out")" = 1 ] && grep -q "^kbundle: cluster kthw: no changes (6 nodes as before)" "$WORK/gen.out" || fail "unchanged gen said: $(cat "$WORK/gen.out")"

# 4. A SAN (a public IP on worker-1): exactly worker-1's kubelet cert, key and kubeconfig; kubelet restarts.
sed 's/^\(    privateIP: 10.0.1.21\)$/\1\n    publicIP: 3.3.3.3/' "$EXAMPLE" > "$WORK/san.yaml"
before=$(hash_dir "$S")
expect 2 "1 changed, 0 new, 0 removed, 5 unchanged" plan --topology "$WORK/san.yaml"
grep -q "node worker-1 (worker): serial 1 -> 2" "$WORK/out.log" || fail "serial line: $(cat "$WORK/out.log")"
grep -q "certificate kubelet reissued: SAN set changed" "$WORK/out.log" || fail "cert reason: $(cat "$WORK/out.log")"
grep -q "apply restarts: kubelet.service$" "$WORK/out.log" || fail "restart: $(cat "$WORK/out.log")"
grep -q "apply order: worker-1$" "$WORK/out.log" || fail "order: $(cat "$WORK/out.log")"
rc=0; plan --topology "$WORK/san.yaml" --json > "$WORK/san.json" || rc=$?
[ $rc = 2 ] || fail "--json exit $rc"
python3 - "$WORK/san.json" <<'PY' || fail "SAN plan JSON: $(cat "$WORK/san.json")"
import json, sys
d = json.load(open(sys.argv[1]))
changed = [n for n in d["nodes"] if n["status"] != "unchanged"]
assert [n["name"] for n in changed] == ["worker-1"], changed
n = changed[0]
assert (n["oldSerial"], n["newSerial"]) == (1, 2), n
assert sorted(f["path"] for f in n["files"]) == ["/var/lib/kubelet/kubeconfig", "/var/lib/kubelet/kubelet.crt", "/var/lib/kubelet/kubelet.key"], n["files"]
assert all(f["change"] == "changed" and len(f["oldSha256"]) == 64 and len(f["newSha256"]) == 64 for f in n["files"])
assert [c["name"] for c in n["certificates"]] == ["kubelet"] and "SAN" in n["certificates"][0]["reason"]
assert n["restart"] == ["kubelet.service"], n["restart"]
assert d["order"] == [["worker-1"]] and d["changes"] is True and d["refused"] is False
PY
[ "$(hash_dir "$S")" = "$before" ] || fail "plan (SAN) changed the state"
# Secrets by hash only: no private key body of the state appears in plan's output.
python3 - "$S" "$WORK/out.log" "$WORK/san.json" <<'PY' || fail "a private key from the state is in plan's output"
import json, os, re, sys
bodies = []
for root, _, files in os.walk(sys.argv[1]):
    for f in files:
        text = open(os.path.join(root, f), errors="replace").read().replace("\\n", "\n")
        bodies += re.findall(r"-----BEGIN [A-Z ]*PRIVATE KEY-----\n([A-Za-z0-9+/=\n]+)-----END", text)
assert len(bodies) > 10, len(bodies)
out = "".join(open(p).read() for p in sys.argv[2:])
for b in bodies:
    for line in b.split("\n"):
        assert len(line) < 20 or line not in out, line
assert "PRIVATE KEY" not in out
PY
# gen then does exactly that, prints the same summary, and the next plan is empty.
expect 0 "node worker-1 (worker): serial 1 -> 2" gen --topology "$WORK/san.yaml"
grep -q "kbundle: changes: cluster kthw: 1 changed" "$WORK/out.log" || fail "gen summary: $(cat "$WORK/out.log")"
expect 0 "no changes" plan --topology "$WORK/san.yaml"

# 5. A new worker: only it is new (the others' bundles do not change).
cat "$WORK/san.yaml" - > "$WORK/grow.yaml" <<'YAML'
  - name: worker-3
    role: worker
    privateIP: 10.0.1.23
    hostname: ip-10-0-1-23
YAML
rc=0; plan --topology "$WORK/grow.yaml" --json > "$WORK/grow.json" || rc=$?
[ $rc = 2 ] && [ "$(status_of "$WORK/grow.json")" = "worker-3=new" ] || fail "add a node: exit $rc, $(status_of "$WORK/grow.json")"

# 6. A setting in the API server's unit (hardening): the control plane changes, kube-apiserver restarts.
sed 's/^  encryption:$/  hardening:\n    alwaysPullImages: false\n  encryption:/' "$WORK/san.yaml" > "$WORK/unit.yaml"
grep -q alwaysPullImages "$WORK/unit.yaml" || fail "test setup: hardening edit"
rc=0; plan --topology "$WORK/unit.yaml" --json > "$WORK/unit.json" || rc=$?
[ $rc = 2 ] && [ "$(status_of "$WORK/unit.json")" = "control-0=changed control-1=changed control-2=changed" ] || fail "unit setting: exit $rc, $(status_of "$WORK/unit.json")"
python3 - "$WORK/unit.json" <<'PY' || fail "unit setting JSON: $(cat "$WORK/unit.json")"
import json, sys
d = json.load(open(sys.argv[1]))
for n in d["nodes"]:
    if n["status"] == "changed":
        assert [f["path"] for f in n["files"]] == ["/etc/systemd/system/kube-apiserver.service"], n["files"]
        assert n["restart"] == ["kube-apiserver.service"], n["restart"]
        assert n["certificates"] == []
assert d["order"] == [["control-0"], ["control-1"], ["control-2"]], d["order"]
PY

# 7. A node dropped: reported removed; --node plans only what it names.
python3 - "$WORK/san.yaml" "$WORK/shrink.yaml" <<'PY'
import sys
text = open(sys.argv[1]).read()
cut = text.index("  - name: worker-2")
open(sys.argv[2], "w").write(text[:cut])
PY
rc=0; plan --topology "$WORK/shrink.yaml" --json > "$WORK/shrink.json" || rc=$?
[ $rc = 2 ] && [ "$(status_of "$WORK/shrink.json")" = "worker-2=removed" ] || fail "drop a node: exit $rc, $(status_of "$WORK/shrink.json")"
expect 0 "no changes (1 node as before)" plan --topology "$WORK/shrink.yaml" --node worker-0
# gen --node removes nothing; gen without it drops the manifest; the next plan is empty.
expect 0 "no changes (1 node as before)" gen --topology "$WORK/shrink.yaml" --node worker-0
[ -e "$S/manifests/worker-2.json" ] || fail "gen --node worker-0 dropped worker-2's manifest"
expect 0 "node worker-2 (worker): removed" gen --topology "$WORK/shrink.yaml"
[ ! -e "$S/manifests/worker-2.json" ] || fail "gen kept the dropped node's manifest"
expect 0 "no changes (5 nodes as before)" plan --topology "$WORK/shrink.yaml"

# 8. Plan needs no out/.
rm -rf "$O"
expect 0 "no changes" plan --topology "$WORK/shrink.yaml"

# 9. A damaged state: manifests swapped, truncated, foreign, stray -> exit 1 naming the file, nothing written.
cp -a "$S" "$WORK/good"
damage() {  # damage NAME SETUP EXPECTED_FILE PATTERN
  rm -rf "$S"; cp -a "$WORK/good" "$S"; eval "$2"
  local before; before=$(hash_dir "$S")
  expect 1 "$3" plan --topology "$WORK/shrink.yaml"
  grep -q -- "$4" "$WORK/out.log" || fail "$1: $(cat "$WORK/out.log")"
  grep -q "exit 2" "$WORK/out.log" && fail "$1: said exit 2"
  [ "$(hash_dir "$S")" = "$before" ] || fail "$1: plan changed the state"
  before=$(hash_state "$S")
  expect 1 "$3" gen --topology "$WORK/shrink.yaml"
  [ "$(hash_state "$S")" = "$before" ] || fail "$1: a refused gen changed the state"
}
damage swapped "mv $S/manifests/worker-0.json $WORK/w0; mv $S/manifests/worker-1.json $S/manifests/worker-0.json; mv $WORK/w0 $S/manifests/worker-1.json" \
  "$S/manifests/worker-0.json" "is the manifest of node 'worker-1', not of 'worker-0'"
damage truncated "truncate -s 100 $S/manifests/control-1.json" "$S/manifests/control-1.json" "not a valid bundle manifest"
damage emptied ": > $S/manifests/control-2.json" "$S/manifests/control-2.json" "not a valid bundle manifest"
damage foreign "sed -i 's/\"cluster_name\":\"kthw\"/\"cluster_name\":\"kthx\"/' $S/manifests/worker-0.json" "$S/manifests/worker-0.json" "cluster 'kthx'"
damage stray "echo hi > $S/manifests/README" "$S/manifests/README" "only manifests/<node>.json"
damage directory "mkdir $S/manifests/worker-9.json" "$S/manifests/worker-9.json" "only manifests/<node>.json"
damage fifo "mkfifo $S/manifests/worker-9.json" "$S/manifests/worker-9.json" "only manifests/<node>.json"  # must not hang
damage symlink "ln -s /etc/hostname $S/manifests/worker-9.json" "$S/manifests/worker-9.json" "only manifests/<node>.json"
damage "manifests a symlink" "mv $S/manifests $S/m2; ln -s m2 $S/manifests" "$S/manifests" "is not a directory"
damage huge "truncate -s 17M $S/manifests/worker-0.json" "$S/manifests/worker-0.json" "larger than any manifest"
rm -rf "$S"; cp -a "$WORK/good" "$S"

# 10. Exit codes: never 2 but for changes.
echo "cluster: [" > "$WORK/bad.yaml"
expect 3 "nothing was written" plan --topology "$WORK/bad.yaml"
expect 1 "nosuch" plan --topology "$WORK/shrink.yaml" --node nosuch
expect 1 "" "$KBUNDLE" plan --topology "$WORK/shrink.yaml" --no-such-flag
expect 1 "" "$KBUNDLE" plan
expect 1 "kbundle fetch" "$KBUNDLE" plan --topology "$WORK/shrink.yaml" --state "$S" --cache "$WORK/nocache"
sed 's/^  name: kthw/  name: other/' "$WORK/shrink.yaml" > "$WORK/other.yaml"
expect 1 "belongs to cluster 'kthw'" plan --topology "$WORK/other.yaml"

# 11. gen --json carries the summary under "changes".
"$KBUNDLE" gen --no-binaries --state "$S" --out "$O" --topology "$WORK/san.yaml" --json > "$WORK/gen.json"
python3 -c "
import json,sys; d=json.load(open(sys.argv[1])); c=d['changes']
assert [n['name'] for n in c['nodes'] if n['status']!='unchanged'] == ['worker-2'] and c['changes'], c" "$WORK/gen.json" || fail "gen --json changes: $(cat "$WORK/gen.json")"
# 12. etcd membership and version skew (generator/etcd_membership.h, generator/version_skew.h).
python3 - "$WORK/san.yaml" "$WORK/cp4.yaml" "$WORK/cp5.yaml" <<'PY'
import sys
text = open(sys.argv[1]).read()
cp3 = "  - name: control-3\n    role: control-plane\n    privateIP: 10.0.1.13\n    hostname: ip-10-0-1-13\n"
at = text.index("  - name: worker-0")
open(sys.argv[2], "w").write(text[:at] + cp3 + text[at:])
# control-3 and control-4 at once: two membership changes in one generation.
cp4 = cp3.replace("control-3", "control-4").replace("10.0.1.13", "10.0.1.14").replace("10-0-1-13", "10-0-1-14")
open(sys.argv[3], "w").write(text[:at] + cp3 + cp4 + text[at:])
PY
before=$(hash_dir "$S")
expect 2 "^  add member control-3 (https://10.0.1.13:2380)" plan --topology "$WORK/cp4.yaml"
grep -q "node control-3 (control-plane): new" "$WORK/out.log" || fail "control-3 not new: $(cat "$WORK/out.log")"
grep -q "apply order: control-0, .*control-3$" "$WORK/out.log" || fail "order: $(cat "$WORK/out.log")"
expect 3 "REFUSED" plan --topology "$WORK/cp5.yaml"
grep -q "^  etcd: " "$WORK/out.log" || fail "etcd problem not listed: $(cat "$WORK/out.log")"
[ "$(hash_dir "$S")" = "$before" ] || fail "plan (etcd) changed the state"
S2=$WORK/state133
sed 's/^  kubernetesVersion: v1.32.3 /  kubernetesVersion: v1.33.3 /' "$EXAMPLE" > "$WORK/v133.yaml"
grep -q "v1.33.3" "$WORK/v133.yaml" || fail "test setup: version edit"
"$KBUNDLE" gen --no-binaries --state "$S2" --out "$WORK/o133" --topology "$WORK/v133.yaml" > /dev/null || fail "gen v1.33.3"
rc=0; "$KBUNDLE" plan --no-binaries --state "$S2" --topology "$EXAMPLE" --json > "$WORK/skew.json" || rc=$?
[ $rc = 3 ] || fail "a minor downgrade: exit $rc"
python3 -c "
import json,sys; d=json.load(open(sys.argv[1]))
assert d['refused'] and d['problems'] and all(p.startswith('version skew: ') for p in d['problems']), d['problems']" "$WORK/skew.json" ||
  fail "skew problems: $(cat "$WORK/skew.json")"

pass "plan: exit 0/2/1/3 as documented, writes nothing, gen prints the same summary"
