#!/usr/bin/env python3
"""Two processes equal one (issue 18's global step): a run on 2 processes
with grad_accumulation G (c10d over Gloo on this CPU, launched by torchrun,
or as srun launches with --srun) against one process with grad_accumulation
2G on the same data: the per-step losses, gradient norms, the recipe's
metrics (against each one's largest value over the run; DPO's rewards
against beta x the log-probs', whose differences they are) and the eval
losses within 1e-5 relative, and the final weights
(or adapter) within 1e-5 relative per tensor (fp32: the two differ only in
the order the gradients are summed). Rank 0 alone writes the run dir.

With distributed.mode=fsdp (fully sharded) also: each checkpoint holds one
optimizer-state file per process; its HF weights load in transformers and
equal the one-process checkpoint's; and a 2-process run resumed from it
(in a new dir) repeats the uninterrupted run's later losses and final
weights bit for bit.

  ddp_test.py SALAMANDRA_TUNE WORK_DIR [--command sft|dpo] [--srun] [section.key=value ...]
"""
import json
import os
import shutil
import sys

import numpy as np
from safetensors.numpy import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "train"))
sys.path.insert(0, HERE)
from launch import srun_like, torchrun  # noqa: E402
from sft_fixture import make_model_and_data, make_pairs, must, run, write_recipe  # noqa: E402

ST, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
COMMAND, SRUN, OVERRIDES = "sft", False, []
rest = sys.argv[3:]
while rest:
    word = rest.pop(0)
    if word == "--command":
        COMMAND = rest.pop(0)
    elif word == "--srun":
        SRUN = True
    else:
        OVERRIDES.append(word)
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
TOLERANCE = 1e-5
failures = []

model, data = make_model_and_data(ST, WORK)
if COMMAND == "dpo":
    data = make_pairs(data, os.path.join(WORK, "pairs.jsonl"))
G, STEPS = 2, 8
recipe = write_recipe(os.path.join(WORK, "recipe.toml"), model, data, WORK, "float32", {
    "training": {"max_steps": STEPS, "micro_batch_rows": 2},
    "schedule": {"warmup_steps": 2},
    "checkpointing": {"every_steps": 4},
    "logging": {"eval_every_steps": 4, "plot": True},
})

one = os.path.join(WORK, "one")
must(run(ST, COMMAND, recipe, f"training.output_dir={one}", f"training.grad_accumulation={2 * G}", *OVERRIDES),
     "one process")
two = os.path.join(WORK, "two")
args = [COMMAND, recipe, f"training.output_dir={two}", f"training.grad_accumulation={G}", *OVERRIDES]
if SRUN:
    processes = srun_like(ST, 2, args)
    outputs = [p.communicate(timeout=900) for p in processes]
    for rank, (p, (out, err)) in enumerate(zip(processes, outputs)):
        if p.returncode != 0:
            sys.exit(f"rank {rank} (srun-style) exited {p.returncode}:\n{out[-2000:]}\n{err[-3000:]}")
    log = outputs[0][0]
else:
    log = must(torchrun(ST, 2, args, timeout=900), "two processes (torchrun)").stdout
if "2 processes (gloo" not in log:
    failures.append(f"the 2-process run does not say it ran on 2 processes over gloo:\n{log[-1500:]}")


