#!/usr/bin/env python3
"""Benchmark (not a test): one optimizer step on 2 processes (c10d over
Gloo, launched by torchrun, 1 thread each) against 1 process (2 threads) on
the same global batch, on this machine's 2-core CPU: step time, and the
share of it the gradients' all-reduce takes (rank 0's all_reduce_s in
metrics.jsonl). The all-reduce runs after the last micro-batch's backward,
in buckets of distributed.bucket_mb, without and with overlap (buckets sent
during the last backward). Then the same step fully sharded
(distributed.mode = "fsdp": each layer gathered for its forward and its
recomputation, gradients reduce-scattered): its step time, and each run's
resident memory after a step (rank 0's rss_mb in metrics.jsonl), where the
sharded weights, gradients and AdamW state show. On 2 cores the processes
only split the compute that 2 threads split; the scaling figure is for the
GPU.

Model: as bench_sft.py's (Salamandra architecture, hidden 256, 4 layers,
the real 256k vocabulary: 135M parameters, 540 MB of fp32 gradients, most
of them the embedding's and LM head's). Data: the first --samples chats of
shared/data/gsm8k_chat. fp32, max_length 512, micro-batches of 2 padded
rows; the global step is 4 micro-batches (1 process: grad_accumulation 4;
2 processes: 2 each).

Usage: benchmarks/bench_ddp.py [--work DIR] [--steps N] [--warmup N] [--samples N] [--data DIR]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

from bench_fixture import SMALL_256K_CONFIG, gsm8k_chats, make_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ST = os.path.join(ROOT, "build", "salamandra-tune")
TORCHRUN = os.path.join(os.path.dirname(sys.executable), "torchrun")
GLOBAL_MICRO_BATCHES = 4


def recipe(path, model, data, work, out, accumulation, threads, steps, bucket_mb, overlap=True, mode="ddp"):
    with open(path, "w") as f:
        f.write(f"""[model]
path = "{model}"
dtype = "float32"
device = "cpu"
[data]
train = ["{data}"]
max_length = 512
packing = false
cache_dir = "{os.path.join(work, 'cache')}"
[training]
output_dir = "{out}"
max_steps = {steps}
micro_batch_rows = 2
grad_accumulation = {accumulation}
threads = {threads}
[optimizer]
lr = 1e-4
[schedule]
kind = "constant"
[logging]
plot = false
[distributed]
bucket_mb = {bucket_mb}
overlap = {"true" if overlap else "false"}
mode = "{mode}"
""")
    return path


def step_figures(run_dir, warmup):
    """A run's median step time after `warmup` steps (from metrics.jsonl's
    elapsed_s), its losses, and rank 0's all-reduce wait where logged."""
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if '"loss"' in line]
    elapsed = [r["elapsed_s"] for r in records]
    steps = [b - a for a, b in zip(elapsed, elapsed[1:])][warmup:]
    out = {"step_s": statistics.median(steps), "steps_s": steps, "loss": [r["loss"] for r in records],
           "rss_mb": statistics.median(r["rss_mb"] for r in records[warmup:])}
    if "all_reduce_s" in records[0]:
        reduce = [r["all_reduce_s"] for r in records][warmup + 1:]
        out["all_reduce_s"] = statistics.median(reduce)
        out["all_reduce_share"] = out["all_reduce_s"] / out["step_s"]
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default=os.path.join(ROOT, "build", "bench", "ddp"))
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--bucket-mb", type=int, default=25)
    parser.add_argument("--data", default=os.environ.get("ST_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data")))
    a = parser.parse_args()
    a.work = os.path.abspath(a.work)
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    records, data = gsm8k_chats(a.data, a.samples, a.work)
    config = SMALL_256K_CONFIG
    model = make_model(ST, a.work, records, config)

    one_dir = os.path.join(a.work, "one")
    one = recipe(os.path.join(a.work, "one.toml"), model, data, a.work, one_dir, GLOBAL_MICRO_BATCHES, 2, a.steps,
                 a.bucket_mb)
    subprocess.run([ST, "sft", one], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=dict(os.environ, OMP_NUM_THREADS="2"))
    two = {}
    for name, overlap, mode in (("no_overlap", False, "ddp"), ("overlap", True, "ddp"), ("fsdp", True, "fsdp")):
        out = os.path.join(a.work, name)
        path = recipe(os.path.join(a.work, f"{name}.toml"), model, data, a.work, out, GLOBAL_MICRO_BATCHES // 2, 1,
                      a.steps, a.bucket_mb, overlap, mode)
        subprocess.run([TORCHRUN, "--nproc-per-node", "2", "--master-port", "29533", "--no-python", ST, "sft", path],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
        two[name] = step_figures(out, a.warmup)
    o = step_figures(one_dir, a.warmup)
    gradient_bytes = 4 * sum(
        v for v in [config["vocab_size"] * config["hidden_size"] * 2,
                    config["num_hidden_layers"] * (
                        config["hidden_size"] * config["hidden_size"] * 2
                        + 2 * config["hidden_size"] * config["hidden_size"] * config["num_key_value_heads"]
                        // config["num_attention_heads"]
                        + 3 * config["hidden_size"] * config["intermediate_size"] + 2 * config["hidden_size"]),
                    config["hidden_size"]])
    report = {"machine": {"cpus": os.cpu_count()},
              "settings": {"config": config, "dtype": "float32", "global_micro_batches": GLOBAL_MICRO_BATCHES,
                           "micro_batch_rows": 2, "max_length": 512, "steps": a.steps, "warmup_excluded": a.warmup,
                           "bucket_mb": a.bucket_mb, "gradient_mb": gradient_bytes / 2**20,
                           "all_reduce_s": "rank 0's wait for the all-reduce after backward (with overlap: what backward "
                              "did not hide)"},
              "one_process_2_threads": o,
              "two_processes_gloo_1_thread": two,
              "step_time_ratio": {k: t["step_s"] / o["step_s"] for k, t in two.items()},
              "rss_ratio": {k: t["rss_mb"] / o["rss_mb"] for k, t in two.items()},
              "max_loss_relative_difference": max(abs(x - y) / abs(y) for t in two.values()
                                                  for x, y in zip(t["loss"], o["loss"]))}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
