#!/usr/bin/env python3
"""bf16 parity: the default training precision (bf16 compute, fp32 master
weights and moments) against a transformers + torch reference that does the
same, trained step by step on the very batches our run dumped.

Setup (as sft_parity.py, whose data generator and batch helpers this file
imports): a Salamandra-style tokenizer, ~60 generated multilingual chats and
a tiny model with odd sizes (hidden 96, 6 heads, 2 KV heads, FFN 211,
3 layers), stored in bf16 as Salamandra's released checkpoints are. From a
bf16 dir our run and every reference start from the same weights, so what
separates them is the arithmetic alone.

Ours: `sft`, 20 optimizer steps of 2 rows x 2 accumulation (padded). The
recipe leaves model.dtype and optimizer.master_weights at their defaults
(bfloat16, true): the defaults are what this test proves, and the resolved
recipe is checked to say so. Set beyond that: what the reference must match
(lr 3e-3, weight decay 0.1, 3 warmup steps, cosine floor 0.1, as
sft_parity.py; clipping at 1.0, betas and eps are our defaults), device =
cpu, threads, dump_batches.

The reference (reference_train): LlamaForCausalLM (sdpa attention,
transformers' default) with bf16 weights runs forward and backward in bf16
(bf16 logits, upcast for the log-softmax as transformers' loss does). Every
parameter has an fp32 master; after each micro-batch the bf16 gradient is
added into the master's fp32 gradient (accumulation in fp32, as ours);
clip_grad_norm_ on the fp32 gradients; torch.optim.AdamW (decay on
dim >= 2 only) with transformers' cosine-with-min-lr schedule updates the
masters, which are copied (rounded to nearest) into the bf16 model. The
same loop with an fp32 model is the fp32 reference (plain fp32 training).

The bound (issue 13), per step s:
    |loss_ours[s] - loss_ref_bf16[s]| <= 2 * dev_ref[s]
where dev_ref[s] is the reference's own deviation from its fp32 run.

Why dev_ref[s] is not just |loss_ref_bf16[s] - loss_ref_fp32[s]|: read
literally the bound is ill-posed at every step, not only at step 1. From
step 3 on, the training is chaotic enough that rounding differences grow
through Adam to the size of the bf16-vs-fp32 difference itself; the loss
difference at a step is that drift seen through the step's batch, a signed
number that crosses zero at random and spikes on the batches the model
finds hard (gradient norms of 10-70 before clipping). Measured on 20
data/init seeds: the literal bound failed for ours in 18 of 20 seeds (worst
ratio 357: a denominator of 6e-6 between 8e-4 and 3e-3), and a max over a
window of 7 steps still failed in 4.
The bf16 reference does not have ONE deviation at a step. A bf16 checkpoint
fixes its fp32 masters only to bf16's resolution, and the bits below it
decide later roundings: the reference started from masters that differ
only below that resolution (unresolved_bits: the model's bf16 weights, and
so steps 1 and 2, are bit-identical) lands from step 3 on as far from the
first run as the first run is from fp32 (median 2.4e-4 vs 1.7e-4 at step
3). Each such run is the same reference with equal right, and its
deviation from fp32 at a step is one draw from the reference's deviation.
So dev_ref[s] is the envelope of that distribution around s: the largest
|loss_ref_bf16_k[t] - loss_ref_fp32[t]| over the REALISATIONS = 9 runs k
(k = 0 with the checkpoint's masters exactly; k >= 1 with unresolved bits
drawn from seed k) and the steps t in [s-2, s+2] (cut at the run's ends;
the batches change every step, the drift's size over tens). ours is
compared with run k = 0, the factor 2 is the issue's, unchanged.
How 9 x 5 was chosen, on the same 20 seeds: the null distribution -- each
realisation k >= 1 taken as if it were ours and measured against run 0
and the others -- exceeded 2 in 3 of 160 runs (9 x 3: 7; 9 x 1: 24), ours
reached at most 1.67, and our run without fp32 masters at least 2.71. A
larger envelope only loosens the bound. The summary prints, for this run,
the literal ratios, the null ("realisations_as_ours", informational: a
correct implementation's own score) and:
  no_masters   our run with optimizer.master_weights = false (bf16 weights
               and moments): must FAIL the bound, or the bound could not
               tell whether fp32 masters are there at all.

The masters in the checkpoint (checkpoint-20, written at the end):
training_state.safetensors must hold an fp32 "master.<name>" (and fp32
moments) for every tensor of the model; the checkpoint's bf16 weights must
be exactly the masters rounded to bf16 (what the model computed with and
what a resume loads); nearly every master element must carry bits below
bf16's resolution (a bf16 value widened to fp32 would carry none); and the
masters must be as close to the reference's masters (run 0) after the same
20 steps as the bound allows the loss: relative L2 over all parameters
within 2 x the largest distance of a realisation's masters from the fp32
reference's weights (per tensor reported). Stale or mis-assigned masters
would be off by the whole training movement (weights_moved_rel) instead.
Kill-and-resume is not repeated here: unit.sft_resume_bfloat16
(tests/train/resume_test.py) SIGKILLs a bf16 run with masters at random
steps and requires the resumed run's per-step losses and final weights to
equal an uninterrupted run's bit for bit. The resume takes the masters from
that file (train/checkpoint.cpp load_training_state -> AdamW::load_state:
a missing "master.*" tensor, or one of another dtype or shape, is an error;
the masters are copied into the model); had they not been saved, the
resume would stop with that error, and had they been re-derived from the
bf16 weights, the later roundings would differ -- exactly what the
realisations above show -- and the losses would not be bit-identical. What
resume_test cannot see, that the saved masters are the right fp32 numbers,
is what this file checks.

  bf16_parity.py SALAMANDRA_TUNE WORK_DIR
Prints a JSON summary; exit 1 on any failure, 77 (SKIP) when the reference
stack (torch, transformers, safetensors) is missing.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

if len(sys.argv) != 3:
    print("usage: bf16_parity.py SALAMANDRA_TUNE WORK_DIR", file=sys.stderr)
    sys.exit(2)
# sft_parity.py reads the same two arguments when imported and exits 77
# itself when torch, transformers or safetensors cannot be imported.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sft_parity as sp  # noqa: E402

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import LlamaForCausalLM  # noqa: E402
from transformers.optimization import get_cosine_with_min_lr_schedule_with_warmup  # noqa: E402

ST, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
THREADS = 2

FACTOR = 2.0        # the issue's
REALISATIONS = 9    # bf16 reference runs: exact masters + 8 draws of the unresolved bits
WINDOW = 2          # steps either side in the envelope

# As sft_parity.py. Betas, eps and max_grad_norm are our defaults (left
# unset in the recipe) and torch's usual values.
STEPS, WARMUP, LR, MIN_LR_RATIO, WEIGHT_DECAY, MAX_GRAD_NORM = 20, 3, 3e-3, 0.1, 0.1, 1.0
BETAS, EPS = (0.9, 0.999), 1e-8
MAX_LENGTH = 256
ROWS, ACCUM = 2, 2
LR_BOUND = 1e-6
# After 20 AdamW steps with weight decay every element has moved by amounts
# that are no multiple of its bf16 spacing; a random fp32 value is
# bf16-exact with probability 2^-16. The reference's masters measure 0.9998.
SUB_BF16_FRACTION_MIN = 0.9

failures = []


def fail(msg):
    failures.append(msg)


# ---- ours ---------------------------------------------------------------------
def write_recipe(model_dir, data_file):
    path = os.path.join(WORK, "run.toml")
    with open(path, "w", encoding="utf-8") as f:
        # model.dtype and optimizer.master_weights stay at their defaults.
        f.write(sp.recipe_text(model_dir, data_file, os.path.join(WORK, "cache"), False, MAX_LENGTH,
                               model_extra='device = "cpu"\n'))
        f.write(f"[training]\nmax_steps = {STEPS}\nmicro_batch_rows = {ROWS}\ngrad_accumulation = {ACCUM}\n"
                f"threads = {THREADS}\n"
                f"[optimizer]\nlr = {LR}\nweight_decay = {WEIGHT_DECAY}\n"
                f"[schedule]\nwarmup_steps = {WARMUP}\nmin_lr_ratio = {MIN_LR_RATIO}\n"
                f"[logging]\ndump_batches = true\nplot = false\n")
    return path


def sft(recipe, name, *overrides):
    out = os.path.join(WORK, name)
    result = subprocess.run([ST, "sft", recipe, f"training.output_dir={out}", *overrides],
                            text=True, capture_output=True)
    if result.returncode != 0:
        raise SystemExit(f"FAIL: sft {name} exited {result.returncode}\n{result.stdout[-3000:]}\n"
                         f"{result.stderr[-3000:]}")
    metrics = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if l.strip()]
    metrics = [m for m in metrics if "loss" in m and "eval_loss" not in m]
    batches = [json.loads(l) for l in open(os.path.join(out, "batches.jsonl")) if l.strip()]
    return out, metrics, batches


def resolved_keys(run_dir):
    """{"section.key": (value text, is_default)} from the run's resolved recipe."""
    keys, section = {}, ""
    for line in open(os.path.join(run_dir, "recipe.toml"), encoding="utf-8"):
        if m := re.match(r"^\[(\w+)\]", line):
            section = m.group(1)
        elif m := re.match(r"^(\w+) = (.*?)(  # default)?$", line.rstrip("\n")):
            keys[f"{section}.{m.group(1)}"] = (m.group(2), bool(m.group(3)))
    return keys


