#!/usr/bin/env bash
# Installs what kbundle needs from Debian's packages, only what is missing.
#   scripts/deps.sh build   compilers and libraries
#   scripts/deps.sh test    also the real components the tests run against
set -euo pipefail
what=${1:-build}

build_pkgs=(g++ cmake ninja-build pkg-config libssl-dev openssl libarchive-dev libzstd-dev libyaml-cpp-dev libyaml-dev
            libcli11-dev libcurl4-openssl-dev libssh2-1-dev catch2 nlohmann-json3-dev libkainjow-mustache-dev zstd)
test_pkgs=(etcd-server etcd-client systemd systemd-container debootstrap iproute2 tar file python3 python3-yaml)

# kbundle fetch tests: a mirror made of real Debian binaries and a busybox OCI image.
test_pkgs+=(containerd runc containernetworking-plugins busybox-static)
# kbundle publish tests: a loopback sshd.
test_pkgs+=(openssh-server openssh-client)
# the short fuzz run: clang with libFuzzer.
test_pkgs+=(clang libclang-rt-14-dev)

pkgs=("${build_pkgs[@]}")
[ "$what" = test ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# kubectl: any working one will do (the image may ship one); otherwise Debian's kubernetes-client.
if [ "$what" = test ] && ! kubectl version --client >/dev/null 2>&1; then missing+=(kubernetes-client); fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
