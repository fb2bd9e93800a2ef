#!/usr/bin/env python3
"""Kill-and-resume equals uninterrupted: an SFT (or, with --command dpo, a DPO) run killed with SIGKILL at a
random step and resumed with --resume gives the same per-step losses, bit
for bit, and the same final weights as a run that was never interrupted.
Also: a run dir with checkpoints refuses a fresh start, and a resume with
changed training settings is refused. With lora.* overrides (a LoRA run:
its final dir and checkpoints are adapter dirs), the checkpoints must hold
the adapter and no base weights, and the adapter bytes must match.

  resume_test.py SALAMANDRA_TUNE WORK_DIR [--command sft|dpo] [--dtype float32|bfloat16] [section.key=value ...]
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sft_fixture import (first_difference, losses, make_model_and_data, make_pairs, must, weights,  # noqa: E402
                         write_recipe)

ST, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
DTYPE, COMMAND, OVERRIDES = "float32", "sft", []
rest = sys.argv[3:]
while rest:
    if rest[0] in ("--dtype", "--command"):
        if rest[0] == "--dtype":
            DTYPE = rest[1]
        else:
            COMMAND = rest[1]
        rest = rest[2:]
    else:
        OVERRIDES.append(rest.pop(0))
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
failures = []


def run(*args, **kw):
    return subprocess.run([ST, *args], text=True, capture_output=True, **kw)


model, data = make_model_and_data(ST, WORK)
if COMMAND == "dpo":
    data = make_pairs(data, os.path.join(WORK, "pairs.jsonl"))
STEPS = 24
recipe = write_recipe(os.path.join(WORK, "recipe.toml"), model, data, WORK, DTYPE, {
    "training": {"max_steps": STEPS},
    "schedule": {"warmup_steps": 3, "min_lr_ratio": 0.1},
})

whole = os.path.join(WORK, "whole")
must(run(COMMAND, recipe, f"training.output_dir={whole}", *OVERRIDES), "uninterrupted run")
reference = losses(whole)
assert len(reference) == STEPS, reference

# Killed at a random step after the first checkpoint, then resumed (twice).
killed = os.path.join(WORK, "killed")
for attempt, kill_after in enumerate(sorted(random.Random(int(time.time())).sample(range(4, STEPS - 1), 2))):
    args = [ST, COMMAND, recipe, f"training.output_dir={killed}", *OVERRIDES] + (["--resume"] if attempt else [])
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = os.path.join(killed, "metrics.jsonl")
    while proc.poll() is None:
        if os.path.exists(metrics) and sum(1 for _ in open(metrics)) >= kill_after:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    print(f"killed after step >= {kill_after} (exit {proc.returncode})")
must(run(COMMAND, recipe, f"training.output_dir={killed}", *OVERRIDES, "--resume"), "resumed run")
resumed = losses(killed)
if difference := first_difference(resumed, reference):
    failures.append(f"resumed vs uninterrupted: {difference}")
if weights(killed) != weights(whole):
    failures.append("final weights differ between the resumed and the uninterrupted run")

# A LoRA run's checkpoints hold the adapter and its optimizer state, never the base.
if any(o.startswith("lora.") for o in OVERRIDES):
    for name in sorted(os.listdir(killed)):
        if name.startswith("checkpoint-"):
            files = set(os.listdir(os.path.join(killed, name)))
            if "model.safetensors" in files or "adapter_model.safetensors" not in files:
                failures.append(f"{name} of a LoRA run holds {sorted(files)}: expected the adapter, not the base")

# Refusals.
r = run(COMMAND, recipe, f"training.output_dir={whole}", *OVERRIDES)
if r.returncode != 1 or "--resume" not in r.stderr:
    failures.append(f"a fresh start into a run dir with checkpoints was not refused: {r.returncode} {r.stderr}")
r = run(COMMAND, recipe, f"training.output_dir={whole}", *OVERRIDES, "optimizer.lr=1e-2", "--resume")
if r.returncode != 1 or "other model/data/training settings" not in r.stderr:
    failures.append(f"a resume with another lr was not refused: {r.returncode} {r.stderr}")

print(json.dumps({"command": COMMAND, "steps": STEPS, "dtype": DTYPE, "overrides": OVERRIDES, "identical_losses": resumed == reference, "failures": failures}))
sys.exit(1 if failures else 0)
