#!/usr/bin/env python3
"""DPO's reference models give the same runs however they are held:
  - with LoRA, the base with the adapters switched off (no second copy)
    equals a separate frozen copy of the base (dpo.reference = the model
    dir): per-step losses and metrics bit for bit, since both are the same
    computation on the same weights;
  - a run with dpo.precompute_reference = true (the reference's log-probs
    computed once, in batches of its own, and read back) equals the
    live-reference run step for step: losses and metrics within 1e-6
    relative (fp32 sums over differently shaped batches differ in their
    last bits, ~1e-7 of the summed log-probs), for full fine-tuning (the
    initial policy) and LoRA; a second run reuses the cache, as does a
    separate reference of the same weights, and other weights get their own;
  - evaluation reports TRL's metrics on the eval split (eval_rewards/...);
  - the plot shows the reward margin and accuracy.

  dpo_reference_test.py SALAMANDRA_TUNE WORK_DIR
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "train"))
from sft_fixture import make_model_and_data, make_pairs, must, run, write_recipe  # noqa: E402

ST, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
failures = []
METRICS = ["loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
           "logps/rejected", "logits/chosen", "logits/rejected"]

BETA = 0.2
model, chats = make_model_and_data(ST, WORK)
pairs = make_pairs(chats, os.path.join(WORK, "pairs.jsonl"))
recipe = write_recipe(os.path.join(WORK, "recipe.toml"), model, pairs, WORK, "float32", {
    "training": {"max_steps": 8},
    "checkpointing": {"every_steps": 100},
    "logging": {"eval_every_steps": 4, "plot": True},
    "dpo": {"loss": ["sigmoid", "sft"], "loss_weights": [1.0, 0.2], "beta": BETA},
})
LORA = ["lora.rank=4", "lora.targets=[\"all-linear\"]"]


def dpo(name, *overrides):
    out = os.path.join(WORK, name)
    result = must(run(ST, "dpo", recipe, f"training.output_dir={out}", *overrides), name)
    with open(os.path.join(out, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    return [r for r in records if "loss" in r], [r for r in records if "eval_loss" in r], result.stdout, out


def compare(name, got, want, bound):
    """Per-step metrics within `bound` relative; rewards (beta times a
    difference of summed log-probs) relative to beta |logps|, the scale of
    what they are differences of, and the rest to at least 1."""
    worst = 0.0
    if len(got) != len(want):
        failures.append(f"{name}: {len(got)} steps against {len(want)}")
    for a, b in zip(got, want):
        for key in METRICS:
            scale = BETA * abs(b["logps/chosen"]) if key.startswith("rewards/") else 1.0
            err = abs(a[key] - b[key]) / max(abs(b[key]), scale)
            worst = max(worst, err)
            if err > bound:
                failures.append(f"{name} step {a['step']}: {key} {a[key]!r} against {b[key]!r}")
    return worst


summary = {}
# LoRA: adapters off against a separate copy of the base.
off, off_eval, off_log, _ = dpo("lora-adapters-off", *LORA)
copy, _, copy_log, _ = dpo("lora-copy", *LORA, f"dpo.reference={model}")
if "adapters switched off" not in off_log or "frozen" not in copy_log:
    failures.append(f"the runs do not say which reference they use:\n{off_log}\n{copy_log}")
summary["adapters_off_vs_copy"] = compare("adapters off vs copy", off, copy, 0.0)

# Precomputed against live, LoRA and full.
pre, _, pre_log, _ = dpo("lora-precomputed", *LORA, "dpo.precompute_reference=true")
if "computed" not in pre_log or "no reference model in memory" not in pre_log:
    failures.append(f"the precomputing run does not report its pass:\n{pre_log}")
summary["lora_precomputed_vs_live"] = compare("LoRA precomputed vs live", pre, off, 1e-6)
live, _, _, _ = dpo("full-live")
full_pre, full_eval, _, full_dir = dpo("full-precomputed", "dpo.precompute_reference=true")
summary["full_precomputed_vs_live"] = compare("full precomputed vs live", full_pre, live, 1e-6)
_, _, again_log, _ = dpo("full-precomputed-again", "dpo.precompute_reference=true")
if "(reused)" not in again_log:
    failures.append(f"a second precomputing run did not reuse the cache:\n{again_log}")
# The same weights as a separate reference reuse the cache; other weights do not.
_, _, same_log, _ = dpo("same-reference", "dpo.precompute_reference=true", f"dpo.reference={model}", *LORA)
if "(reused)" not in same_log:
    failures.append(f"a run with the same reference weights did not reuse the cache:\n{same_log}")
other = os.path.join(WORK, "other-model")
must(run(ST, "init", "--preset", "tiny", "--out", other, "--tokenizer", os.path.join(WORK, "tok"), "--dtype", "float32",
         "--seed", "4"), "init")
_, _, other_log, _ = dpo("other-reference", "dpo.precompute_reference=true", f"dpo.reference={other}", *LORA)
if "(reused)" in other_log:
    failures.append("a run with another reference model reused the cache")

# Evaluation and the plot.
for records, name in ((off_eval, "LoRA"), (full_eval, "full")):
    if not records or any(f"eval_{m}" not in records[-1] for m in METRICS[1:]):
        failures.append(f"{name}: the evaluation does not report TRL's metrics: {records[-1:]}")
with open(os.path.join(full_dir, "training.svg")) as f:
    svg = f.read()
for label in ("reward margin", "reward accuracy"):
    if label not in svg:
        failures.append(f"training.svg has no {label}")

summary["failures"] = failures
print(json.dumps(summary, indent=1))
sys.exit(1 if failures else 0)
