#!/usr/bin/env bash
# The fused kernels' GPU check, for the GPU machine (torch 2.11.0+cu130 in its
# python3, nvcc 13, cmake, ninja; no package registry). One run:
#   1. unpacks the carried Debian packages (fetched on a dev machine with
#      `apt-get download`, see below) into a private prefix with `dpkg -x`,
#   2. configures a separate build against the machine's python3 torch (not
#      the project's .venv), builds the GPU tests, the kernels' CPU reference
#      tests and the two C++ benchmarks,
#   3. runs `ctest -L gpu` (the kernel GPU tests), the kernels' CPU reference
#      tests, benchmarks/bench_kernels.cpp, benchmarks/bench_train_step.cpp and
#      benchmarks/bench_hf_step.py (the same step through transformers),
#   4. writes to $OUT (at most 8 files come back from the GPU machine):
#      gpu_check.json (summary, with the GPU tests' counts),
#      bench_kernels.json, bench_train_step.json, bench_hf_step.json,
#      bench_lora_step.json and bench_hf_lora_step.json (7B LoRA SFT, ours and PEFT's),
#      ddp_nccl.json (the same SFT run plain, as a 1-process NCCL job under
#      torchrun, and as one fully sharded: benchmarks/bench_ddp_nccl.py), and logs.tgz with every step's output, the ctest junit and the gtest json.
#      The summary and the archive are written on every exit, also when the
#      run is stopped (SIGTERM/SIGINT, e.g. the device's time limit).
# Exit status: 0 when every step passed (GPU tests skipped on a machine
# without a GPU count as passed), 1 otherwise.
#
# Usage:   scripts/gpu_check.sh [DEBS_DIR]
#   DEBS_DIR       folder of .deb files (default: build-debs/ in the repo)
#   OUT            where results go (default /tmp/st-gpu-out)
#   ST_GPU_BUILD   build folder (default /tmp/st-gpu-build; never build/)
#   ST_GPU_PREFIX  where the packages are unpacked (default /tmp/st-gpu-deps)
#   JOBS           parallel build jobs (default: all cores)
#   PYTHON         the python whose torch to build against (default: python3 on PATH)
#   CUDA_ARCHS     CMAKE_CUDA_ARCHITECTURES (default 90-real;80-virtual, as CI)
#   BENCH_ITERS    timed iterations per benchmark case (default 20)
#   BENCH_ARGS     more arguments for bench_kernels (e.g. "--iters 5 --only rms_norm,rotary")
#   TRAIN_STEPS    timed steps of bench_train_step and bench_hf_step (default 6)
#   GPU_CHECK_STEPS  the steps after the build, from: gpu_tests reference_tests
#                  bench bench_train_step bench_hf_step bench_lora_step ddp_nccl (default: all seven)
#   BUILD_TARGETS  what to build (default: the tests and both C++ benchmarks;
#                  gpu_tests needs every gpu-labelled test built)
#
# Fetch the packages on a dev machine (Debian bookworm, as the project's CI):
#   mkdir -p build-debs && cd build-debs && apt-get download libsentencepiece-dev \
#     libsentencepiece0 nlohmann-json3-dev libtomlplusplus-dev libtomlplusplus3 \
#     libgtest-dev googletest zlib1g-dev zlib1g pkgconf pkgconf-bin libpkgconf3 libgloo-dev \
#     libxxhash-dev libxxhash0 libssl-dev
# and carry that folder: build-debs/ is git-ignored (build-*), so name it in
# the device call's carry list, e.g.
#   run(command="scripts/gpu_check.sh", carry=["build-debs"], timeout_s=540)
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
debs=$(cd "${1:-$repo/build-debs}" 2>/dev/null && pwd) || { echo "gpu_check: no such folder: ${1:-$repo/build-debs}" >&2; exit 1; }
out=${OUT:-/tmp/st-gpu-out}
build=${ST_GPU_BUILD:-/tmp/st-gpu-build}
prefix=${ST_GPU_PREFIX:-/tmp/st-gpu-deps}
jobs=${JOBS:-$(nproc)}
python=${PYTHON:-$(command -v python3)}
archs=${CUDA_ARCHS:-90-real;80-virtual}
iters=${BENCH_ITERS:-20}
mkdir -p "$out/logs" "$prefix" "$build"
status_file=$out/logs/steps.tsv
: > "$status_file"

# step NAME COMMAND...: runs it with output to logs/NAME.log, records rc and seconds.
step() {
  local name=$1; shift
  local start=$SECONDS
  echo "== $name: $*" | tee -a "$out/logs/$name.log"
  # In the background and waited for, so that a stop signal is handled at
  # once (the handler ends the step) rather than after the step.
  "$@" >> "$out/logs/$name.log" 2>&1 &
  child=$!
  wait "$child"
  local rc=$?
  child=""
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - start))" >> "$status_file"
  echo "== $name: rc=$rc in $((SECONDS - start))s"
  [ "$rc" -ne 0 ] && tail -n 40 "$out/logs/$name.log"
  return "$rc"
}

