#!/usr/bin/env bash
# Fuzzes the safetensors reader with libFuzzer (clang) under ASan and UBSan for
# a fixed time; prints the executions and any finding. Not part of ctest.
#   scripts/fuzz_safetensors.sh [SECONDS]   (default 120)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-120}
command -v clang++-14 >/dev/null || { sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd=sudo;
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq clang-14 libclang-rt-14-dev >/dev/null; }
work=$(mktemp -d)
clang++-14 -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I"$root" \
  "$root/tests/model/safetensors_fuzz.cpp" "$root/model/safetensors.cpp" "$root/common/atomic_file.cpp" \
  -o "$work/fuzz"
mkdir -p "$work/corpus"
"$work/fuzz" -max_total_time="$seconds" -print_final_stats=1 "$work/corpus" 2>&1 | tail -n 12
