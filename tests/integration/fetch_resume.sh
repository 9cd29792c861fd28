#!/usr/bin/env bash
# A download whose connection drops mid-file resumes: the retry asks for the rest with an
# HTTP Range request onto the .part file, and the result verifies against the published checksum.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fetch_lib.bash"
make_mirror "$WORK/mirror"
url=$(python3 -c 'import json,sys; print([a["url"] for a in json.load(open(sys.argv[1]))["artifacts"] if "containerd/containerd" in a["url"]][0])' \
  "$KB_SOURCE_DIR/binaries/catalog/v1.32.json")
asset=${url##*/}
tarball=$WORK/mirror/${url#https://}
start_server "$WORK/mirror" "/$asset"
"$KBUNDLE" fetch --version $FETCH_VERSION --mirror "$MIRROR" --cache "$WORK/cache" >"$WORK/out" 2>"$WORK/err" ||
  { cat "$WORK/err" >&2; fail "fetch failed"; }
grep "/$asset " "$SERVER_LOG" >"$WORK/requests"
[ "$(wc -l <"$WORK/requests")" -eq 2 ] || fail "want 2 requests for $asset, got: $(cat "$WORK/requests")"
head -1 "$WORK/requests" | grep >/dev/null -e "range=-$" || fail "first request already had a Range: $(head -1 "$WORK/requests")"
size=$(stat -c %s "$tarball")
half=$((size / 2))
tail -1 "$WORK/requests" | grep >/dev/null -e "range=bytes=$half-$" || fail "second request did not resume at byte $half: $(tail -1 "$WORK/requests")"
grep -q "resuming at byte $half" "$WORK/err" || fail "no resume line: $(cat "$WORK/err")"
check_cache "$WORK/cache"
artifact=$(lock_py "$WORK/cache" 'print([e["artifactSha256"] for e in lock["binaries"] if e["component"] == "containerd"][0])')
[ "$artifact" = "$(sha256sum "$tarball" | cut -d' ' -f1)" ] || fail "the resumed download does not match"
[ -z "$(ls -A "$WORK/cache/partial")" ] || fail "a .part file stayed"
pass "connection dropped at byte $half of $size; resumed with Range: bytes=$half- and verified"
