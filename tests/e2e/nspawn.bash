# Real nodes on one machine with systemd-nspawn (see E2E.md). Sourced by the e2e
# tests after tests/integration/lib.bash (WORK, cleanup, skip, fail).
#
#   nspawn_require                  skips (77) unless root, nspawn, debootstrap, overlayfs, cgroups;
#                                   takes the machine-wide e2e lock and removes leftovers of killed runs
#   nspawn_base                     $NSPAWN_BASE: the Debian base root, built once and cached as
#                                   $KB_BUILD_DIR/e2e-cache/base.tar (extracted once beside it)
#   nspawn_net_up                   the bridge br-kb with 10.77.0.254/24
#   nspawn_prepare NAME IP          overlay root at $(nspawn_root NAME), netns and veth; files may
#                                   be copied into the root before booting
#   nspawn_boot NAME [ARGS...]      starts booting it (extra systemd-nspawn ARGS, e.g. --bind-ro=...)
#   nspawn_wait NAME                waits until its systemd reports running or degraded
#   node NAME CMD...                runs CMD inside the node (nsenter -t PID1 -a)
#   nspawn_stop NAME                clean poweroff, then unmount and remove netns, veth, cgroups
#   nspawn_control_plane_topology FILE   three control-plane nodes from the caller's names/ips arrays
#   lap TEXT / lap_table            a progress line with the time so far / all laps as a table
#   nspawn_control_plane_bins ROOT  Debian's etcd and the kube-* stand-ins (with the python API
#                                   stand-in that serves server-side apply) into a node root
#   nspawn_sshd NAME IP PUB KNOWN   sshd in the node: its own host key (pinned in KNOWN), key-only login
#   nspawn_etcd_client NAME IP...   etcdctl from the host (nspawn_etcdctl ARGS...) to those members,
#                                   with the apiserver's etcd client certificate copied from NAME
#   nspawn_etcd_healthy / nspawn_etcd_check   waits for every member's health / that, plus every
#                                   member started, a key written and read back, no-cert refused
# Every resource is registered with `cleanup` as soon as it exists, so a failing or
# interrupted test leaves nothing behind. The nspawn process is never sent SIGKILL
# (the node's systemd and services would live on).

NSPAWN_BRIDGE=br-kb
NSPAWN_NET=10.77.0
NSPAWN_PREFIX=kb-e2e-  # netns and cgroup names; veths are "kbv-NAME-SUFFIX" shortened below
# curl runs the first-boot user data; python3 (not python3-minimal: that lacks http.server and
# json) runs the kube-apiserver stand-in; openssh-server lets rollout_ssh.sh reach nodes over SSH (off
# unless a test gives the node host keys and enables it: nspawn_sshd).
NSPAWN_BASE_PACKAGES=systemd,systemd-sysv,dbus,iproute2,procps,ca-certificates,openssl,curl,python3,openssh-server
declare -A NSPAWN_PID=() NSPAWN_PID1=()

nspawn_require() {
  [ "$(id -u)" -eq 0 ] || skip "needs root (systemd-nspawn, network namespaces, overlayfs)"
  need systemd-nspawn debootstrap nsenter ip mount umount tar flock pgrep
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
  grep -qw overlay /proc/filesystems || skip "no overlayfs in this kernel"
  [ -d /sys/fs/cgroup/systemd ] || [ -f /sys/fs/cgroup/cgroup.controllers ] ||
    skip "no systemd cgroup hierarchy at /sys/fs/cgroup"
  ip netns add "${NSPAWN_PREFIX}probe" 2>/dev/null || skip "cannot create network namespaces here"
  ip netns del "${NSPAWN_PREFIX}probe"
  # One run at a time per machine: the bridge, addresses and names are fixed.
  exec {NSPAWN_LOCK_FD}>/run/kbundle-e2e.lock
  flock -w 600 "$NSPAWN_LOCK_FD" || fail "another e2e run holds /run/kbundle-e2e.lock"
  nspawn_sweep
  # What every e2e test drives, and the stopwatch its progress lines (lap) read.
  INSTALLER=$KB_BUILD_DIR/installer/kbundle-installer
  REBUNDLE=$KB_BUILD_DIR/tests/kb_e2e_rebundle
  [ -x "$INSTALLER" ] || fail "kbundle-installer not built at $INSTALLER"
  [ -x "$REBUNDLE" ] || fail "kb_e2e_rebundle not built at $REBUNDLE"
  t_start=$(date +%s%N)
}

