#!/usr/bin/env bash
# Upgrades through the loopback mirror (G35): any patch release is fetched from the catalog's
# templates, every Kubernetes file checked against the .sha256 published beside it and recorded
# in its lock; one state goes v1.32.3 -> v1.32.4 -> v1.33.5 with binaries from the cache only;
# skew problems (a skipped minor, a downgrade, a worker before the control plane) are refused
# with exit 3 and nothing written; a file that does not match its .sha256 is refused; an offline
# kit of v1.32.4 is imported and used with no network.
# To extend (e.g. the rollout order): each step leaves its bundles in $OUT and calls on_upgraded.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fetch_lib.bash"
need tar zstd
V1=v1.32.3 V2=v1.32.4 V3=v1.33.5   # v1.32.4 and v1.33.5 were never in a catalog file: templates only
C=$WORK/cache STATE=$WORK/state OUT=$WORK/out

# The mirror holds three releases (and v1.32.6, whose kube-proxy is tampered with below).
python3 "$KB_SOURCE_DIR/tests/integration/fetch_mirror.py" "$KB_SOURCE_DIR/binaries/catalog/v1.32.json" "$WORK/mirror" $V1 $V2 v1.32.6 &&
  python3 "$KB_SOURCE_DIR/tests/integration/fetch_mirror.py" "$KB_SOURCE_DIR/binaries/catalog/v1.33.json" "$WORK/mirror" $V3 ||
  fail "cannot build the test mirror"
start_server "$WORK/mirror"

lock_of() { python3 -c "import json,sys; lock=json.load(open(sys.argv[1])); $2" "$C/lock-$1.json"; }
for v in $V1 $V2 $V3; do
  "$KBUNDLE" fetch --version $v --mirror "$MIRROR" --cache "$C" >"$WORK/fetch.out" 2>"$WORK/fetch.err" ||
    { cat "$WORK/fetch.err" >&2; fail "fetch $v"; }
  grep -q "Kubernetes $v: 16 binaries and 2 images verified" "$WORK/fetch.out" || fail "fetch $v: $(cat "$WORK/fetch.out")"
  # The lock names each Kubernetes file's URL, the .sha256 beside it and the hash that file published.
  lock_of $v "
import os
kube = [e for e in lock['binaries'] if e['url'].startswith('https://dl.k8s.io/')]
assert len(kube) == 6, kube
for e in kube:
    assert e['url'].startswith('https://dl.k8s.io/release/$v/bin/linux/amd64/'), e
    assert e['checksumUrl'] == e['url'] + '.sha256', e
    published = open(os.path.join('$WORK/mirror', e['checksumUrl'].split('://', 1)[1])).read().strip()
    assert e['artifactSha256'] == published == e['sha256'], e
assert all(e['checksumUrl'] for e in lock['binaries'] + lock['images'])
" || fail "lock-$v.json: URLs or published hashes"
done
grep -q "^GET /dl.k8s.io/release/$V3/bin/linux/amd64/kube-apiserver.sha256 " "$SERVER_LOG" || fail "no per-file .sha256 fetched for $V3"

# Hostile releases, each refused with nothing recorded: a file that does not match its .sha256,
# a .sha256 that is not a hash, a release the mirror does not have, a version that is not vX.Y.Z.
printf 'tampered\n' >>"$WORK/mirror/dl.k8s.io/release/v1.32.6/bin/linux/amd64/kube-proxy"
expect 1 "kube-proxy: checksum mismatch: .*kube-proxy.sha256 publishes sha256" \
  "$KBUNDLE" fetch --version v1.32.6 --mirror "$MIRROR" --cache "$C"