# 1. Unpack every .deb; point the pkg-config files and absolute symlinks into the prefix.
unpack() {
  shopt -s nullglob
  local files=("$debs"/*.deb)
  [ ${#files[@]} -gt 0 ] || { echo "no .deb files in $debs"; return 1; }
  for deb in "${files[@]}"; do
    echo "unpack $(basename "$deb")"
    dpkg -x "$deb" "$prefix" || return 1
  done
  for pc in "$prefix"/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc "$prefix"/usr/share/pkgconfig/*.pc; do
    sed -i -e "s|=/usr|=$prefix/usr|g" -e "s|-I/usr|-I$prefix/usr|g" "$pc"
  done
  # e.g. libz.so -> /lib/x86_64-linux-gnu/libz.so.1.2.13 (shipped by zlib1g)
  find "$prefix" -type l -lname '/*' | while read -r link; do
    target=$(readlink "$link")
    [ -e "$prefix$target" ] && ln -sfn "$prefix$target" "$link" && echo "relinked $link -> $prefix$target"
  done
  return 0
}

lib_dirs="$prefix/usr/lib/x86_64-linux-gnu:$prefix/lib/x86_64-linux-gnu"
export PKG_CONFIG_PATH="$prefix/usr/lib/x86_64-linux-gnu/pkgconfig:$prefix/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

configure() {
  local pkg_config=()
  if ! command -v pkg-config > /dev/null; then
    # pkgconf from the carried packages; it needs its own libpkgconf.
    pkg_config=(-DPKG_CONFIG_EXECUTABLE="$prefix/usr/bin/pkgconf")
    export LD_LIBRARY_PATH="$lib_dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
  # nvcc where CMake may not look for it.
  if ! command -v nvcc > /dev/null && [ -z "${CUDACXX:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then
    export CUDACXX=/usr/local/cuda/bin/nvcc
  fi
  local generator=()
  command -v ninja > /dev/null && generator=(-G Ninja)
  "$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
  cmake -S "$repo" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DST_PYTHON="$python" \
    -DCMAKE_PREFIX_PATH="$prefix/usr" -DCMAKE_CUDA_ARCHITECTURES="$archs" "${pkg_config[@]}"
}

build_targets() {
  # shellcheck disable=SC2086  # a list of targets
  cmake --build "$build" -j "$jobs" --target ${BUILD_TARGETS:-kernel_gpu_test packed_forward_gpu_test kernel_reference_test lm_head_test bench_kernels bench_train_step salamandra-tune}
}

# The test binaries need the carried shared libraries (sentencepiece, toml++).
with_libs() { env LD_LIBRARY_PATH="$lib_dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"; }

gpu_tests() {
  # One gtest json per test binary (a folder: the binaries would overwrite one file).
  (cd "$build" && with_libs GTEST_OUTPUT="json:$out/logs/gpu_tests/" \
    ctest -L gpu --output-on-failure --output-junit "$out/logs/ctest_gpu.xml")
}

reference_tests() {
  with_libs "$build/tests/kernel_reference_test" --gtest_output="json:$out/logs/kernel_reference_test.json" &&
    with_libs "$build/tests/lm_head_test" --gtest_output="json:$out/logs/lm_head_test.json"
}

read -ra bench_args <<< "${BENCH_ARGS:-}"
bench() { with_libs "$build/benchmarks/bench_kernels" --iters "$iters" "${bench_args[@]}" > "$out/bench_kernels.json"; }

bench_train_step() { with_libs "$build/benchmarks/bench_train_step" --steps "${TRAIN_STEPS:-6}" > "$out/bench_train_step.json"; }

# The same step through transformers (the machine's python3 has it), for the ratio.
bench_hf_step() { "$python" "$repo/benchmarks/bench_hf_step.py" --steps "${TRAIN_STEPS:-6}" > "$out/bench_hf_step.json"; }

# LoRA SFT of the 7B preset (the LoRA issue's GPU figure): bf16 base, rank 16 on every projection, 4096 tokens,
# ours and PEFT's in the same run.
lora_step_args=(--preset salamandra-7b --lora-rank 16 --rows 1 --seq 4096 --steps "${TRAIN_STEPS:-6}")
bench_lora_step() {
  with_libs "$build/benchmarks/bench_train_step" "${lora_step_args[@]}" > "$out/bench_lora_step.json" &&
    "$python" "$repo/benchmarks/bench_hf_step.py" "${lora_step_args[@]}" > "$out/bench_hf_lora_step.json"
}

# Training across processes on the GPU: NCCL initialises and all-reduces in a
# 1-process job, and gathers and reduce-scatters in a fully sharded one.
ddp_nccl() { with_libs "$python" "$repo/benchmarks/bench_ddp_nccl.py" "$build/salamandra-tune" > "$out/ddp_nccl.json"; }

all_steps="gpu_tests reference_tests bench bench_train_step bench_hf_step bench_lora_step ddp_nccl"
read -ra steps <<< "${GPU_CHECK_STEPS:-$all_steps}"
for name in "${steps[@]}"; do
  [[ " $all_steps " == *" $name "* ]] || { echo "gpu_check: unknown step '$name' (one of: $all_steps)" >&2; exit 2; }
done

# Summary: steps, gtest counts, device and torch, the benchmark's results;
# then the logs as one archive (few files come back from the GPU machine).
finish() {
"$python" - "$out" "$status_file" "$failed" <<'PY'
import json, os, subprocess, sys, platform
out, status_file, failed = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
steps = {}
for line in open(status_file):
    name, rc, seconds = line.rstrip("\n").split("\t")
    steps[name] = {"rc": int(rc), "seconds": int(seconds)}

def gtest_counts(path):
    if not os.path.exists(path):
        return None
    counts = {"passed": 0, "failed": 0, "skipped": 0, "failures": []}
    for suite in json.load(open(path)).get("testsuites", []):
        for case in suite.get("testsuite", []):
            name = suite["name"] + "." + case["name"]
            if case.get("failures"):
                counts["failed"] += 1
                counts["failures"].append({"test": name, "messages": [f["failure"][:2000] for f in case["failures"]]})
            elif case.get("result") == "SKIPPED" or case.get("status") == "NOTRUN":
                counts["skipped"] += 1
            else:
                counts["passed"] += 1
    return counts

def merged_counts(folder):
    files = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    merged = None
    for name in files:
        counts = gtest_counts(os.path.join(folder, name))
        if counts is None:
            continue
        merged = merged or {"passed": 0, "failed": 0, "skipped": 0, "failures": [], "binaries": []}
        for key in ("passed", "failed", "skipped", "failures"):
            merged[key] += counts[key]
        merged["binaries"].append(name)
    return merged

try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=30).stdout.strip() or None
except Exception:
    gpu = None
try:
    import torch
    torch_info = {"version": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
except Exception as e:
    torch_info = {"error": str(e)}
def load(path):
    try:
        return json.load(open(path))
    except Exception:
        return None
bench = load(os.path.join(out, "bench_kernels.json"))
summary = {
    "ok": not failed,
    "host": platform.node(),
    "gpu": gpu,
    "torch": torch_info,
    "steps": steps,
    "gpu_tests": merged_counts(os.path.join(out, "logs", "gpu_tests")),
    "kernel_reference_test": gtest_counts(os.path.join(out, "logs", "kernel_reference_test.json")),
    "lm_head_test": gtest_counts(os.path.join(out, "logs", "lm_head_test.json")),
    "bench": bench,
    "bench_train_step": load(os.path.join(out, "bench_train_step.json")),
    "bench_hf_step": load(os.path.join(out, "bench_hf_step.json")),
    "bench_lora_step": load(os.path.join(out, "bench_lora_step.json")),
    "bench_hf_lora_step": load(os.path.join(out, "bench_hf_lora_step.json")),
    "ddp_nccl": load(os.path.join(out, "ddp_nccl.json")),
}
json.dump(summary, open(os.path.join(out, "gpu_check.json"), "w"), indent=2)
print(json.dumps({k: summary[k] for k in ("ok", "gpu", "torch", "steps", "gpu_tests", "kernel_reference_test",
                                          "lm_head_test", "bench_train_step", "bench_hf_step", "bench_lora_step",
                                          "bench_hf_lora_step", "ddp_nccl")}, indent=2))
for r in (bench or {}).get("results", []):
    if r["pass"] == "backward_in_chain" or r["fused_fraction_of_peak"] < 0.8:
        print(r["op"], r["pass"], r["dtype"], r["shape"], "fused_ms", r["fused_ms"], "of_peak", r["fused_fraction_of_peak"])
for r in (bench or {}).get("lora_projection", []):
    print(r["shape"], "base", r["base_ms"], "peft", r["peft_ms"], "addmm", r["addmm_ms"], "fused", r.get("fused_ms"),
          "fused_could_save", r["most_a_fused_kernel_saves"])
for r in (bench or {}).get("lm_head", []):
    print(r["path"], r["hidden"], r["chunk_rows"], "ms", r["ms"], "x_matmul", r["ratio_to_matmul_bound"],
          "mem_ratio", r["memory_ratio_to_unfused"], "speedup", r["speedup_vs_unfused"])
PY
tar -czf "$out/logs.tgz" -C "$out" logs && rm -rf "$out/logs"
}

failed=0
child=""
stopped() {
  if [ -n "$child" ]; then  # the step's own processes, then the step
    command -v pkill > /dev/null && pkill -TERM -P "$child" 2>/dev/null
    kill "$child" 2>/dev/null
  fi
  echo "gpu_check: stopped; writing what there is"
  failed=1
  exit 1
}
trap stopped TERM INT
trap finish EXIT

if step unpack unpack && step configure configure && step build build_targets; then
  for name in "${steps[@]}"; do
    step "$name" "$name" || failed=1
  done
else
  failed=1
fi
exit "$failed"
