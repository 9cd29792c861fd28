#!/usr/bin/env bash
# Every test, from a fresh machine: install, build, run unit, integration and
# end-to-end tests. `scripts/test.sh -L unit` passes arguments on to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
scripts/build.sh
build=${KB_BUILD_DIR:-build}
cd "$build"
ctest --output-on-failure -j"$(nproc)" "$@"
