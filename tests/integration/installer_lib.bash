# Shared by the installer_*.sh tests (sourced after lib.bash; not a test itself).
INSTALLER=${KB_INSTALLER:-$KB_BUILD_DIR/installer/kbundle-installer}
[ -x "$INSTALLER" ] || fail "kbundle-installer not built at $INSTALLER"

# gen_serials: $WORK/o1 (serial 1 of every node) and $WORK/o2 (serial 2 of every node: the API host changed).
gen_serials() {
  "$KBUNDLE" gen --no-binaries --topology "$EXAMPLE" --state "$WORK/state" --out "$WORK/o1" >"$WORK/gen1.log" 2>&1 || fail "gen 1"
  sed 's/host: api.kthw.example.com/host: api2.kthw.example.com/' "$EXAMPLE" >"$WORK/topology2.yaml"
  "$KBUNDLE" gen --no-binaries --topology "$WORK/topology2.yaml" --state "$WORK/state" --out "$WORK/o2" >"$WORK/gen2.log" 2>&1 || fail "gen 2"
}
# new_root DIR: the directories a Debian node has.
new_root() { mkdir -p "$1"/{etc/systemd/system,var/lib,usr/local/bin}; }
# snap ROOT: every path (but the installer's own state) with type, mode, owner, and content hash.
snap() {
  (cd "$1" && find . -path ./var/lib/kbundle -prune -o -printf '%p %y %m %U:%G\n' | LC_ALL=C sort &&
    find . -path ./var/lib/kbundle -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}
# inst ARGS...: the installer on a test root, bound by --node (the machine is not an EC2 node).
inst() { "$INSTALLER" --no-systemd "$@"; }