# lap TEXT: a progress line with the seconds since nspawn_require (kept for lap_table).
NSPAWN_LAPS=()
lap() {
  local tenths=$((($(date +%s%N) - t_start) / 100000000))
  printf '  %-52s %3d.%d s\n' "$1" $((tenths / 10)) $((tenths % 10))
  NSPAWN_LAPS+=("$tenths $1")
}

# lap_table: every lap so far with its own duration and the running total.
lap_table() {
  local l prev=0 t
  printf '  %-52s %7s %7s\n' step took total
  for l in "${NSPAWN_LAPS[@]}"; do
    t=${l%% *}
    printf '  %-52s %5d.%d %5d.%d\n' "${l#* }" $(((t - prev) / 10)) $(((t - prev) % 10)) $((t / 10)) $((t % 10))
    prev=$t
  done
}

# The mirror apt uses (deb822 .sources or a sources.list "deb" line), for debootstrap;
# $KB_E2E_MIRROR overrides it.
nspawn_mirror() {
  local f uri
  if [ -n "${KB_E2E_MIRROR:-}" ]; then echo "$KB_E2E_MIRROR"; return; fi
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk '/^URIs:/ {print $2; exit}' "$f")
    case $uri in */debian) echo "$uri"; return ;; esac
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri=$(awk '$1 == "deb" && $2 !~ /^\[/ && $2 ~ /\/debian\/?$/ {print $2; exit}
               $1 == "deb" && $2 ~ /^\[/ {for (i = 3; i <= NF; i++) if ($i ~ /\/debian\/?$/) {print $i; exit}}' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  echo http://deb.debian.org/debian
}

# Builds the cached base tarball if missing (one debootstrap per build dir, under a lock).
nspawn_base_tar() {
  local cache=$KB_BUILD_DIR/e2e-cache suite mirror tmp
  NSPAWN_BASE_TAR=$cache/base.tar
  mkdir -p "$cache"
  if [ -f "$NSPAWN_BASE_TAR" ] && [ "$(cat "$cache/base.packages" 2>/dev/null)" = "$NSPAWN_BASE_PACKAGES" ]; then
    return 0
  fi
  suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  mirror=$(nspawn_mirror)
  tmp=$cache/base.tmp
  rm -rf "$tmp" "$NSPAWN_BASE_TAR"
  echo "e2e: building the base root once ($suite from $mirror, about a minute)"
  if ! debootstrap --variant=minbase --include="$NSPAWN_BASE_PACKAGES" "$suite" "$tmp" "$mirror" \
       >"$cache/debootstrap.log" 2>&1; then
    tail -n 5 "$cache/debootstrap.log" >&2
    rm -rf "$tmp"
    skip "cannot build the base root with debootstrap from $mirror (see $cache/debootstrap.log)"
  fi
  # Every node must get its own machine id and hostname; no gettys or timers.
  : > "$tmp/etc/machine-id"
  mkdir -p "$tmp/var/lib/dbus"
  ln -sf /etc/machine-id "$tmp/var/lib/dbus/machine-id"
  rm -f "$tmp/etc/hostname"
  rm -f "$tmp"/etc/systemd/system/getty.target.wants/* "$tmp"/etc/systemd/system/timers.target.wants/*
  # No shared SSH host keys and no sshd by default: nspawn_sshd gives one node its own keys and starts it.
  rm -f "$tmp"/etc/ssh/ssh_host_* "$tmp"/etc/systemd/system/multi-user.target.wants/ssh.service \
    "$tmp"/etc/systemd/system/sshd.service "$tmp"/etc/systemd/system/sockets.target.wants/ssh.socket
  rm -rf "$tmp"/var/cache/apt/archives/*.deb
  tar -C "$tmp" --numeric-owner -cf "$NSPAWN_BASE_TAR.tmp" . || fail "cannot write $NSPAWN_BASE_TAR"
  mv "$NSPAWN_BASE_TAR.tmp" "$NSPAWN_BASE_TAR"
  echo "$NSPAWN_BASE_PACKAGES" > "$cache/base.packages"
  rm -rf "$tmp"
}

# The base root, extracted once next to the tarball (only ever an overlay's read-only lower layer).
nspawn_base() {
  nspawn_base_tar
  NSPAWN_BASE=$KB_BUILD_DIR/e2e-cache/base
  local stamp=$KB_BUILD_DIR/e2e-cache/base.extracted
  if [ ! -f "$stamp" ] || [ "$NSPAWN_BASE_TAR" -nt "$stamp" ]; then
    rm -rf "$NSPAWN_BASE" "$stamp"
    mkdir -p "$NSPAWN_BASE"
    tar -C "$NSPAWN_BASE" --numeric-owner -xf "$NSPAWN_BASE_TAR" || fail "cannot extract $NSPAWN_BASE_TAR"
    touch "$stamp"
  fi
}

# A command run in a node with `node` is a child of nsenter on the host. When the node shuts
# down, systemd stops every process (SIGSTOP) before signalling it; nsenter sees its child
# stop, stops itself, and then never reaps it, so the node waits 90 s for that zombie.
# Continuing those nsenter processes lets the shutdown finish.
_nspawn_continue_nsenters() {
  local nspawn_pid=$1 pid1 ns p
  local -a pids1=()
  read -ra pids1 <"/proc/$nspawn_pid/task/$nspawn_pid/children" 2>/dev/null || true
  for pid1 in "${pids1[@]}"; do
    ns=$(readlink "/proc/$pid1/ns/pid" 2>/dev/null) || continue
    for p in $(pgrep -x nsenter); do
      [ "$(readlink "/proc/$p/ns/pid_for_children" 2>/dev/null)" = "$ns" ] && kill -CONT "$p" 2>/dev/null
    done
  done
  return 0
}

# Removes what a killed run (e.g. a ctest timeout) left: with the lock held, every node
# cgroup, overlay, netns and the bridge of our names is a leftover. Nodes get SIGTERM.
nspawn_sweep() {
  local cg pid i mnt ns
  for cg in /sys/fs/cgroup/systemd/"${NSPAWN_PREFIX}"*; do
    [ -d "$cg" ] || continue
    # nspawn moves itself into a "supervisor" child cgroup: look at the whole subtree.
    while read -r pid; do
      [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd-nspawn ] || continue
      echo "e2e: stopping node left by an earlier run (nspawn pid $pid, $cg)" >&2
      kill -TERM "$pid"
      for ((i = 0; i < 300; i++)); do
        [ -d "/proc/$pid" ] || break
        [ $((i % 5)) -eq 4 ] && _nspawn_continue_nsenters "$pid"
        sleep 0.1
      done
      [ -d "/proc/$pid" ] && fail "a node of an earlier run (nspawn pid $pid) does not stop; stop it first"
    done < <(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)
  done
  for cg in /sys/fs/cgroup/{systemd,unified}/"${NSPAWN_PREFIX}"*; do
    [ -d "$cg" ] && { find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || fail "cannot remove cgroup $cg (still in use)"; }
  done
  while read -r mnt; do
    umount "$mnt" 2>/dev/null || umount -l "$mnt"
  done < <(awk '$3 == "overlay" && $2 ~ "^/tmp/kb-[^/]*/nodes/[^/]*/root$" {print $2}' /proc/self/mounts)
  for ns in $(ip netns list | awk -v p="$NSPAWN_PREFIX" 'index($1, p) == 1 {print $1}'); do ip netns del "$ns"; done
  ip link del "$NSPAWN_BRIDGE" 2>/dev/null || true
}

nspawn_net_up() {
  # A fixed MAC: a bridge without one takes its lowest port's, so a node added later could change
  # it and leave the running nodes' ARP entries for the host address stale (tens of seconds lost).
  ip link add "$NSPAWN_BRIDGE" address 02:6b:62:00:00:fe type bridge || fail "cannot create bridge $NSPAWN_BRIDGE"
  cleanup "ip link del $NSPAWN_BRIDGE"
  ip addr add "$NSPAWN_NET.254/24" dev "$NSPAWN_BRIDGE"
  ip link set "$NSPAWN_BRIDGE" up
}

# Bundles carry no binaries yet (issue 5): a control-plane node gets Debian's etcd and, for
# kube-apiserver & co, tests/e2e/kube-standin; kube-apiserver runs tests/standins/kube-api-standin.py
# (health and server-side apply of the bootstrap objects, each request recorded).
nspawn_control_plane_bins() {
  local root=$1 c
  install -D -m 0755 "$(command -v etcd)" "$root/usr/local/bin/etcd"
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    install -m 0755 "$KB_SOURCE_DIR/tests/e2e/kube-standin" "$root/usr/local/bin/$c"
  done
  install -D -m 0644 "$KB_SOURCE_DIR/tests/standins/kube-api-standin.py" "$root/usr/local/lib/kbundle-standin/kube-api-standin.py"
}

# nspawn_sshd NAME IP AUTHORIZED_KEY KNOWN_HOSTS: the node's own ed25519 host key (made here, before
# boot), key-only root login, sshd enabled; the host key is pinned as IP in KNOWN_HOSTS.
nspawn_sshd() {
  local name=$1 ip=$2 pub=$3 known=$4 root
  root=$(nspawn_root "$name")
  mkdir -p "$root/etc/ssh/sshd_config.d" "$root/root/.ssh"
  ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$root/etc/ssh/ssh_host_ed25519_key" || fail "ssh-keygen for $name"
  cat >"$root/etc/ssh/sshd_config.d/kbundle-e2e.conf" <<CONF
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AuthenticationMethods publickey
UseDNS no
CONF
  chmod 0700 "$root/root/.ssh"
  install -m 0600 "$pub" "$root/root/.ssh/authorized_keys"
  mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
  ln -sf /usr/lib/systemd/system/ssh.service "$root/etc/systemd/system/multi-user.target.wants/ssh.service"
  echo "$ip $(cut -d' ' -f1,2 "$root/etc/ssh/ssh_host_ed25519_key.pub")" >>"$known"
}

nspawn_etcd_client() {
  local name=$1 d=$WORK/etcd-client ip
  shift
  NSPAWN_ETCD_ENDPOINTS=""
  for ip in "$@"; do NSPAWN_ETCD_ENDPOINTS+=${NSPAWN_ETCD_ENDPOINTS:+,}https://$ip:2379; done
  mkdir -p -m 0700 "$d"
  node "$name" cat /var/lib/kubernetes/etcd-ca.crt >"$d/ca.crt"
  node "$name" cat /var/lib/kubernetes/apiserver-etcd-client.crt >"$d/client.crt"
  node "$name" cat /var/lib/kubernetes/apiserver-etcd-client.key >"$d/client.key"
}
nspawn_etcdctl() {
  local d=$WORK/etcd-client
  ETCDCTL_API=3 etcdctl --endpoints="$NSPAWN_ETCD_ENDPOINTS" --cacert "$d/ca.crt" --cert "$d/client.crt" \
    --key "$d/client.key" --dial-timeout=3s --command-timeout=5s "$@"
}
nspawn_etcd_healthy() {
  for _ in $(seq 1 60); do
    nspawn_etcdctl endpoint health >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  nspawn_etcdctl endpoint health >&2 || true
  return 1
}
# The key nspawn_etcd_check writes, and its value.
NSPAWN_ETCD_KEY=/kbundle/e2e
NSPAWN_ETCD_VALUE="hello from $(hostname)"
nspawn_etcd_check() {
  local want members got last=${NSPAWN_ETCD_ENDPOINTS##*,}
  want=$(tr ',' '\n' <<<"$NSPAWN_ETCD_ENDPOINTS" | wc -l)
  nspawn_etcd_healthy || fail "the $want etcd members are not healthy from the host"
  members=$(nspawn_etcdctl member list | grep -c started || true)
  [ "$members" -eq "$want" ] || { nspawn_etcdctl member list >&2; fail "member list shows $members started members, not $want"; }
  nspawn_etcdctl put "$NSPAWN_ETCD_KEY" "$NSPAWN_ETCD_VALUE" >/dev/null || fail "etcd refused a put"
  got=$(nspawn_etcdctl get "$NSPAWN_ETCD_KEY" --print-value-only --endpoints="$last")
  [ "$got" = "$NSPAWN_ETCD_VALUE" ] || fail "read back '$got' from $last"
  # Without a client certificate, etcd refuses.
  if ETCDCTL_API=3 etcdctl --endpoints="${NSPAWN_ETCD_ENDPOINTS%%,*}" --cacert "$WORK/etcd-client/ca.crt" \
       --dial-timeout=3s --command-timeout=5s get "$NSPAWN_ETCD_KEY" >/dev/null 2>&1; then
    fail "etcd accepted a client without a certificate"
  fi
}

nspawn_dir() { echo "$WORK/nodes/$1"; }
nspawn_root() { echo "$WORK/nodes/$1/root"; }
_nspawn_veth() { echo "kbv-${1: -8}"; }  # interface names are at most 15 bytes

# Removes whatever exists of node NAME (idempotent; also used for leftovers of a crashed run).
_nspawn_teardown() {
  local name=$1 d ns=${NSPAWN_PREFIX}$1 cg
  d=$(nspawn_dir "$name")
  if mountpoint -q "$d/root" 2>/dev/null; then
    umount "$d/root" 2>/dev/null || umount -l "$d/root"
  fi
  ip netns del "$ns" 2>/dev/null || true
  ip link del "$(_nspawn_veth "$name")" 2>/dev/null || true
  for cg in /sys/fs/cgroup/systemd/$ns /sys/fs/cgroup/unified/$ns; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  return 0
}

# nspawn_prepare NAME IP: overlay root, network namespace with IP on eth0, bridged veth.
nspawn_prepare() {
  local name=$1 ip=$2 d ns=${NSPAWN_PREFIX}$1 veth
  d=$(nspawn_dir "$name")
  veth=$(_nspawn_veth "$name")
  _nspawn_teardown "$name"
  cleanup "_nspawn_teardown $name"
  mkdir -p "$d/upper" "$d/work" "$d/root"
  mount -t overlay overlay -o "lowerdir=$NSPAWN_BASE,upperdir=$d/upper,workdir=$d/work" "$d/root" ||
    fail "cannot mount the overlay root of $name"
  ip netns add "$ns"
  ip link add "$veth" type veth peer name eth0 netns "$ns"
  ip link set "$veth" master "$NSPAWN_BRIDGE" up
  ip -n "$ns" addr add "$ip/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
}

# nspawn_boot NAME [NSPAWN ARGS...]: boots the prepared node from its own cgroup (without waiting).
nspawn_boot() {
  local name=$1 d ns=${NSPAWN_PREFIX}$1
  shift
  d=$(nspawn_dir "$name")
  mkdir -p "/sys/fs/cgroup/systemd/$ns"
  [ -d /sys/fs/cgroup/unified ] && mkdir -p "/sys/fs/cgroup/unified/$ns"
  (
    exec {NSPAWN_LOCK_FD}>&-  # the lock must end with this run, not live on in the node
    echo "$BASHPID" > "/sys/fs/cgroup/systemd/$ns/cgroup.procs"
    [ -d "/sys/fs/cgroup/unified/$ns" ] && echo "$BASHPID" > "/sys/fs/cgroup/unified/$ns/cgroup.procs"
    exec systemd-nspawn -q -D "$d/root" -M "$name" -b --register=no --keep-unit --console=pipe \
      --network-namespace-path="/run/netns/$ns" "$@"
  ) </dev/null >"$d/console.log" 2>&1 &
  NSPAWN_PID[$name]=$!
  cleanup "nspawn_stop $name"
}

nspawn_wait() {
  local name=$1 d pid=${NSPAWN_PID[$1]} pid1="" state="" i
  d=$(nspawn_dir "$name")
  # The container's PID 1 is nspawn's child; then systemd needs a second or two.
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$d/console.log" >&2; fail "systemd-nspawn for $name exited"; }
    # Read again each time: nspawn's first child is a short-lived helper, not the container's init.
    pid1=$(awk '{print $1}' "/proc/$pid/task/$pid/children" 2>/dev/null || true)
    if [ -n "$pid1" ]; then
      state=$(nsenter -t "$pid1" -a systemctl is-system-running 2>/dev/null || true)
      case $state in running | degraded) break ;; esac
    fi
    sleep 0.1
  done
  case $state in running | degraded) ;; *) tail -n 20 "$d/console.log" >&2; fail "$name did not boot (state '$state')" ;; esac
  NSPAWN_PID1[$name]=$pid1
}