[ ! -e "$C/lock-v1.32.6.json" ] || fail "a tampered release got a lock"
echo "not-a-hash" >"$WORK/mirror/dl.k8s.io/release/v1.32.6/bin/linux/amd64/kube-proxy.sha256"
expect 1 "is not a sha256" "$KBUNDLE" fetch --version v1.32.6 --mirror "$MIRROR" --cache "$C"
expect 1 "v1.32.77/bin/linux/amd64/.*published release" "$KBUNDLE" fetch --version v1.32.77 --mirror "$MIRROR" --cache "$C"
for bad in v1.34.0 v1.32 1.32.4 v1.32.04 v1.32.4-rc.1 "v1.32.4/../../x"; do
  expect 1 "Kubernetes" "$KBUNDLE" fetch --version "$bad" --mirror "$MIRROR" --cache "$C"
done
[ ! -e "$C/lock-v1.32.6.json" ] && [ -z "$(ls "$C" | grep -v '^lock-v1.3[23].[345].json$\|^blobs$\|^partial$' || true)" ] ||
  fail "refused fetches left something: $(ls "$C")"

# The offline kit of v1.32.4 (written now; imported below with no network).
"$KBUNDLE" fetch --version $V2 --mirror "$MIRROR" --cache "$C" --export "$WORK/kit-$V2.tar" >/dev/null 2>&1 || fail "export $V2"
stop_server   # from here on, no network

topology_at() { sed "s/^  kubernetesVersion: .*/  kubernetesVersion: $1/" "$EXAMPLE" >"$WORK/topology.yaml"; }
# (state/.lock is the flock file: it holds the last holder's pid, not state.)
snapshot() { (cd "$WORK" && find state out -type f ! -name .lock -exec sha256sum {} + 2>/dev/null | sort) >"$WORK/snap.$1"; }
manifest_py() { "$KBUNDLE" inspect --json "$OUT/$1.kbundle" | python3 -c "import json,sys; m=json.load(sys.stdin); $2"; }
# plan_order [gen args]: before a step, `kbundle plan` exits 2 and orders the changed nodes as the
# skew policy wants them applied: each control-plane node alone in topology order, then the workers
# in batches of --max-unavailable (2 here); every changed node appears once.
plan_order() {
  local rc=0
  "$KBUNDLE" plan --json --max-unavailable 2 --topology "$WORK/topology.yaml" --state "$STATE" --cache "$C" "$@" \
    >"$WORK/plan.json" 2>"$WORK/plan.err" || rc=$?
  [ "$rc" = 2 ] || { cat "$WORK/plan.err" >&2; fail "plan before the upgrade ($*): exit $rc, expected 2"; }
  python3 - "$WORK/plan.json" <<'PY' || fail "plan's apply order breaks the skew policy: $(cat "$WORK/plan.order")"
import json, sys
p = json.load(open(sys.argv[1]))
order = p["order"]
open(sys.argv[1].replace("plan.json", "plan.order"), "w").write(json.dumps(order))
role = {n["name"]: n["role"] for n in p["nodes"]}
changed = [n["name"] for n in p["nodes"] if n["status"] in ("new", "changed")]
flat = [n for batch in order for n in batch]
assert sorted(flat) == sorted(changed) and len(flat) == len(set(flat)), (flat, changed)
cp = [b for b in order if role[b[0]] != "worker"]
assert all(len(b) == 1 for b in cp), order                       # control plane one at a time
assert order[:len(cp)] == cp, order                               # ... and before every worker
assert [b[0] for b in cp] == [n for n in changed if role[n] != "worker"], order  # in topology order
assert all(len(b) <= 2 and all(role[n] == "worker" for n in b) for b in order[len(cp):]), order
PY
}
# on_upgraded VERSION [gen args]: called after each successful step with the bundles in $OUT: a plan
# right after the gen has nothing left to do.
on_upgraded() {
  "$KBUNDLE" plan --topology "$WORK/topology.yaml" --state "$STATE" --cache "$C" "${@:2}" >"$WORK/plan.after" 2>&1 ||
    { cat "$WORK/plan.after" >&2; fail "plan right after gen $*: not exit 0"; }
}
# upgrade_to VERSION [gen args]: gen with binaries from the cache into $STATE and $OUT.
upgrade_to() {
  topology_at "$1"
  [ ! -e "$STATE/state.json" ] || plan_order "${@:2}"
  "$KBUNDLE" gen --topology "$WORK/topology.yaml" --state "$STATE" --out "$OUT" --cache "$C" "${@:2}" >"$WORK/gen.log" 2>&1 ||
    { cat "$WORK/gen.log" >&2; fail "gen $1 ${*:2}"; }
  on_upgraded "$@"
}
# refused VERSION PATTERN [gen args]: gen exits 3 naming PATTERN, and the state and output are unchanged.
refused() {
  topology_at "$1"
  snapshot before
  expect 3 "$2" "$KBUNDLE" gen --topology "$WORK/topology.yaml" --state "$STATE" --out "$OUT" --cache "$C" "${@:3}"
  grep -q "nothing was written" "$WORK/out.log" || fail "gen $1: the refusal does not say nothing was written"
  snapshot after
  cmp -s "$WORK/snap.before" "$WORK/snap.after" || fail "refused gen $1 changed the state or the output"
}
apiserver_sha() { manifest_py control-0 "print([e['sha256'] for e in m['entries'] if e['path'] == '/usr/local/bin/kube-apiserver'][0])"; }
check_versions() {  # every bundle says $1; its Kubernetes files came from the $1 URLs
  for node in control-0 control-1 control-2 worker-0 worker-1 worker-2; do
    manifest_py $node "
assert m['kubernetes_version'] == '$1', m['kubernetes_version']
urls = [e['source']['url'] for e in m['entries'] if 'source' in e and 'dl.k8s.io' in e['source']['url']]
assert urls and all('/release/$1/' in u for u in urls), urls
" || fail "$node: not a $1 bundle"
  done
}

