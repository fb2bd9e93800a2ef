#!/usr/bin/env bash
# One idempotent setup: Debian packages, the project's Python venv (LibTorch is
# taken from its torch wheel; the reference stack serves the parity tests) and
# the CMake build. Re-running it when everything is in place takes seconds.
#
#   scripts/setup.sh            install what is missing, configure, build
#   ST_BUILD_DIR=dir          build elsewhere (default: build)
#   ST_BUILD_TYPE=Debug|...   (default: Release)
#   ST_SANITIZE=address       build with AddressSanitizer
#   ST_SKIP_LLAMA_CPP=1       do not build llama-cpp-python (its tests skip)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build_dir=${ST_BUILD_DIR:-build}

debian_packages=(build-essential cmake ninja-build ccache pkg-config python3-venv
  libsentencepiece-dev sentencepiece nlohmann-json3-dev libtomlplusplus-dev
  libgtest-dev zlib1g-dev libicu-dev libsimdjson-dev libssl-dev libxxhash-dev
  libgloo-dev)
missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd=sudo
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The venv is keyed by the requirements file: a change reinstalls.
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat $stamp 2>/dev/null)" != "$want" ]; then
  echo "setup: creating the Python venv (.venv) from requirements.txt"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  echo "$want" > $stamp
fi

# llama.cpp's binding, built from source (minutes): its own requirements file
# and stamp, so a change to requirements.txt does not rebuild it.
# ST_SKIP_LLAMA_CPP=1 leaves it out; the llama_cpp tests then skip.
llama_stamp=.venv/.requirements-llama-cpp.sha256
llama_want=$(sha256sum requirements-llama-cpp.txt | cut -d' ' -f1)
if [ -z "${ST_SKIP_LLAMA_CPP:-}" ] && [ "$(cat $llama_stamp 2>/dev/null)" != "$llama_want" ]; then
  echo "setup: building llama-cpp-python (llama.cpp) into the venv: about 5 minutes on 2 cores"
  CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) .venv/bin/python -m pip install -q -r requirements-llama-cpp.txt
  echo "$llama_want" > $llama_stamp
fi

if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  extra=()
  [ -n "${ST_SANITIZE:-}" ] && extra+=("-DST_SANITIZE=${ST_SANITIZE}")
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${ST_BUILD_TYPE:-Release}" "${extra[@]}"
fi
jobs=$(nproc)
cmake --build "$build_dir" -j "$jobs"