# ---- the reference ------------------------------------------------------------
def unresolved_bits(masters, bf16_weights, seed):
    """Fills in the bits of the fp32 masters that the bf16 checkpoint leaves
    open: each nonzero w gains noise below 2^(e-9), e = floor(log2 |w|),
    less than half of bf16's spacing on either side of w (8 significant
    bits: 2^(e-7) above 2^e, 2^(e-8) below it), so every master still
    rounds to the checkpoint's w."""
    gen = torch.Generator().manual_seed(seed)
    for name, m in masters.items():
        exponent = torch.floor(torch.log2(m.abs().clamp_min(1e-30)))
        noise = 0.99 * (torch.rand(m.shape, generator=gen) * 2 - 1) * torch.exp2(exponent - 9)
        m += noise * (m != 0)
        if not torch.equal(m.to(torch.bfloat16), bf16_weights[name]):
            raise AssertionError(f"unresolved_bits moved {name} off its bf16 value")


def reference_train(model_dir, batches, dtype, bits_seed=None):
    """Mixed-precision training as ours does it, in transformers + torch.
    Returns the fp32 masters after the last step and the per-step history."""
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="sdpa").train()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    masters = {n: p.detach().float().clone() for n, p in named}
    if bits_seed is not None:
        unresolved_bits(masters, {n: p.detach() for n, p in named}, bits_seed)
    groups = [{"params": [masters[n] for n, p in named if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
              {"params": [masters[n] for n, p in named if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=LR, betas=BETAS, eps=EPS, foreach=False)
    sched = get_cosine_with_min_lr_schedule_with_warmup(opt, WARMUP, STEPS, min_lr_rate=MIN_LR_RATIO)
    history = []
    for step in batches[:STEPS]:
        mbs = [sp.tensors(mb) for mb in step["micro_batches"]]
        n = sum(int(t["loss_mask"][:, 1:].sum()) for t in mbs)
        lr = opt.param_groups[0]["lr"]
        for m in masters.values():
            m.grad = torch.zeros_like(m)
        total = 0.0
        for t in mbs:
            logp = sp.forward_logprobs(model, t, False)  # bf16 logits, log-softmax in fp32
            loss = -(logp * t["loss_mask"][:, 1:]).sum() / n
            loss.backward()
            total += loss.item()
            # The micro-batch's gradient (in the model's dtype) joins the
            # fp32 accumulator; the model's own .grad never sums in bf16.
            for name, p in named:
                if p.grad is not None:
                    masters[name].grad += p.grad.float()
                p.grad = None
        grad_norm = torch.nn.utils.clip_grad_norm_(list(masters.values()), MAX_GRAD_NORM, foreach=False).item()
        opt.step()
        sched.step()
        with torch.no_grad():
            for name, p in named:
                p.copy_(masters[name])  # round to nearest even, as ours
        history.append({"loss": total, "lr": lr, "grad_norm": grad_norm, "trained_tokens": n})
    return {n: m.detach() for n, m in masters.items()}, history


# ---- the bound ----------------------------------------------------------------
def envelope(realisations, fp32):
    """dev_ref per step: the largest deviation of any bf16 realisation from
    the fp32 run within WINDOW steps either side (see the docstring)."""
    per_step = [max(abs(r[s] - fp32[s]) for r in realisations) for s in range(len(fp32))]
    return [max(per_step[max(0, s - WINDOW):s + WINDOW + 1]) for s in range(len(fp32))]


def measure(losses, ref, env, fp32):
    dev = [abs(o - b) for o, b in zip(losses, ref)]
    ratio = [d / max(e, 1e-30) for d, e in zip(dev, env)]
    literal = [d / max(abs(b - f), 1e-30) for d, b, f in zip(dev, ref, fp32)]
    return {"deviation": dev, "ratio": ratio, "max_ratio": max(ratio), "worst_step": 1 + ratio.index(max(ratio)),
            "literal_ratio": literal, "max_literal_ratio": max(literal),
            "literal_steps_over_factor": sum(r > FACTOR for r in literal)}


def rel_norm(a, b, keys):
    num = sum(((a[k].float() - b[k].float()) ** 2).sum().item() for k in keys)
    den = sum((b[k].float() ** 2).sum().item() for k in keys)
    return (num / max(den, 1e-30)) ** 0.5


def check_masters(ckpt, realisations, fp32, init):
    """The checkpoint's masters (see the docstring); realisations[0] is the
    reference run ours is compared with."""
    summary = {}
    state = load_file(os.path.join(ckpt, "training_state.safetensors"))
    weights = sp.load_dir(ckpt)
    ref, names = realisations[0], sorted(realisations[0])
    if set(weights) != set(names):
        fail(f"{ckpt}: weights {sorted(set(weights) ^ set(names))[:6]} differ from the model's tensors")
        return summary
    expected = {f"{kind}.{n}" for n in names for kind in ("master", "exp_avg", "exp_avg_sq")}
    if set(state) != expected:
        fail(f"{ckpt}/training_state.safetensors: tensors {sorted(set(state) ^ expected)[:6]} missing or extra "
             "(expected master, exp_avg, exp_avg_sq for every parameter)")
        return summary
    if bad := sorted(k for k, v in state.items() if v.dtype != torch.float32):
        fail(f"{ckpt}/training_state.safetensors: {bad[:4]} are not float32")
    if bad := sorted(k for k, v in weights.items() if v.dtype != torch.bfloat16):
        fail(f"{ckpt}: weights {bad[:4]} are not bfloat16 (the run's compute dtype)")
    masters = {n: state[f"master.{n}"] for n in names}
    if bad := [n for n in names if not torch.equal(masters[n].to(torch.bfloat16), weights[n])]:
        fail(f"{ckpt}: bf16 weights of {bad[:4]} are not their masters rounded to bf16")
    sub_bf16 = lambda ms: sum((m != m.to(torch.bfloat16).float()).sum().item() for m in ms.values()) / \
        sum(m.numel() for m in ms.values())
    summary["sub_bf16_fraction"] = {"ours": sub_bf16(masters), "reference": sub_bf16(ref),
                                    "min": SUB_BF16_FRACTION_MIN}
    if summary["sub_bf16_fraction"]["ours"] < SUB_BF16_FRACTION_MIN:
        fail(f"masters: only {summary['sub_bf16_fraction']['ours']:.3f} of the elements hold bits below bf16's "
             "resolution: not fp32 masters")
    ours_dist = rel_norm(masters, ref, names)
    ref_dists = [rel_norm(r, fp32, names) for r in realisations]
    per_tensor = {n: rel_norm(masters, ref, [n]) / max(max(rel_norm(r, fp32, [n]) for r in realisations), 1e-30)
                  for n in names}
    worst = max(per_tensor, key=per_tensor.get)
    summary.update({
        "ours_vs_ref_rel": ours_dist, "realisations_vs_fp32_rel": ref_dists,
        "ratio": ours_dist / max(ref_dists), "bound": FACTOR,
        "per_tensor_ratio_max": per_tensor[worst], "per_tensor_worst": worst,
        "weights_moved_rel": rel_norm(fp32, init, names)})
    if ours_dist > FACTOR * max(ref_dists):
        fail(f"masters after {STEPS} steps: {ours_dist:.3e} from the bf16 reference's (relative L2), more than "
             f"{FACTOR} x the reference's own {max(ref_dists):.3e} from its fp32 run")
    return summary


def main():
    started = time.time()
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    help_run = subprocess.run([ST, "sft", "--help"], capture_output=True, text=True)
    if help_run.returncode != 0:
        print(f"FAIL: `{ST} sft --help` exited {help_run.returncode}: {help_run.stderr.strip()[:300]}")
        return 1

    data, model_dir = sp.build_fixture("bfloat16")

    # ---- ours, on the defaults
    recipe = write_recipe(model_dir, data)
    out, metrics, batches = sft(recipe, "run")
    keys = resolved_keys(out)
    for key, want in (("model.dtype", '"bfloat16"'), ("optimizer.master_weights", "true"),
                      ("training.max_grad_norm", str(MAX_GRAD_NORM)), ("schedule.kind", '"cosine"'),
                      ("optimizer.beta1", str(BETAS[0])), ("optimizer.beta2", str(BETAS[1])),
                      ("optimizer.eps", str(EPS))):
        if keys.get(key) != (want, True):
            fail(f"{out}/recipe.toml: {key} is {keys.get(key)}, expected the default {want}")
    if len(metrics) != STEPS or len(batches) != STEPS:
        fail(f"our run logged {len(metrics)} steps and dumped {len(batches)}, expected {STEPS}")
        print(json.dumps({"failures": failures}, indent=1))
        return 1

    # ---- the references on the same batches
    masters_fp32, ref_fp32 = reference_train(model_dir, batches, torch.float32)
    runs = [reference_train(model_dir, batches, torch.bfloat16, bits_seed=k or None) for k in range(REALISATIONS)]
    ref_masters, ref_hist = [r[0] for r in runs], [r[1] for r in runs]
    for m, h in zip(metrics, ref_hist[0]):
        if abs(m["lr"] - h["lr"]) > LR_BOUND * h["lr"] or m["trained_tokens"] != h["trained_tokens"]:
            fail(f"step {m['step']}: lr {m['lr']} / trained_tokens {m['trained_tokens']} vs the reference's "
                 f"{h['lr']} / {h['trained_tokens']}: not the same training")

    loss = lambda hist: [h["loss"] for h in hist]
    fp32, refs = loss(ref_fp32), [loss(h) for h in ref_hist]
    env = envelope(refs, fp32)
    ours = measure(loss(metrics), refs[0], env, fp32)
    for s, r in enumerate(ours["ratio"]):
        if r > FACTOR:
            fail(f"step {s + 1}: loss ours {metrics[s]['loss']!r}, bf16 reference {refs[0][s]!r}: deviation "
                 f"{ours['deviation'][s]:.3e} > {FACTOR} x the reference's {env[s]:.3e} (ratio {r:.2f})")

    # The null: each realisation k >= 1 measured as if it were ours, against
    # run 0 and the envelope of the others (informational).
    null = [measure(refs[k], refs[0], envelope([x for i, x in enumerate(refs) if i != k], fp32), fp32)["max_ratio"]
            for k in range(1, REALISATIONS)]

    # ---- control: ours without masters must fail the bound
    _, metrics_nm, batches_nm = sft(recipe, "run_no_masters", "optimizer.master_weights=false")
    if batches_nm != batches:
        fail("the run without masters trained on other batches")
    no_masters = measure(loss(metrics_nm), refs[0], env, fp32)
    if no_masters["max_ratio"] <= FACTOR:
        fail(f"the bound cannot tell a run without fp32 masters (max ratio {no_masters['max_ratio']:.2f} "
             f"<= {FACTOR}) from one with them")

    # ---- the masters in the checkpoint
    masters = check_masters(os.path.join(out, f"checkpoint-{STEPS}"), ref_masters, masters_fp32,
                            {k: v.float() for k, v in sp.load_dir(model_dir).items()})

    brief = lambda m: {k: m[k] for k in ("max_ratio", "worst_step", "max_literal_ratio", "literal_steps_over_factor")}
    summary = {
        "steps": STEPS, "factor": FACTOR, "realisations": REALISATIONS, "window": WINDOW,
        "per_step": [{"step": s + 1, "loss_ours": metrics[s]["loss"], "loss_ref_bf16": refs[0][s],
                      "loss_ref_fp32": fp32[s], "loss_ref_bf16_realisations": [r[s] for r in refs[1:]],
                      "dev_ours": ours["deviation"][s], "dev_ref_literal": abs(refs[0][s] - fp32[s]),
                      "dev_ref": env[s], "ratio": ours["ratio"][s], "literal_ratio": ours["literal_ratio"][s],
                      "loss_no_masters": metrics_nm[s]["loss"],
                      "grad_norm_ours": metrics[s]["grad_norm"], "grad_norm_ref_bf16": ref_hist[0][s]["grad_norm"]}
                     for s in range(STEPS)],
        "ours": brief(ours),
        "realisations_as_ours_max_ratio": null,
        "no_masters": brief(no_masters),
        "masters": masters,
        "runtime_s": round(time.time() - started, 1),
    }
    summary["failures"] = len(failures)
    print(json.dumps(summary, indent=1))
    for f in failures[:30]:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
