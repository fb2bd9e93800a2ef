#!/usr/bin/env python3
"""Runs that behave when things go wrong (issue 14), each case checked by
exit code, message and what is on disk:

  - SIGINT and SIGTERM during sft: the step finishes, a checkpoint of the
    step reached is written with the plot, "stopped by ... at step N;
    continue with --resume", exit 130 / 143; the resumed run equals an
    uninterrupted one bit for bit (losses and final weights). A second
    signal ends the process at once; one during setup stops it there with
    nothing written.
  - A kill between the two renames of a dir replacement (final/, when a
    finished run is extended) leaves one complete dir under its aside name
    and a resumable run, which resumes to the uninterrupted result; a
    checkpoint found only under its aside name is resumed from and put
    back. Resuming from an earlier checkpoint than the newest is refused.
  - Extending a finished run with a larger training.max_steps continues
    from its last checkpoint (constant schedule: equal to a run trained to
    that length at once).
  - A refused resume names each changed key with both values and leaves the
    run dir byte-identical.
  - A log captured through one pipe (stdout and stderr together) has every
    line whole.
  - max_length above the model's positions is refused naming key and line,
    with no run dir left behind; with the override it trains, rows sized by
    the data.

  robust_run_test.py SALAMANDRA_TUNE WORK_DIR
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sft_fixture import first_difference, losses, make_model_and_data, must, run, weights, write_recipe  # noqa: E402

ST, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
failures = []
checks = 0


def check(ok, what):
    global checks
    checks += 1
    if not ok:
        failures.append(what)
        print("FAIL", what)


def sft(*args, env=None):
    return run(ST, "sft", *args, env=env)


def snapshot(run_dir):
    """Every file of a run dir with its bytes: what "changes nothing" compares."""
    out = {}
    for root, _, files in os.walk(run_dir):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, run_dir)] = f.read()
    return out


model, data = make_model_and_data(ST, WORK)
# A constant schedule: a run extended from 6 to 9 steps trains exactly what
# a 9-step run does, so the two can be compared bit for bit.
recipe = write_recipe(os.path.join(WORK, "recipe.toml"), model, data, WORK, sections={
    "training": {"max_steps": 9},
    "schedule": {"kind": "constant"},
    "checkpointing": {"every_steps": 3, "keep_last": 0},
})
whole9 = os.path.join(WORK, "whole9")
must(sft(recipe, f"training.output_dir={whole9}"), "9-step run")

# ---- extending a finished run ----------------------------------------------
extended = os.path.join(WORK, "extended")
must(sft(recipe, f"training.output_dir={extended}", "training.max_steps=6"), "6-step run")
r = sft(recipe, f"training.output_dir={extended}", "training.max_steps=9", "--resume")
check(r.returncode == 0 and f"resuming from {extended}/checkpoint-6 at step 6" in r.stdout,
      f"extending max_steps 6 -> 9 did not continue from checkpoint-6: {r.returncode} {r.stdout[-800:]} {r.stderr}")
check(first_difference(losses(extended), losses(whole9)) is None and weights(extended) == weights(whole9),
      f"6 steps extended to 9 differ from 9 steps: {first_difference(losses(extended), losses(whole9))}")
r = sft(recipe, f"training.output_dir={extended}", "training.max_steps=4", "--resume")
check(r.returncode == 1 and "extended, not shortened" in r.stderr, f"shortening a run was not refused: {r.stderr}")

# ---- a kill between the two renames of a dir replacement --------------------
replaced = os.path.join(WORK, "replaced")
must(sft(recipe, f"training.output_dir={replaced}", "training.max_steps=6"), "6-step run")
# Extending the finished run rewrites final/: killed after renaming the old
# one aside, before renaming the new one in.
env = dict(os.environ, ST_TEST_KILL_BETWEEN_RENAMES="1")
r = sft(recipe, f"training.output_dir={replaced}", "training.max_steps=9", "--resume", env=env)
check(r.returncode == -signal.SIGKILL, f"the kill hook did not fire: {r.returncode} {r.stderr[-500:]}")
final, aside = os.path.join(replaced, "final"), os.path.join(replaced, "final.aside")
check(not os.path.exists(final) and all(os.path.exists(os.path.join(aside, n))
                                        for n in ("config.json", "model.safetensors", "tokenizer.model")),
      f"after the kill, one complete final dir should exist under its aside name: {sorted(os.listdir(replaced))}")
r = sft(recipe, f"training.output_dir={replaced}", "training.max_steps=9", "--resume")
check(r.returncode == 0 and f"resuming from {replaced}/checkpoint-9 at step 9" in r.stdout,
      f"the killed run did not resume: {r.returncode} {r.stdout[-800:]} {r.stderr[-800:]}")
check(os.path.isdir(final) and not os.path.exists(aside) and not [n for n in os.listdir(replaced) if ".tmp-" in n],
      f"the interrupted replacement was not cleaned up: {sorted(os.listdir(replaced))}")
check(first_difference(losses(replaced), losses(whole9)) is None and weights(replaced) == weights(whole9),
      f"resumed after the kill differs from uninterrupted: {first_difference(losses(replaced), losses(whole9))}")
# The state the same kill leaves when it strikes a checkpoint's replacement:
# that checkpoint only under its aside name. --resume finds it and puts it back.
os.rename(os.path.join(replaced, "checkpoint-9"), os.path.join(replaced, "checkpoint-9.aside"))
r = sft(recipe, f"training.output_dir={replaced}", "training.max_steps=9", "--resume")
check(r.returncode == 0 and f"resuming from {replaced}/checkpoint-9.aside at step 9" in r.stdout
      and os.path.isdir(os.path.join(replaced, "checkpoint-9"))
      and not os.path.exists(os.path.join(replaced, "checkpoint-9.aside")),
      f"a checkpoint left aside was not resumed from: {r.returncode} {r.stdout[-800:]} {sorted(os.listdir(replaced))}")

# ---- resuming from an earlier checkpoint than the newest is refused ---------
before = snapshot(extended)
r = sft(recipe, f"training.output_dir={extended}", "training.max_steps=9", "--resume",
        os.path.join(extended, "checkpoint-3"))
check(r.returncode == 1 and "holds later checkpoints of the run" in r.stderr and "Nothing was written" in r.stderr,
      f"resuming from an earlier checkpoint was not refused: {r.returncode} {r.stderr}")
check(snapshot(extended) == before, "the refused resume from an earlier checkpoint changed the run dir")

# ---- a refused resume changes nothing and names the keys --------------------
before = snapshot(whole9)
r = sft(recipe, f"training.output_dir={whole9}", "optimizer.lr=0.01", "data.max_length=100", "--resume")
check(r.returncode == 1 and "optimizer.lr: 0.003 in the checkpoint, 0.01 now" in r.stderr
      and "data.max_length: 128 in the checkpoint, 100 now" in r.stderr and "Nothing was written" in r.stderr,
      f"the refusal does not name the changed keys: {r.returncode} {r.stderr}")
check(snapshot(whole9) == before, "a refused resume changed the run dir")

# ---- SIGINT / SIGTERM: graceful stop, then an exact resume ------------------
long_recipe = write_recipe(os.path.join(WORK, "long.toml"), model, data, WORK, sections={
    "training": {"max_steps": 60},
    "schedule": {"warmup_steps": 4, "min_lr_ratio": 0.1},
    "checkpointing": {"every_steps": 7, "keep_last": 2},
    "logging": {"eval_every_steps": 10, "plot": True},
})
whole60 = os.path.join(WORK, "whole60")
must(sft(long_recipe, f"training.output_dir={whole60}"), "60-step run")


def steps_logged(run_dir):
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return sum(1 for line in f if '"loss"' in line)


for sig, after in ((signal.SIGINT, 5), (signal.SIGTERM, 17)):
    name = signal.Signals(sig).name
    run_dir = os.path.join(WORK, f"stopped_{name}")
    log = os.path.join(WORK, f"stopped_{name}.log")
    with open(log, "w") as out:
        proc = subprocess.Popen([ST, "sft", long_recipe, f"training.output_dir={run_dir}"], stdout=out,
                                stderr=subprocess.STDOUT)
        while proc.poll() is None and steps_logged(run_dir) < after:
            time.sleep(0.005)
        proc.send_signal(sig)
        proc.wait()
    text = open(log).read()
    match = re.search(rf"stopped by {name} at step (\d+) of 60; continue with --resume", text)
    check(proc.returncode == 128 + sig and match, f"{name}: exit {proc.returncode}, log:\n{text[-1500:]}")
    if match:
        step = int(match.group(1))
        check(after <= step < 60 and os.path.isdir(os.path.join(run_dir, f"checkpoint-{step}")),
              f"{name}: no checkpoint at the step reached ({step}): {sorted(os.listdir(run_dir))}")
    check(os.path.exists(os.path.join(run_dir, "training.svg")), f"{name}: no training.svg after the stop")
    # Written to a file, the start's lines are there after the signal too.
    for line in ("train data: ", "eval data: ", "60 optimizer steps", "recipe: "):
        check(line in text, f"{name}: the log file lacks {line!r}")
    r = sft(long_recipe, f"training.output_dir={run_dir}", "--resume")
    check(r.returncode == 0, f"{name}: resume failed: {r.stderr[-800:]}")
    difference = first_difference(losses(run_dir), losses(whole60))
    check(difference is None and weights(run_dir) == weights(whole60),
          f"{name}: stopped and resumed differs from uninterrupted: {difference}")

# A second signal ends the process at once (the default action). Two
# signals sent together can merge into one pending signal, so the second is
# sent once the first has been handled (its message is in the log); a
# process that finished before the second could be sent proves nothing and
# is tried again.
second_signal = None
for attempt in range(5):
    run_dir = os.path.join(WORK, f"stopped_twice_{attempt}")
    log = os.path.join(WORK, f"stopped_twice_{attempt}.log")
    with open(log, "w") as out:
        proc = subprocess.Popen([ST, "sft", long_recipe, f"training.output_dir={run_dir}"], stdout=out,
                                stderr=subprocess.STDOUT)
        while proc.poll() is None and steps_logged(run_dir) < 3:
            time.sleep(0.005)
        proc.send_signal(signal.SIGTERM)
        while proc.poll() is None and "SIGTERM: stopping after the current step" not in open(log).read():
            time.sleep(0.001)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            second_signal = proc.wait()
            break
        proc.wait()
check(second_signal == -signal.SIGTERM, f"a second SIGTERM did not stop at once: exit {second_signal}")

# A signal during setup (here: while 30000 chats are tokenized) stops there,
# with nothing written. It is sent once the handler is installed, as
# /proc/PID/status's caught-signal mask shows.
big = os.path.join(WORK, "big.jsonl")
with open(big, "w") as f:
    for i in range(30000):
        f.write('{"messages": [{"role": "user", "content": "hola %d gat"}, '
                '{"role": "assistant", "content": "bon dia %d sol"}]}\n' % (i, i))


def catches_sigint(pid):
    with open(f"/proc/{pid}/status") as f:
        caught = next(line for line in f if line.startswith("SigCgt:")).split()[1]
    return int(caught, 16) & (1 << (signal.SIGINT - 1))


during_setup = os.path.join(WORK, "stopped_in_setup")
proc = subprocess.Popen([ST, "sft", long_recipe, f"training.output_dir={during_setup}", f'data.train=["{big}"]',
                         f"data.cache_dir={WORK}/cache_big"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        text=True)
while proc.poll() is None and not catches_sigint(proc.pid):
    time.sleep(0.001)
proc.send_signal(signal.SIGINT)
out = proc.communicate()[0]
check(proc.returncode == 130 and "stopped by SIGINT during setup: nothing was written" in out
      and not os.path.exists(during_setup), f"a stop during setup: exit {proc.returncode}, output:\n{out[-800:]}")

# ---- one pipe for stdout and stderr: every line whole -----------------------
piped = os.path.join(WORK, "piped")
proc = subprocess.run([ST, "sft", long_recipe, f"training.output_dir={piped}", "training.max_steps=12",
                       "logging.every_steps=1", "logging.eval_every_steps=3", "checkpointing.every_steps=2",
                       "--print-recipe"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
whole_line = re.compile("|".join([
    r"train data: \d+ samples, \d+ tokens, \d+ trained \(cache \S+, (built|reused)\)",
    r"eval data: \d+ of those samples held out \(data\.eval_ratio [\d.]+\); \d+ train",
    r"12 optimizer steps \(\d+ per epoch: \d+ micro-batches of 2 rows, accumulation 2\)",
    r"recipe: \S+ resolved into \S+/recipe\.toml",
    r"resolved recipe \(\S+\):",
    r"\[[a-z_.]+\]", r"# .*", r"[a-z_0-9]+ = .*", r"",  # the resolved recipe's TOML
    r"checkpoint: \S+/checkpoint-\d+",
    r"step \d+/12  epoch \d+  loss \d+\.\d{4}  lr \S+  \d+ tok/s  ETA \d+m\d\ds",
    r"eval at step \d+: loss \d+\.\d{4}  perplexity \d+\.\d\d",
    r"final model: \S+/final",
]))
lines = proc.stdout.split("\n")
spliced = [line for line in lines if not whole_line.fullmatch(line)]
check(proc.returncode == 0 and not spliced, f"lines cut or spliced in a piped log: {spliced[:5]}")
check(sum(line.startswith("step ") for line in lines) == 12, "the piped log lacks progress lines")

# ---- limits: max_length above the model's positions -------------------------
limited = os.path.join(WORK, "limited")
with open(os.path.join(WORK, "huge.toml"), "w") as f:
    f.write(open(recipe).read().replace("max_length = 128", "max_length = 1000000"))
r = sft(os.path.join(WORK, "huge.toml"), f"training.output_dir={limited}")
check(r.returncode == 1 and "data.max_length = 1000000 (" in r.stderr and "huge.toml:" in r.stderr
      and "max_position_embeddings 1024" in r.stderr and "data.allow_beyond_positions" in r.stderr,
      f"max_length above the positions was not refused by key and line: {r.returncode} {r.stderr}")
check(not os.path.exists(limited), "a refused sft left its run dir behind")
r = sft(os.path.join(WORK, "huge.toml"), f"training.output_dir={limited}", "data.allow_beyond_positions=true",
        "training.max_steps=2")
check(r.returncode == 0, f"max_length 1000000 with the override did not train: {r.returncode} {r.stderr[-800:]}")

print(f"{checks} checks, {len(failures)} failures")
sys.exit(1 if failures else 0)
