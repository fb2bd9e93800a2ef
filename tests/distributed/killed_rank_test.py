#!/usr/bin/env python3
"""When a process of a multi-process run dies: rank 1 of 2 (launched as
srun launches them, so that no launcher cleans up after it) is killed with
SIGKILL mid-run; rank 0 must exit non-zero within distributed.timeout_s,
saying a collective failed. Resuming on 2 processes (torchrun) from the
last checkpoint then continues the loss sequence of an uninterrupted
2-process run bit for bit, with the same final weights. Also refused,
before anything is written: resuming that run's checkpoint in the other
distributed.mode (ddp's optimizer state is whole, fsdp's in a part per
process), and resuming it on 1 process.

  killed_rank_test.py SALAMANDRA_TUNE WORK_DIR [ddp|fsdp]
"""
import json
import os
import shutil
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "train"))
sys.path.insert(0, HERE)
from launch import srun_like, torchrun  # noqa: E402
from sft_fixture import first_difference, losses, make_model_and_data, run, weights, write_recipe  # noqa: E402

ST, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
MODE = sys.argv[3] if len(sys.argv) > 3 else "ddp"
OTHER_MODE = "ddp" if MODE == "fsdp" else "fsdp"
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
TIMEOUT_S = 20
failures = []
report = {}

model, data = make_model_and_data(ST, WORK)
STEPS = 16
recipe = write_recipe(os.path.join(WORK, "recipe.toml"), model, data, WORK, "float32", {
    "training": {"max_steps": STEPS, "grad_accumulation": 1},
    "schedule": {"warmup_steps": 2},
    "checkpointing": {"every_steps": 3, "keep_last": 0},
    "distributed": {"timeout_s": TIMEOUT_S, "mode": MODE},
})

whole = os.path.join(WORK, "whole")
result = torchrun(ST, 2, ["sft", recipe, f"training.output_dir={whole}"], timeout=900)
if result.returncode != 0:
    sys.exit(f"uninterrupted 2-process run failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
reference = losses(whole)

# Killed: rank 1 dies after step 7 (checkpoints at 3 and 6 exist).
killed = os.path.join(WORK, "killed")
ranks = srun_like(ST, 2, ["sft", recipe, f"training.output_dir={killed}"])
metrics = os.path.join(killed, "metrics.jsonl")
deadline = time.time() + 600
while time.time() < deadline:
    if os.path.exists(metrics):
        with open(metrics) as f:
            if sum('"loss"' in line for line in f) >= 7:
                break
    if any(p.poll() is not None for p in ranks):
        break
    time.sleep(0.05)
ranks[1].send_signal(signal.SIGKILL)
killed_at = time.time()
try:
    out, err = ranks[0].communicate(timeout=TIMEOUT_S + 30)
    seconds = time.time() - killed_at
except Exception:
    ranks[0].kill()
    out, err = ranks[0].communicate()
    seconds = None
ranks[1].communicate()
report["rank0_exit_code"] = ranks[0].returncode
report["rank0_seconds_after_kill"] = seconds
report["rank0_message"] = err.strip().splitlines()[-3:] if err.strip() else []
if seconds is None or seconds > TIMEOUT_S + 5:
    failures.append(f"rank 0 did not exit within {TIMEOUT_S} s of its peer's death ({seconds})")
if ranks[0].returncode in (0, None):
    failures.append(f"rank 0 exited {ranks[0].returncode} after its peer was killed")
if "rank 0 of 2" not in err or "failed" not in err:
    failures.append(f"rank 0's message does not say what failed:\n{err[-1500:]}")

# Resumed on 2 processes from the newest checkpoint: the same losses.
result = torchrun(ST, 2, ["sft", recipe, f"training.output_dir={killed}", "--resume"], timeout=900)
if result.returncode != 0:
    failures.append(f"the resumed run failed:\n{result.stdout[-1500:]}\n{result.stderr[-2000:]}")
else:
    difference = first_difference(losses(killed), reference)
    if difference:
        failures.append("resumed losses differ from the uninterrupted run's: " + difference)
    if weights(killed) != weights(whole):
        failures.append("the resumed run's final weights differ from the uninterrupted run's")
    report["resumed_steps_equal"] = len(reference)

# Refused: the checkpoint resumed in the other mode (its optimizer state is
# whole under ddp, in one part per process under fsdp), and a 2-process
# checkpoint resumed by one.
before = sorted(os.listdir(whole))
other = torchrun(ST, 2, ["sft", recipe, f"training.output_dir={whole}", "--resume", "training.max_steps=20",
                         f"distributed.mode={OTHER_MODE}"], timeout=300)
if other.returncode == 0 or "distributed.mode" not in other.stdout + other.stderr:
    failures.append(f"a {MODE} checkpoint resumed under {OTHER_MODE} was not refused with a message:\n"
                    f"{other.stderr[-1500:]}")
if sorted(os.listdir(whole)) != before:
    failures.append(f"the refused {OTHER_MODE} resume changed the run dir")
one = run(ST, "sft", recipe, f"training.output_dir={whole}", "--resume", "training.max_steps=20")
if one.returncode == 0 or "resume it with as many" not in one.stderr:
    failures.append(f"a 2-process checkpoint resumed on 1 process was not refused:\n{one.stderr[-1500:]}")

print(json.dumps(report, indent=1))
if failures:
    sys.exit("FAIL:\n" + "\n".join(failures))
print("ok: a killed rank stops the other, and the run resumes exactly")