def records(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def relative(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-30)


# Losses compare per step; every other metric against its largest size over
# the run: DPO's mean logits and reward margins cross zero, where a per-step
# relative difference would measure their cancellation, not a disagreement.
PER_STEP = ("loss", "eval_loss", "eval_ppl", "lr", "grad_norm")
COUNTS = ("step", "epoch", "tokens", "trained_tokens", "pairs")
RANK0_ONLY = {"all_reduce_s", "buckets_in_backward"}  # a multi-process run's timings
MEASURED = ("elapsed_s", "tokens_per_s", "rss_mb")  # of the machine, not of the computation


BETA = next((float(o.split("=", 1)[1]) for o in OVERRIDES if o.startswith("dpo.beta=")), 0.1)  # dpo.beta's default


def reward_scale(key, scale):
    """DPO's rewards are beta x (policy - reference) summed log-probs: their
    rounding is that of the log-probs they are differences of, so they are
    measured against beta x the log-probs' largest size (with LoRA, whose
    adapters start at zero, the rewards are a small difference of large
    log-probs, and their own size would measure the cancellation)."""
    if "rewards/" not in key or key.endswith("accuracies"):
        return 0.0
    prefix = "eval_" if key.startswith("eval_") else ""
    return BETA * max(scale.get(prefix + "logps/chosen", 0.0), scale.get(prefix + "logps/rejected", 0.0))


def differences(other, base):
    """The worst relative difference per metric (and "final weights", per
    tensor against its largest value) of run `other` from run `base`."""
    worst, got, want = {}, records(other), records(base)
    scale = {}
    for w in want:
        for key, value in w.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                scale[key] = max(scale.get(key, 0.0), abs(value))
    if len(got) != len(want):
        failures.append(f"{len(got)} records in {other}, {len(want)} in {base}")
    for g, w in zip(got, want):
        if g.get("step") != w.get("step") or set(g) - RANK0_ONLY != set(w) - RANK0_ONLY:
            failures.append(f"record keys differ at step {w.get('step')}: {sorted(set(g) ^ set(w))}")
            continue
        for key, value in w.items():
            if key in ("samples", *MEASURED, *RANK0_ONLY) or not isinstance(value, (int, float)):
                continue
            if isinstance(value, bool) or key in COUNTS:
                if g[key] != value:
                    failures.append(f"step {w['step']}: {key} {g[key]} in {other}, {value} in {base}")
                continue
            difference = relative(g[key], value) if key in PER_STEP else \
                abs(g[key] - value) / max(scale[key], reward_scale(key, scale), 1e-30)
            worst[key] = max(worst.get(key, 0.0), difference)
    final = "adapter_model.safetensors" if os.path.exists(os.path.join(base, "final", "adapter_model.safetensors")) \
        else "model.safetensors"
    a, b = load_file(os.path.join(other, "final", final)), load_file(os.path.join(base, "final", final))
    if set(a) != set(b):
        failures.append(f"final tensors differ: {sorted(set(a) ^ set(b))[:5]}")
    worst["final weights"] = 0.0
    for name in b:
        if name in a:
            top = max(float(np.abs(b[name]).max()), 1e-30)
            worst["final weights"] = max(worst["final weights"],
                                         float(np.abs(a[name].astype(np.float64) - b[name]).max()) / top)
    return worst


worst = differences(two, one)
for key, value in worst.items():
    if value > TOLERANCE:
        failures.append(f"{key}: relative difference {value:.3g} > {TOLERANCE}")
for item in ("training.svg", "recipe.toml", os.path.join("final", "README.md")):
    if not os.path.exists(os.path.join(two, item)):
        failures.append(f"the 2-process run dir lacks {item}")

report = {}
if "distributed.mode=fsdp" in OVERRIDES:
    if "fully sharded (fsdp)" not in log:
        failures.append(f"the fsdp run does not say it sharded the model:\n{log[-1500:]}")
    checkpoint = os.path.join(two, "checkpoint-4")
    parts = sorted(f for f in os.listdir(checkpoint) if f.startswith("training_state."))
    if parts != [f"training_state.rank-{r:05d}-of-00002.safetensors" for r in range(2)]:
        failures.append(f"the fsdp checkpoint's optimizer state is not one file per process: {parts}")
    adapter = os.path.exists(os.path.join(checkpoint, "adapter_model.safetensors"))
    if not adapter:
        import torch
        from transformers import AutoModelForCausalLM
        loaded = AutoModelForCausalLM.from_pretrained(checkpoint, torch_dtype=torch.float32)
        single = load_file(os.path.join(one, "checkpoint-4", "model.safetensors"))
        state = {k: v.numpy() for k, v in loaded.state_dict().items()}
        worst_loaded = max(float(np.abs(state[name] - want).max()) / max(float(np.abs(want).max()), 1e-30)
                           for name, want in single.items())
        report["transformers_checkpoint_vs_one_process"] = worst_loaded
        if worst_loaded > TOLERANCE:
            failures.append(f"the fsdp checkpoint loaded by transformers differs from the 1-process one by "
                            f"{worst_loaded:.3g} > {TOLERANCE}")
    resumed = os.path.join(WORK, "resumed")
    args = [COMMAND, recipe, f"training.output_dir={resumed}", f"training.grad_accumulation={G}", "--resume",
            checkpoint, *OVERRIDES]
    must(torchrun(ST, 2, args, timeout=900), "two processes resumed from the fsdp checkpoint")
    later = [r for r in records(two) if r["step"] > 4 and "loss" in r]
    again = [r for r in records(resumed) if "loss" in r]
    if [r["loss"] for r in later] != [r["loss"] for r in again]:
        failures.append(f"the resumed fsdp run's losses {[r['loss'] for r in again]} are not the uninterrupted "
                        f"run's {[r['loss'] for r in later]}")
    final = "adapter_model.safetensors" if adapter else "model.safetensors"
    a, b = load_file(os.path.join(resumed, "final", final)), load_file(os.path.join(two, "final", final))
    if set(a) != set(b) or any(not np.array_equal(a[k], b[k]) for k in b):
        failures.append("the resumed fsdp run's final weights are not the uninterrupted run's")
    report["resumed_steps_equal"] = len(again)

print(json.dumps({**report, "command": COMMAND, "launcher": "srun" if SRUN else "torchrun", "overrides": OVERRIDES,
                  "steps": STEPS, "worst_relative": worst, "tolerance": TOLERANCE}, indent=1))
if failures:
    sys.exit("FAIL:\n" + "\n".join(failures))
print("ok: 2 processes equal one")
