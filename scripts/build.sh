#!/usr/bin/env bash
# Configures and builds into build/ (or $KB_BUILD_DIR). Extra arguments go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${KB_BUILD_DIR:-build}
werror=OFF; [ -n "${CI:-}" ] && werror=ON
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKB_WERROR=$werror "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
