#!/usr/bin/env python3
"""Sending gradient buckets during the backward pass changes no result: 2
processes with distributed.overlap = true and = false give bit-identical
losses and final weights (the same buckets, summed in the same order),
while the overlapped run sent buckets during backward and the other none.
Run on a bf16 model with fp32 masters (the hooks fold each gradient into
its master accumulator) with activation recomputation (whose replayed
forward must not accumulate a parameter twice), with small buckets so
that there are many.

  overlap_test.py SALAMANDRA_TUNE WORK_DIR [section.key=value ...]
"""
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "train"))
sys.path.insert(0, HERE)
from launch import torchrun  # noqa: E402
from sft_fixture import first_difference, losses, make_model_and_data, must, weights, write_recipe  # noqa: E402

ST, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
OVERRIDES = sys.argv[3:]
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
failures = []

model, data = make_model_and_data(ST, WORK)
recipe = write_recipe(os.path.join(WORK, "recipe.toml"), model, data, WORK, "bfloat16", {
    "model": {"activation_checkpointing": True},
    "training": {"max_steps": 6, "micro_batch_rows": 2, "grad_accumulation": 2},
    "checkpointing": {"every_steps": 0},
    "distributed": {"bucket_mb": 1},
})
runs = {}
for overlap in (True, False):
    out = os.path.join(WORK, f"overlap_{str(overlap).lower()}")
    must(torchrun(ST, 2, ["sft", recipe, f"training.output_dir={out}", f"distributed.overlap={str(overlap).lower()}",
                          *OVERRIDES], timeout=900), f"2 processes, overlap {overlap}")
    with open(os.path.join(out, "metrics.jsonl")) as f:
        early = [json.loads(line).get("buckets_in_backward") for line in f if '"loss"' in line]
    runs[overlap] = (out, early)

on, off = runs[True], runs[False]
difference = first_difference(losses(on[0]), losses(off[0]))
if difference:
    failures.append("overlap changed the losses: " + difference)
if weights(on[0]) != weights(off[0]):
    failures.append("overlap changed the final weights")
if not all(n and n > 0 for n in on[1]):
    failures.append(f"with overlap, steps sent no bucket during backward: {on[1]}")
if any(n != 0 for n in off[1]):
    failures.append(f"without overlap, buckets were sent during backward: {off[1]}")
print(json.dumps({"buckets_in_backward": {"overlap": on[1], "no_overlap": off[1]}}))
if failures:
    sys.exit("FAIL:\n" + "\n".join(failures))
print("ok: overlap sends buckets during backward and changes nothing")
