#!/usr/bin/env python3
"""Benchmark (not a test), for the GPU machine (scripts/gpu_check.sh's
ddp_nccl step): the same SFT run as one plain process and as a 1-process
c10d job under torchrun (NCCL on CUDA: it must initialise and all-reduce
every step), in one run: step time of each (medians after --warmup steps),
the all-reduce's wait, and whether the losses agree (a sum over one process
changes nothing: they should be equal). Then the same 1-process job fully
sharded (distributed.mode = "fsdp": one shard, but every layer gathered,
every gradient reduce-scattered through NCCL, recomputation on, the LM
head's gradient through autograd): its step time and how far its losses
are from the plain run's (bf16 roundings differ). With --device cpu it runs
over Gloo (the dry run on a machine without a GPU).

Model: Salamandra architecture, hidden 2048, 16 layers, 16 heads (8 KV), FFN
5440, the tokenizer's 1500-piece vocabulary: 0.8 B parameters, bf16 with fp32
masters. Data: `make-tasks` chats, packed rows of 1024 tokens, 8 per
micro-batch, one micro-batch per step.

Usage: bench_ddp_nccl.py SALAMANDRA_TUNE [--work DIR] [--device cuda|cpu] [--steps N] [--warmup N]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

from bench_ddp import step_figures


def run(args, **kw):
    result = subprocess.run(args, text=True, capture_output=True, **kw)
    if result.returncode != 0:
        sys.exit(f"{args[:3]} exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("st")
    parser.add_argument("--work", default="/tmp/st-bench-ddp-nccl")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--rows", type=int, default=8)
    a = parser.parse_args()
    st = os.path.abspath(a.st)
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    tasks, tok, model = (os.path.join(a.work, n) for n in ("tasks", "tok", "model"))
    run([st, "make-tasks", "--out", tasks, "--train", "3000", "--test", "10", "--pairs", "10"])
    run([st, "build-tokenizer", "--input", os.path.join(tasks, "corpus.txt"), "--out", tok, "--vocab-size", "1500"])
    config = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 1500,
              "hidden_size": a.hidden, "intermediate_size": a.hidden * 85 // 32, "num_hidden_layers": a.layers,
              "num_attention_heads": 16, "num_key_value_heads": 8, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
              "max_position_embeddings": 4096, "tie_word_embeddings": False}
    with open(os.path.join(a.work, "config.json"), "w") as f:
        json.dump(config, f)
    run([st, "init", "--config", os.path.join(a.work, "config.json"), "--out", model, "--dtype", "bfloat16",
         "--tokenizer", tok, "--seed", "1"])
    recipe = os.path.join(a.work, "recipe.toml")
    with open(recipe, "w") as f:
        f.write(f"""[model]
path = "{model}"
dtype = "bfloat16"
device = "{a.device}"
[data]
train = ["{os.path.join(tasks, 'train.jsonl')}"]
max_length = 1024
cache_dir = "{os.path.join(a.work, 'cache')}"
[training]
max_steps = {a.steps}
micro_batch_rows = {a.rows}
[optimizer]
lr = 1e-4
[schedule]
kind = "constant"
[logging]
plot = false
""")
    plain, c10d = os.path.join(a.work, "plain"), os.path.join(a.work, "c10d")
    # The same CPU threads for both (torchrun would set 1).
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(os.cpu_count())))
    run([st, "sft", recipe, f"training.output_dir={plain}"], env=env)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "1", "--master-port", "29541",
                "--no-python"]
    log = run([*torchrun, st, "sft", recipe, f"training.output_dir={c10d}"], env=env).stdout
    fsdp = os.path.join(a.work, "fsdp")
    fsdp_log = run([*torchrun, st, "sft", recipe, f"training.output_dir={fsdp}", "distributed.mode=fsdp"],
                   env=env).stdout
    backend = "nccl" if a.device == "cuda" else "gloo"
    p, d, s = step_figures(plain, a.warmup), step_figures(c10d, a.warmup), step_figures(fsdp, a.warmup)
    report = {"device": a.device, "backend": backend, "config": config, "rows": a.rows, "max_length": 1024,
              "backend_line": [line for line in log.splitlines() if "process" in line and "launched by" in line],
              "plain": p, "one_process_c10d": d, "step_time_ratio": d["step_s"] / p["step_s"],
              "losses_equal": p["loss"] == d["loss"],
              "max_loss_relative_difference": max(abs(x - y) / abs(y) for x, y in zip(d["loss"], p["loss"])),
              "fsdp_line": [line for line in fsdp_log.splitlines() if "fully sharded" in line],
              "one_process_fsdp": s, "fsdp_step_time_ratio": s["step_s"] / p["step_s"],
              "fsdp_max_loss_relative_difference": max(abs(x - y) / abs(y) for x, y in zip(s["loss"], p["loss"]))}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