# validate (no state) accepts any patch of a supported minor and refuses anything else, naming them.
for v in v1.32.4 v1.32.99 v1.33.0; do
  topology_at $v
  "$KBUNDLE" validate --topology "$WORK/topology.yaml" >/dev/null || fail "validate $v"
done
for bad in v1.31.9 v1.34.0 v1.32.04 v1.32.4-rc.1 "v1.32.4\/..\/x" 1.32.4 v1.32; do
  topology_at "$bad"
  expect 3 "cluster.kubernetesVersion: unsupported Kubernetes version" "$KBUNDLE" validate --topology "$WORK/topology.yaml"
done

# A lock that holds another release than its name says: refused, naming the fetch command.
mkdir "$WORK/swapped" && cp -r "$C/blobs" "$WORK/swapped/" && cp "$C/lock-$V2.json" "$WORK/swapped/lock-$V1.json"
topology_at $V1
expect 1 "holds Kubernetes $V2, not $V1: run .kbundle fetch --version $V1" \
  "$KBUNDLE" gen --topology "$WORK/topology.yaml" --state "$WORK/swapped-state" --out "$WORK/swapped-out" --cache "$WORK/swapped"
[ ! -e "$WORK/swapped-state" ] || fail "a gen with a swapped lock wrote a state"

# A version never fetched: refused, naming the command; --no-binaries needs no cache.
topology_at v1.32.7
expect 1 "kbundle fetch --version v1.32.7 --cache $C" \
  "$KBUNDLE" gen --topology "$WORK/topology.yaml" --state "$STATE" --out "$OUT" --cache "$C"
[ ! -e "$STATE" ] && [ ! -e "$OUT" ] || fail "a gen without the release's lock wrote something"
"$KBUNDLE" gen --no-binaries --topology "$WORK/topology.yaml" --state "$WORK/nobin" --out "$WORK/nobin-out" >/dev/null ||
  fail "--no-binaries at v1.32.7"

upgrade_to $V1
check_versions $V1
sha1=$(apiserver_sha)
upgrade_to $V2
check_versions $V2
sha2=$(apiserver_sha)
[ "$sha1" != "$sha2" ] || fail "kube-apiserver did not change from $V1 to $V2"
[ "$sha2" = "$(lock_of $V2 "print([e['sha256'] for e in lock['binaries'] if e['component'] == 'kube-apiserver'][0])")" ] ||
  fail "the $V2 bundle's kube-apiserver is not the one its lock verified"

