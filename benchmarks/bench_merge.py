#!/usr/bin/env python3
"""Benchmark (not a test): merging a LoRA adapter into the Salamandra 2B
preset, `salamandra-tune merge` against PEFT's merge_and_unload() +
save_pretrained(), in one run on this machine's CPU; `cp` of the base's
safetensors is the disk-bound floor. Prints JSON: wall time and peak RSS of
each, and ratios (ours / PEFT).

The base: `init --preset salamandra-2b --dtype bfloat16` (2.25 B parameters,
256k vocabulary, random weights; 4.5 GB of safetensors), with a small
tokenizer's files beside it (merge copies them). The adapter: PEFT's
LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"), A and B random
(init_lora_weights=False), saved by PEFT. Both merges write bf16 shards of
transformers' default 5 GB limit. Ours is timed without and with its
self-check (the self-check reads the base and the merged model in fp32 for
a probe batch, one after the other). Peak RSS: /usr/bin/time for ours and
cp, getrusage in PEFT's process. The file pages of the page cache are not
RSS; every run reads the same files, warmed by a first read.

Also reported: how PEFT's bf16 merge differs from ours (PEFT adds the delta
in bf16, ours in fp32 rounded once): the fraction of merged elements that
differ, over the adapted tensors.

Usage: benchmarks/bench_merge.py [--work DIR] [--threads N]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

from bench_fixture import make_preset_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ST = os.path.join(ROOT, "build", "salamandra-tune")
PY = sys.executable

PEFT_CHILD = textwrap.dedent("""
    import json, resource, sys, time
    import torch
    base, adapter, out, threads = sys.argv[1:5]
    torch.set_num_threads(int(threads))
    start = time.perf_counter()
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16)
    model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    model.save_pretrained(out)
    print(json.dumps({"wall_s": time.perf_counter() - start,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")

MAKE_ADAPTER = textwrap.dedent("""
    import sys
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    base, out = sys.argv[1:3]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16)
    config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False,
                        task_type="CAUSAL_LM")
    get_peft_model(model, config).save_pretrained(out)
""")


def timed(args, work, name, env=None):
    rss = os.path.join(work, f"{name}_rss_kb")
    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss, *args], check=True, capture_output=True,
                            text=True, env=env)
    return {"wall_s": time.perf_counter() - start, "peak_rss_mb": int(open(rss).read().split()[-1]) / 1024,
            "stdout_tail": result.stdout.strip().splitlines()[-3:]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=os.path.join(ROOT, "build", "bench", "merge"))
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    a = parser.parse_args()
    a.work = os.path.abspath(a.work)
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))

    base, shards = make_preset_model(ST, a.work)
    adapter = os.path.join(a.work, "adapter")
    subprocess.run([PY, "-c", MAKE_ADAPTER, base, adapter], check=True, capture_output=True, env=env)

    floor_dir = os.path.join(a.work, "cp")
    os.makedirs(floor_dir)
    cp = timed(["cp", *shards, floor_dir], a.work, "cp")
    ours_dir = os.path.join(a.work, "ours")
    ours = timed([ST, "merge", "--base", base, "--adapter", adapter, "--out", ours_dir, "--dtype", "bfloat16",
                  "--no-check"], a.work, "ours", env)
    checked_dir = os.path.join(a.work, "ours_checked")
    ours_checked = timed([ST, "merge", "--base", base, "--adapter", adapter, "--out", checked_dir, "--dtype",
                          "bfloat16"], a.work, "ours_checked", env)
    shutil.rmtree(checked_dir)
    peft_dir = os.path.join(a.work, "peft")
    result = subprocess.run([PY, "-c", PEFT_CHILD, base, adapter, peft_dir, str(a.threads)], check=True,
                            capture_output=True, text=True, env=env)
    peft = json.loads(result.stdout.strip().splitlines()[-1])

    import torch
    from safetensors import safe_open
    differ = total = 0
    cfg = json.load(open(os.path.join(adapter, "adapter_config.json")))
    leaves = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

    def tensors(d):
        out = {}
        for f in sorted(os.listdir(d)):
            if f.endswith(".safetensors"):
                h = safe_open(os.path.join(d, f), "pt")
                out.update({k: (h, k) for k in h.keys()})
        return out
    mine, theirs = tensors(ours_dir), tensors(peft_dir)
    for name, (h, k) in mine.items():
        if name.endswith(".weight") and name.split(".")[-2] in leaves:
            x, y = h.get_tensor(k), theirs[name][0].get_tensor(name)
            differ += int((x != y).sum())
            total += x.numel()
    sizes = sum(os.path.getsize(p) for p in shards)
    report = {"machine": {"cpus": os.cpu_count(), "threads": a.threads},
              "base": {"preset": "salamandra-2b", "dtype": "bfloat16", "safetensors_bytes": sizes},
              "adapter": {"r": cfg["r"], "lora_alpha": cfg["lora_alpha"], "targets": "all-linear"},
              "cp_floor": cp, "ours": ours, "ours_with_self_check": ours_checked, "peft": peft,
              "wall_ratio_vs_peft": ours["wall_s"] / peft["wall_s"],
              "peak_rss_ratio_vs_peft": ours["peak_rss_mb"] / peft["peak_rss_mb"],
              "speed_vs_cp": cp["wall_s"] / ours["wall_s"],
              "adapted_elements_differing_from_peft": differ / max(total, 1)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
