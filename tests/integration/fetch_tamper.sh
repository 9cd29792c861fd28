#!/usr/bin/env bash
# Tampering is refused with the file and both hashes, and leaves nothing behind:
# a binary changed on the mirror (its published checksum not), and a file changed inside an
# air-gap kit (its lock not), and a kit whose lock moves a file elsewhere on the node.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fetch_lib.bash"
sha() { sha256sum "$1" | cut -d' ' -f1; }
blob_count() { find "$1/blobs" -type f 2>/dev/null | wc -l; }
make_mirror "$WORK/mirror"
start_server "$WORK/mirror"

# 1. The mirror serves a kube-proxy that is not the one its checksum file publishes.
bad=$WORK/mirror/dl.k8s.io/release/$FETCH_VERSION/bin/linux/amd64/kube-proxy
published=$(cat "$bad.sha256")
printf '#!/bin/sh\necho evil\n' >"$bad"
if "$KBUNDLE" fetch --version $FETCH_VERSION --mirror "$MIRROR" --cache "$WORK/c1" >"$WORK/out" 2>"$WORK/err"; then
  fail "a tampered mirror file was accepted"
fi
msg=$(grep "kbundle: error:" "$WORK/err") || fail "no error line: $(tail -3 "$WORK/err")"
case "$msg" in
  *"$MIRROR/dl.k8s.io/release/$FETCH_VERSION/bin/linux/amd64/kube-proxy: checksum mismatch"*"$published"*"$(sha "$bad")"*) ;;
  *) fail "mismatch message lacks the URL or a hash: $msg" ;;
esac
[ ! -e "$WORK/c1/lock-$FETCH_VERSION.json" ] || fail "a lock was written after a mismatch"
[ ! -e "$WORK/c1/blobs/sha256/$(sha "$bad")" ] || fail "the tampered file entered the cache"
[ -z "$(ls -A "$WORK/c1/partial")" ] || fail "the tampered download was kept in partial/"
make_mirror "$WORK/mirror"  # restore

# 2. A good kit, then one with a changed file.
"$KBUNDLE" fetch --version $FETCH_VERSION --mirror "$MIRROR" --cache "$WORK/c2" --export "$WORK/kit.tar" >"$WORK/out" 2>&1 ||
  { cat "$WORK/out" >&2; fail "fetch --export failed"; }
stop_server
kubelet=$(lock_py "$WORK/c2" 'print([e["sha256"] for e in lock["binaries"] if e["component"] == "kubelet"][0])')
mkdir "$WORK/kit" && tar -xf "$WORK/kit.tar" -C "$WORK/kit"
printf 'tampered' >>"$WORK/kit/blobs/sha256/$kubelet"
tampered=$(sha "$WORK/kit/blobs/sha256/$kubelet")
(cd "$WORK/kit" && tar -cf "$WORK/bad-kit.tar" lock-*.json catalog-*.json blobs)
for kit in "$WORK/bad-kit.tar" "$WORK/kit"; do
  rm -rf "$WORK/c3"
  if "$KBUNDLE" fetch --import "$kit" --cache "$WORK/c3" >"$WORK/out" 2>"$WORK/err"; then fail "$kit: a tampered kit was accepted"; fi
  msg=$(cat "$WORK/err")
  case "$msg" in
    *"$kit: blobs/sha256/$kubelet (kubelet, /usr/local/bin/kubelet): checksum mismatch"*"$kubelet"*"$tampered"*) ;;
    *) fail "$kit: kit mismatch message lacks the file or a hash: $msg" ;;
  esac
  [ ! -e "$WORK/c3/lock-$FETCH_VERSION.json" ] || fail "$kit: a lock was imported"
  [ "$(blob_count "$WORK/c3")" -eq 0 ] || fail "$kit: half-imported files stayed: $(find "$WORK/c3/blobs" -type f)"
  [ -z "$(ls -A "$WORK/c3/partial")" ] || fail "$kit: staging files stayed"
done

# 3. A kit whose lock (re-hashed consistently) installs kubelet somewhere else: refused by the catalog.
tar -xf "$WORK/kit.tar" -C "$WORK/kit"  # restore the blob
sed -i 's#"/usr/local/bin/kubelet"#"/etc/cron.d/kubelet"#' "$WORK/kit/lock-$FETCH_VERSION.json"
rm -rf "$WORK/c4"
if "$KBUNDLE" fetch --import "$WORK/kit" --cache "$WORK/c4" >"$WORK/out" 2>"$WORK/err"; then fail "a moved node path was accepted"; fi
grep -q "kubelet: does not match the release catalog" "$WORK/err" || fail "moved path message: $(cat "$WORK/err")"
[ "$(blob_count "$WORK/c4")" -eq 0 ] || fail "files stayed after a refused lock"

# 4. An existing cache is left exactly as it was by a refused import.
(cd "$WORK/c2" && find . -type f ! -name .lock | sort | xargs sha256sum) >"$WORK/before"
"$KBUNDLE" fetch --import "$WORK/bad-kit.tar" --cache "$WORK/c2" >/dev/null 2>&1 && fail "tampered kit accepted into a full cache"
(cd "$WORK/c2" && find . -type f ! -name .lock | sort | xargs sha256sum) >"$WORK/after"
cmp -s "$WORK/before" "$WORK/after" || fail "a refused import changed the cache"
pass "tampered mirror file, tampered kit (tar and dir) and a relocating lock refused; nothing half-imported"
