#!/usr/bin/env python3
"""Benchmark (not a test): our model vs transformers, side by side in one run
on this machine; prints JSON with absolute figures and ratios.

1. forward: a small Salamandra-architecture config with the real 256k
   vocabulary; per-token log-probs of a random sequence (hidden states + LM
   head + log-softmax gather: the work of `score`), tokens/s and peak RSS.
   transformers materialises [T x 256k] logits; we compute them in chunks.
2. load: a 2B-preset checkpoint (bf16 safetensors, 4.5 GB) loaded in bf16,
   seconds and peak RSS, next to its size on disk.

Each measurement runs in its own process (peak RSS is per process).
Usage: benchmarks/bench_model.py [--work DIR] [--skip-2b] [--seq N] [--iters N] [--threads N]
"""
import argparse
import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
PY = sys.executable

HF_CHILD = textwrap.dedent("""
    import json, resource, sys, time, torch
    from transformers import AutoModelForCausalLM
    mode, path, dtype = sys.argv[1], sys.argv[2], getattr(torch, sys.argv[3])
    torch.set_grad_enabled(False)
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).eval()
    out = {"load_s": time.perf_counter() - start}
    if mode == "forward":
        steps, iters = int(sys.argv[4]), int(sys.argv[5])
        ids = torch.randint(4, model.config.vocab_size, (1, steps))
        def run():
            logits = model(ids).logits[0, :-1].float()
            return torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None])
        run()
        start = time.perf_counter()
        for _ in range(iters):
            run()
        out["tokens_per_s"] = steps * iters / (time.perf_counter() - start)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))
""")


def child(cmd, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    result = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def ours(args, threads):
    return child([os.path.join(BUILD, "bench_model"), *args], threads)


def theirs(args, threads):
    return child([PY, "-c", HF_CHILD, *args], threads)


def init(out, *args):
    if not os.path.exists(out):
        subprocess.run([os.path.join(BUILD, "salamandra-tune"), "init", "--out", out, *args], check=True,
                       stdout=subprocess.DEVNULL)


def dir_size(path):
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path) if f.endswith(".safetensors"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default=os.path.join(ROOT, "build", "bench"))
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--skip-2b", action="store_true")
    a = parser.parse_args()
    os.makedirs(a.work, exist_ok=True)
    report = {"machine": {"cpus": os.cpu_count(), "threads": a.threads}}

    config = {"model_type": "llama", "vocab_size": 256000, "hidden_size": 256, "intermediate_size": 688,
              "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 4,
              "max_position_embeddings": 8192}
    config_path = os.path.join(a.work, "forward_config.json")
    with open(config_path, "w") as f:
        json.dump(config, f)
    small = os.path.join(a.work, "small-256k")
    init(small, "--config", config_path, "--dtype", "float32")
    fwd = ["forward", small, "float32", str(a.seq), str(a.iters)]
    o, t = ours(fwd, a.threads), theirs(fwd, a.threads)
    report["forward"] = {"config": config, "seq_len": a.seq, "dtype": "float32", "ours": o, "transformers": t,
                         "tokens_per_s_ratio": o["tokens_per_s"] / t["tokens_per_s"],
                         "peak_rss_ratio": o["peak_rss_mb"] / t["peak_rss_mb"]}

    if not a.skip_2b:
        big = os.path.join(a.work, "salamandra-2b")
        init(big, "--preset", "salamandra-2b", "--dtype", "bfloat16")
        load = ["load", big, "bfloat16"]
        o, t = ours(load, a.threads), theirs(load, a.threads)
        report["load_2b"] = {"size_on_disk_mb": dir_size(big) / 2**20, "ours": o, "transformers": t,
                             "load_time_ratio": o["load_s"] / t["load_s"],
                             "peak_rss_ratio": o["peak_rss_mb"] / t["peak_rss_mb"]}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
