#!/usr/bin/env python3
"""Kill-and-resume equals uninterrupted: an SFT run killed with SIGKILL at a
random step and resumed with --resume gives the same per-step losses, bit
for bit, and the same final weights as a run that was never interrupted.
Also: a run dir with checkpoints refuses a fresh start, and a resume with
changed training settings is refused.

  resume_test.py SALAMANDRA_TUNE WORK_DIR [--dtype float32|bfloat16] [section.key=value ...]
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

ST, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
DTYPE = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--dtype" else "float32"
OVERRIDES = sys.argv[5:] if len(sys.argv) > 4 and sys.argv[3] == "--dtype" else sys.argv[3:]
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
failures = []


def run(*args, **kw):
    return subprocess.run([ST, *args], text=True, capture_output=True, **kw)


def must(result, what):
    if result.returncode != 0:
        sys.exit(f"{what} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result


# A tokenizer, a tiny model and some multilingual chats.
rng = random.Random(7)
words = "hola bon dia adéu gràcies casa gat gos sol lluna aigua pa vi mar muntanya riu ciutat poble".split()
corpus = os.path.join(WORK, "corpus.txt")
with open(corpus, "w") as f:
    for _ in range(3000):
        f.write(" ".join(rng.choice(words) for _ in range(12)) + "\n")
must(run("build-tokenizer", "--input", corpus, "--out", os.path.join(WORK, "tok"), "--vocab-size", "520"), "tokenizer")
must(run("init", "--preset", "tiny", "--out", os.path.join(WORK, "model"), "--tokenizer", os.path.join(WORK, "tok"),
         "--vocab-size", "520", "--dtype", "float32", "--seed", "3"), "init")
data = os.path.join(WORK, "chats.jsonl")
with open(data, "w") as f:
    for _ in range(120):
        turns = []
        for _ in range(rng.randint(1, 3)):
            turns.append({"role": "user", "content": " ".join(rng.choice(words) for _ in range(rng.randint(2, 9)))})
            turns.append({"role": "assistant", "content": " ".join(rng.choice(words) for _ in range(rng.randint(1, 12)))})
        f.write(json.dumps({"messages": turns}) + "\n")

STEPS = 24
recipe = os.path.join(WORK, "recipe.toml")
with open(recipe, "w") as f:
    f.write(f"""[model]
path = "{WORK}/model"
dtype = "{DTYPE}"
[data]
train = ["{data}"]
max_length = 128
cache_dir = "{WORK}/cache"
eval_ratio = 0.1
[training]
max_steps = {STEPS}
micro_batch_rows = 2
grad_accumulation = 2
threads = 1
[optimizer]
lr = 3e-3
weight_decay = 0.1
[schedule]
warmup_steps = 3
min_lr_ratio = 0.1
[checkpointing]
every_steps = 3
keep_last = 2
[logging]
eval_every_steps = 8
plot = false
""")


def losses(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    return [(r["step"], r["loss"], r["grad_norm"]) for r in records if "loss" in r]


def weights(run_dir):
    with open(os.path.join(run_dir, "final", "model.safetensors"), "rb") as f:
        return f.read()


whole = os.path.join(WORK, "whole")
must(run("sft", recipe, f"training.output_dir={whole}", *OVERRIDES), "uninterrupted run")
reference = losses(whole)
assert len(reference) == STEPS, reference

# Killed at a random step after the first checkpoint, then resumed (twice).
killed = os.path.join(WORK, "killed")
for attempt, kill_after in enumerate(sorted(random.Random(int(time.time())).sample(range(4, STEPS - 1), 2))):
    args = [ST, "sft", recipe, f"training.output_dir={killed}", *OVERRIDES] + (["--resume"] if attempt else [])
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = os.path.join(killed, "metrics.jsonl")
    while proc.poll() is None:
        if os.path.exists(metrics) and sum(1 for _ in open(metrics)) >= kill_after:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    print(f"killed after step >= {kill_after} (exit {proc.returncode})")
must(run("sft", recipe, f"training.output_dir={killed}", *OVERRIDES, "--resume"), "resumed run")
resumed = losses(killed)
if resumed != reference:
    for a, b in zip(resumed, reference):
        if a != b:
            failures.append(f"first difference at step {b[0]}: resumed {a} vs uninterrupted {b}")
            break
    if len(resumed) != len(reference):
        failures.append(f"{len(resumed)} steps logged after resume, {len(reference)} uninterrupted")
if weights(killed) != weights(whole):
    failures.append("final weights differ between the resumed and the uninterrupted run")

# Refusals.
r = run("sft", recipe, f"training.output_dir={whole}", *OVERRIDES)
if r.returncode != 1 or "--resume" not in r.stderr:
    failures.append(f"a fresh start into a run dir with checkpoints was not refused: {r.returncode} {r.stderr}")
r = run("sft", recipe, f"training.output_dir={whole}", *OVERRIDES, "optimizer.lr=1e-2", "--resume")
if r.returncode != 1 or "other model/data/training settings" not in r.stderr:
    failures.append(f"a resume with another lr was not refused: {r.returncode} {r.stderr}")

print(json.dumps({"steps": STEPS, "dtype": DTYPE, "overrides": OVERRIDES, "identical_losses": resumed == reference, "failures": failures}))
sys.exit(1 if failures else 0)