# node NAME CMD...: runs CMD in all of the node's namespaces.
node() {
  local name=$1
  shift
  nsenter -t "${NSPAWN_PID1[$name]}" -a -- "$@" {NSPAWN_LOCK_FD}>&-
}

# nspawn_stop NAME: poweroff, wait for nspawn (TERM again if it hangs, never KILL), remove everything.
nspawn_stop() {
  local name=$1 pid=${NSPAWN_PID[$1]:-} i
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    if [ -n "${NSPAWN_PID1[$name]:-}" ]; then
      nsenter -t "${NSPAWN_PID1[$name]}" -a systemctl poweroff --no-block >/dev/null 2>&1 || kill -TERM "$pid"
    else
      kill -TERM "$pid"
    fi
    for ((i = 0; i < 300; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      [ $((i % 5)) -eq 4 ] && _nspawn_continue_nsenters "$pid"
      [ $((i % 100)) -eq 99 ] && kill -TERM "$pid" 2>/dev/null
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "e2e: $name did not stop in 30 s; leaving it running (pid $pid), not killing it with SIGKILL" >&2
      return 1
    fi
    wait "$pid" 2>/dev/null || true
  fi
  unset "NSPAWN_PID[$name]" "NSPAWN_PID1[$name]"
  _nspawn_teardown "$name"
}

# nspawn_control_plane_topology FILE: a topology of three control-plane nodes named ${names[@]} at
# ${ips[@]} (the caller's arrays), the API at the first; callers append what else they need.
nspawn_control_plane_topology() {
  cat >"$1" <<YAML
cluster:
  name: e2e
  kubernetesVersion: v1.32.3
  apiEndpoint: {host: ${ips[0]}, port: 6443}
nodes:
  - {name: ${names[0]}, role: control-plane, privateIP: ${ips[0]}}
  - {name: ${names[1]}, role: control-plane, privateIP: ${ips[1]}}
  - {name: ${names[2]}, role: control-plane, privateIP: ${ips[2]}}
YAML
}
