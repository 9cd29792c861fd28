# Shared by the fetch_*.sh tests (sourced after lib.bash): a loopback mirror of the upstream
# layouts built from Debian binaries and stand-ins, served by fetch_server.py.
FETCH_VERSION=v1.32.3
need python3 tar sha256sum
for f in /usr/bin/etcd /usr/bin/etcdctl /usr/bin/containerd /usr/bin/containerd-shim-runc-v2 /usr/bin/ctr /usr/sbin/runc \
         /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/loopback /bin/busybox; do
  [ -x "$f" ] || skip "$f is missing (scripts/deps.sh test installs it)"
done

# make_mirror DIR: the catalog's artifacts, checksum files and images under DIR.
make_mirror() {
  python3 "$KB_SOURCE_DIR/tests/integration/fetch_mirror.py" "$KB_SOURCE_DIR/binaries/catalog/v1.32.json" "$1" $FETCH_VERSION ||
    fail "cannot build the test mirror"
}

# start_server DIR [DROP_SUFFIX] -> $MIRROR (URL), $SERVER_LOG; stopped by PID on exit.
start_server() {
  SERVER_LOG=$WORK/server.log
  : >"$SERVER_LOG"
  rm -f "$WORK/port"
  python3 "$KB_SOURCE_DIR/tests/integration/fetch_server.py" "$1" "$SERVER_LOG" "$WORK/port" ${2:+"$2"} &
  SERVER_PID=$!
  cleanup "kill $SERVER_PID 2>/dev/null"
  for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
  [ -s "$WORK/port" ] || fail "the test HTTP server did not start"
  MIRROR=http://127.0.0.1:$(cat "$WORK/port")
}

stop_server() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }

# lock_py CACHE PYTHON: evaluates a python expression over the lock as `lock`.
lock_py() {
  python3 -c "import json,sys; lock=json.load(open(sys.argv[1])); $2" "$1/lock-$FETCH_VERSION.json"
}

# check_cache CACHE: every file in the lock is in the cache with its sha256.
check_cache() {
  lock_py "$1" 'print("\n".join(e["sha256"] for e in lock["binaries"] + lock["images"]))' | while read -r h; do
    [ "$(sha256sum "$1/blobs/sha256/$h" | cut -d' ' -f1)" = "$h" ] || fail "$1: blob $h does not match"
  done
}