# The next minor, workers first: refused (kubelet newer than the apiservers), nothing written.
refused $V3 "node worker-0: kubelet and kube-proxy $V3 would be newer than kube-apiserver $V2 on control-0" --node worker-0
# Control plane first, one node at a time, then the workers.
upgrade_to $V3 --node control-0
refused $V3 "would be newer than kube-apiserver $V2 on control-1" --node worker-1
upgrade_to $V3 --node control-1 --node control-2
upgrade_to $V3
check_versions $V3
sha3=$(apiserver_sha)
[ "$sha3" != "$sha2" ] || fail "kube-apiserver did not change from $V2 to $V3"

# A downgrade of the minor: refused.
refused $V2 "node control-0: Kubernetes $V3 -> $V2 downgrades the minor version"

# A skipped minor: the nodes run v1.31.9 (say, a cluster built by an older kbundle); going to
# v1.33 skips v1.32. The recorded manifests are edited to say so, like a real record would.
[ -d "$STATE/manifests" ] || fail "gen kept no previous manifests in $STATE/manifests"
python3 - "$STATE/manifests" <<'EOF' || fail "cannot edit the recorded manifests"
import os, sys
for f in os.listdir(sys.argv[1]):
    p = os.path.join(sys.argv[1], f)
    s = open(p).read()
    open(p, "w").write(s.replace('"kubernetes_version":"v1.33.5"', '"kubernetes_version":"v1.31.9"'))
EOF
refused $V3 "node control-0: Kubernetes v1.31.9 -> $V3 skips a minor version; upgrade one minor at a time: first to a v1.32.x"

# A kit relabelled to another release is refused before anything reaches the cache: its lock's
# URLs moved to v1.32.3 paths, its catalog entry too, or both (the compiled-in v1.32.4 entry disagrees).
mkdir "$WORK/kitdir" && tar -xf "$WORK/kit-$V2.tar" -C "$WORK/kitdir"
for what in lock catalog both; do
  rm -rf "$WORK/bad-kit" && cp -r "$WORK/kitdir" "$WORK/bad-kit"
  [ $what = catalog ] || sed -i "s|/release/$V2/|/release/$V1/|g" "$WORK/bad-kit/lock-$V2.json"
  [ $what = lock ] || sed -i "s|/release/$V2/|/release/$V1/|g" "$WORK/bad-kit/catalog-$V2.json"
  expect 1 "does not match the release catalog" "$KBUNDLE" fetch --import "$WORK/bad-kit" --cache "$WORK/bad-cache"
  [ ! -e "$WORK/bad-cache/lock-$V2.json" ] && [ -z "$(ls -A "$WORK/bad-cache/blobs/sha256")" ] || fail "a relabelled kit ($what) reached the cache"
done

# The kit imported into a fresh cache (the server is gone) and used by a gen.
"$KBUNDLE" fetch --import "$WORK/kit-$V2.tar" --cache "$WORK/offline" >"$WORK/imp" 2>&1 || { cat "$WORK/imp" >&2; fail "import $V2"; }
tar -xOf "$WORK/kit-$V2.tar" "catalog-$V2.json" | grep -q "dl.k8s.io/release/$V2/bin/linux/amd64/kubelet.sha256" ||
  fail "the kit does not carry the catalog entry resolved for $V2"
topology_at $V2
"$KBUNDLE" gen --topology "$WORK/topology.yaml" --state "$WORK/offline-state" --out "$WORK/offline-out" --cache "$WORK/offline" \
  >"$WORK/gen.log" 2>&1 || { cat "$WORK/gen.log" >&2; fail "gen $V2 from the imported kit"; }
OUT=$WORK/offline-out
[ "$(apiserver_sha)" = "$sha2" ] || fail "the offline $V2 bundle differs from the online one"
check_versions $V2
pass "fetched $V1, $V2, $V3 from templates (per-file .sha256 in each lock); $V1 -> $V2 -> $V3 on one state, control plane first; worker-first, downgrade, skipped minor, tampered and missing releases refused; $V2 kit used offline"
