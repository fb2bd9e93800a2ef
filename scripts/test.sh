#!/usr/bin/env bash
# Runs the whole test suite: setup (idempotent), build, then every ctest label.
#   scripts/test.sh [ctest args...]     e.g. scripts/test.sh -L unit
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
cd "$root/${ST_BUILD_DIR:-build}"
ctest --output-on-failure -j "$(nproc)" "$@"
