#!/usr/bin/env python3
"""DPO parity: `salamandra-tune dpo` against TRL's DPOTrainer (and its CPO and
ORPO trainers for SimPO and ORPO), step by step, for every loss type.

Setup (sft_parity.py's fixture, imported): a Salamandra-style tokenizer and
the tiny fp32 model (hidden 96, 6 heads, 2 KV heads, FFN 211, 3 layers);
generated multilingual preference pairs (a prompt of one or two turns, two
different replies). Everything runs in fp32 on the CPU.

Per case (a loss list with its options): 10 steps of our `dpo` (4 pairs per
step, cosine schedule with warmup, AdamW with decay, clipping) dump their
batches. The reference replays them: a fresh transformers model, TRL's
trainer for the loss and the metrics (DPOTrainer.compute_loss on its own
collator's batch; CPOTrainer/ORPOTrainer.get_batch_loss_metrics), the
frozen initial model as TRL's reference, and torch's AdamW + transformers'
cosine schedule + clip_grad_norm_ as the optimizer (the same as
sft_parity.py's, which matches Trainer's). Every step's loss and each metric
(rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins,
logps/chosen, logps/rejected, logits/chosen, logits/rejected) must agree
within 1e-4 relative (the issue's bound), with an absolute floor for values
that are zero up to rounding: 1e-6 of the quantity they are differences of
(rewards: beta x |logps|), far below any value a wrong formula gives.

Conventions aligned, never the tolerance:
  - TRL tokenizes prompt+completion itself and trains the "\\n" the ChatML
    template puts after <|im_end|>; we train through <|im_end|> only. The
    reference gets our token ids, each completion ending at its last
    trained token (the trailing untrained tokens are checked to be only
    that whitespace), so both sides score the same tokens.
  - Our prompt is computed once per pair (a row of prompt, chosen,
    rejected with a mask keeping rejected from chosen); TRL runs two rows.
    The same numbers are the point of the check.
  - logits/* (the mean logit over the vocabulary, over completion
    tokens) nearly cancels; it is compared within 1e-4 of the logits' RMS,
    the scale of what it averages.
  - CPO/ORPO's logits/* average the logits over every position of TRL's
    own padded batch, padding included, which is not a property of the
    model: for simpo and orpo we report DPOTrainer's definition (mean over
    completion tokens) and compare it with that, computed from TRL's
    logits on the same batch.
Also checked: the trained token and pair counts, and the bad pairs of the
data (a chosen equal to its rejected, an empty completion, a prompt that
fills max_length) dropped and counted by reason.

  dpo_parity.py SALAMANDRA_TUNE WORK_DIR
Prints a JSON summary; exit 1 on any failure, 77 (SKIP) only when a
dependency of the test itself is missing.
"""
import json
import os
import random
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sft_parity as sp  # noqa: E402  (reads the same two arguments; exits 77 without the reference stack)

import torch  # noqa: E402
from transformers import AutoTokenizer, LlamaForCausalLM  # noqa: E402

try:
    import datasets
    import trl
    from trl import DPOConfig, DPOTrainer
    from trl.experimental.cpo import CPOConfig, CPOTrainer
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer
except ImportError as e:
    print(f"SKIP: TRL not importable: {e}")
    sys.exit(77)

ST, WORK = sp.ST, sp.WORK
STEPS, ROWS, WARMUP, LR, WEIGHT_DECAY, MAX_GRAD_NORM = 10, 4, 2, 2e-3, 0.1, 1.0
MIN_LR_RATIO, BETAS, EPS = sp.MIN_LR_RATIO, sp.BETAS, sp.EPS  # sp.adamw_with_schedule's
MAX_LENGTH = 160
BOUND = 1e-4
METRICS = ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
           "logps/rejected", "logits/chosen", "logits/rejected"]

# (name, [dpo] keys): every TRL loss_type but the aot ones (they sort
# rewards across the batch: defined by the batch, not the pair), the
# combination TRL recommends instead of rpo_alpha, and SimPO / ORPO.
CASES = [
    ("sigmoid", {"loss": ["sigmoid"]}),
    ("hinge", {"loss": ["hinge"]}),
    ("ipo", {"loss": ["ipo"]}),
    ("robust", {"loss": ["robust"], "label_smoothing": 0.1}),
    ("exo_pair", {"loss": ["exo_pair"], "label_smoothing": 1e-3}),
    ("nca_pair", {"loss": ["nca_pair"]}),
    ("bco_pair", {"loss": ["bco_pair"]}),
    ("sppo_hard", {"loss": ["sppo_hard"]}),
    ("apo_zero", {"loss": ["apo_zero"]}),
    ("apo_down", {"loss": ["apo_down"]}),
    ("discopop", {"loss": ["discopop"], "discopop_tau": 0.05}),
    ("sigmoid_norm", {"loss": ["sigmoid_norm"]}),
    ("sft", {"loss": ["sft"]}),
    ("sigmoid+sft", {"loss": ["sigmoid", "sft"], "loss_weights": [1.0, 0.5]}),
    ("simpo", {"loss": ["simpo"], "beta": 2.0, "simpo_gamma": 0.5}),
    ("orpo", {"loss": ["orpo"], "orpo_lambda": 0.1}),
]


def make_pairs(path, n=40, seed=99):
    """n good pairs, then the bad ones the run must drop and count."""
    rng = random.Random(seed)
    langs = sorted(sp.SENTENCES)
    said = lambda lang, k: " ".join(rng.choice(sp.SENTENCES[lang]) for _ in range(k))
    with open(path, "w", encoding="utf-8") as f:
        def write(prompt, chosen, rejected):
            f.write(json.dumps({"prompt": prompt, "chosen": chosen, "rejected": rejected}, ensure_ascii=False) + "\n")
        for i in range(n):
            lang = langs[i % len(langs)]
            prompt = [{"role": "system", "content": rng.choice(sp.SYSTEMS)}] if i % 5 == 0 else []
            for t in range(1 + (i % 3 == 0)):
                prompt.append({"role": "user", "content": said(lang, rng.randint(1, 2))})
                if t == 0 and i % 3 == 0:
                    prompt.append({"role": "assistant", "content": said(lang, 1)})
            chosen = said(lang, rng.randint(1, 3))
            rejected = said(rng.choice(langs), rng.randint(1, 3))
            while rejected == chosen:
                rejected = said(lang, 2)
            write(prompt, [{"role": "assistant", "content": chosen}], [{"role": "assistant", "content": rejected}])
        user = [{"role": "user", "content": said("en", 1)}]
        same = [{"role": "assistant", "content": said("ca", 2)}]
        write(user, same, same)                                          # chosen_equals_rejected
        write(user, [], [{"role": "assistant", "content": "No."}])       # empty_completion
        long_prompt = [{"role": "user", "content": said("es", 60)}]      # fills max_length
        write(long_prompt, [{"role": "assistant", "content": "Sí."}], [{"role": "assistant", "content": "No."}])


def recipe(name, model_dir, data, dpo, extra=""):
    out = os.path.join(WORK, name)
    path = os.path.join(WORK, f"{name}.toml")
    lines = [f"[model]\npath = {json.dumps(model_dir)}\ndtype = \"float32\"\ndevice = \"cpu\"\n",
             f"[data]\ntrain = [{json.dumps(data)}]\nmax_length = {MAX_LENGTH}\npacking = false\nseed = 3\n"
             f"cache_dir = {json.dumps(os.path.join(WORK, 'cache'))}\n",
             f"[training]\noutput_dir = {json.dumps(out)}\nmax_steps = {STEPS}\nmicro_batch_rows = {ROWS}\n"
             f"max_grad_norm = {MAX_GRAD_NORM}\nthreads = {sp.THREADS}\n",
             f"[optimizer]\nlr = {LR}\nweight_decay = {WEIGHT_DECAY}\nbeta1 = {BETAS[0]}\nbeta2 = {BETAS[1]}\n"
             f"eps = {EPS}\n",
             f"[schedule]\nkind = \"cosine\"\nwarmup_steps = {WARMUP}\nmin_lr_ratio = {MIN_LR_RATIO}\n",
             "[logging]\nevery_steps = 1\ndump_batches = true\n", "[dpo]\n"]
    for key, value in dpo.items():
        lines.append(f"{key} = {json.dumps(value)}\n")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(lines) + extra)
    return path, out


def run_dpo(path, out, *args):
    result = subprocess.run([ST, "dpo", path, *args], text=True, capture_output=True)
    if result.returncode != 0:
        raise SystemExit(f"FAIL: dpo {path} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    metrics = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if l.strip()]
    metrics = [m for m in metrics if "loss" in m and "eval_loss" not in m]
    batches = [json.loads(l) for l in open(os.path.join(out, "batches.jsonl")) if l.strip()]
    return metrics, batches, result.stdout


# ---- our batches as TRL's examples ---------------------------------------------
def pairs_of(mb, end_token):
    """The pairs of a dumped micro-batch, in row order: prompt ids and each
    completion up to its last trained token (what TRL gets)."""
    pairs = []
    rows, cols = mb["rows"], mb["cols"]
    for r in range(rows):
        docs = {}
        for c in range(cols):
            k = r * cols + c
            d = mb["document"][k]
            if d < 0:
                continue
            docs.setdefault(d, []).append((mb["ids"][k], mb["loss_mask"][k]))
        for d in sorted(docs):
            prompt = [i for i, code in docs[d] if code & 6 == 0]
            sides = {}
            for side, bit in (("chosen", 2), ("rejected", 4)):
                tokens = [(i, code & 1) for i, code in docs[d] if code & bit]
                last = max(j for j, (_, trained) in enumerate(tokens) if trained)
                if not all(trained for _, trained in tokens[:last + 1]):
                    raise SystemExit(f"FAIL: an untrained token inside a {side} completion: {tokens}")
                tail = [i for i, _ in tokens[last + 1:]]
                if tokens[last][0] != end_token or any(i == end_token for i in tail):
                    raise SystemExit(f"FAIL: a {side} completion does not end its training at <|im_end|>: {tokens}")
                sides[side] = [i for i, _ in tokens[:last + 1]]
            pairs.append({"prompt_ids": prompt, "chosen_ids": sides["chosen"], "rejected_ids": sides["rejected"]})
    return pairs


def cpo_batch(pairs, pad_id):
    """CPO/ORPO's tokenized batch (their collator's keys) from our ids."""
    batch = {}
    for side in ("chosen", "rejected"):
        seqs = [p["prompt_ids"] + p[f"{side}_ids"] for p in pairs]
        labels = [[-100] * len(p["prompt_ids"]) + p[f"{side}_ids"] for p in pairs]
        width = max(map(len, seqs))
        batch[f"{side}_input_ids"] = torch.tensor([s + [pad_id] * (width - len(s)) for s in seqs])
        batch[f"{side}_attention_mask"] = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
        batch[f"{side}_labels"] = torch.tensor([l + [-100] * (width - len(l)) for l in labels])
    return batch


def completion_logits(model, pairs):
    """DPOTrainer's logits/chosen and logits/rejected: the mean logit over the
    vocabulary, averaged over the completion tokens (from the reference's
    own logits on TRL's two-row layout); and the RMS of those logits, the
    scale their mean is compared on (see compare())."""
    out = {}
    with torch.no_grad():
        for side in ("chosen", "rejected"):
            total, squares, count = 0.0, 0.0, 0
            for p in pairs:
                ids = torch.tensor([p["prompt_ids"] + p[f"{side}_ids"]])
                n = len(p[f"{side}_ids"])
                logits = model(input_ids=ids).logits[0, :-1].double()[-n:]
                total += logits.mean(-1).sum().item()
                squares += logits.pow(2).mean(-1).sum().item()
                count += n
            out[f"logits/{side}"] = total / count
            out[f"logits_rms/{side}"] = (squares / count) ** 0.5
    return out


# ---- the reference run ---------------------------------------------------------
def trl_trainer(kind, dpo, model, tokenizer):
    common = dict(output_dir=os.path.join(WORK, "trl-out"), report_to=[], per_device_train_batch_size=ROWS,
                  learning_rate=LR, use_cpu=True, remove_unused_columns=False, logging_steps=1, bf16=False, fp16=False)
    dummy = datasets.Dataset.from_list([{"prompt": "a", "chosen": "b", "rejected": "c"}])
    if kind == "dpo":
        weights = dpo.get("loss_weights")
        args = DPOConfig(**common, loss_type=dpo["loss"], loss_weights=weights, beta=dpo.get("beta", 0.1),
                         label_smoothing=dpo.get("label_smoothing", 0.0), discopop_tau=dpo.get("discopop_tau", 0.05),
                         max_length=None, precompute_ref_log_probs=False)
        # The data are our ids: TRL's own tokenization is bypassed (see the header).
        DPOTrainer._prepare_dataset = lambda self, ds, *a, **k: ds
        return DPOTrainer(model=model, ref_model=None, args=args, train_dataset=dummy, processing_class=tokenizer)
    if kind == "simpo":
        args = CPOConfig(**common, loss_type="simpo", cpo_alpha=0.0, beta=dpo["beta"], simpo_gamma=dpo["simpo_gamma"],
                         label_smoothing=0.0, max_length=4096)
        trainer_class = CPOTrainer
    else:
        args = ORPOConfig(**common, beta=dpo["orpo_lambda"], max_length=4096)
        trainer_class = ORPOTrainer
    trainer_class._prepare_dataset = lambda self, ds, *a, **k: ds
    original_map = datasets.Dataset.map
    datasets.Dataset.map = lambda self, *a, **k: self  # their constructors tokenize the dummy; nothing to do
    try:
        return trainer_class(model=model, args=args, train_dataset=dummy, processing_class=tokenizer)
    finally:
        datasets.Dataset.map = original_map


def reference_run(kind, dpo, model_dir, batches, end_token):
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    trainer = trl_trainer(kind, dpo, model, tokenizer)
    model = trainer.model
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt, sched = sp.adamw_with_schedule(params, STEPS, lr=LR, warmup=WARMUP, weight_decay=WEIGHT_DECAY)
    history = []
    for step in batches[:STEPS]:
        (mb,) = step["micro_batches"]
        pairs = pairs_of(mb, end_token)
        opt.zero_grad(set_to_none=True)
        logits = completion_logits(model, pairs)
        if kind == "dpo":
            batch = trainer.data_collator(pairs)
            loss = trainer.compute_loss(model, batch)
            metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}
        else:
            loss, metrics = trainer.get_batch_loss_metrics(model, cpo_batch(pairs, tokenizer.pad_token_id), "train")
            metrics = {k: float(v) for k, v in metrics.items()}
            metrics.update({k: v for k, v in logits.items() if k.startswith("logits/")})
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM, foreach=False).item()
        opt.step()
        sched.step()
        metrics.update({k: v for k, v in logits.items() if k.startswith("logits_rms/")})
        metrics.update({"loss": loss.item(), "grad_norm": grad_norm, "pairs": len(pairs),
                        "chosen_tokens": sum(len(p["chosen_ids"]) for p in pairs)})
        history.append(metrics)
    return history


# ---- checks -------------------------------------------------------------------
failures = []


def compare(name, dpo, ours, theirs, summary):
    beta = dpo.get("orpo_lambda") if "orpo" in dpo["loss"] else dpo.get("beta", 0.1)
    worst = {}
    if len(ours) != STEPS or len(theirs) != STEPS:
        failures.append(f"{name}: {len(ours)} of our steps, {len(theirs)} of TRL's, expected {STEPS}")
        return
    for step, (a, b) in enumerate(zip(ours, theirs), 1):
        if a["pairs"] != b["pairs"]:
            failures.append(f"{name} step {step}: {a['pairs']} pairs, TRL {b['pairs']}")
        scale_logps = max(abs(b["logps/chosen"]), abs(b["logps/rejected"]))
        for key in ["loss"] + METRICS:
            floor = 1e-6 * (beta * scale_logps if key.startswith("rewards/") else max(abs(b[key]), 1.0))
            if key == "rewards/accuracies":
                floor = 0.0
            if key.startswith("logits/"):
                # A mean over the vocabulary of logits of both signs nearly
                # cancels: its rounding and the runs' drift scale with the
                # logits, so the bound is relative to their RMS.
                floor = BOUND * b["logits_rms/" + key.split("/")[1]]
            err = abs(a[key] - b[key])
            worst[key] = max(worst.get(key, 0.0), err / max(abs(b[key]), floor, 1e-30))
            if err > BOUND * abs(b[key]) + floor:
                failures.append(f"{name} step {step}: {key} ours {a[key]!r}, TRL {b[key]!r} "
                                f"(|diff| {err:.3g} > {BOUND} relative + {floor:.2g})")
    summary[name] = {"max_rel": {k: float(f"{v:.3g}") for k, v in worst.items()},
                     "loss_first_last": [ours[0]["loss"], ours[-1]["loss"]]}


def main():
    torch.set_num_threads(sp.THREADS)
    torch.manual_seed(0)
    import shutil
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    _, model_dir = sp.build_fixture("float32")
    data = os.path.join(WORK, "pairs.jsonl")
    make_pairs(data)
    end_token = AutoTokenizer.from_pretrained(model_dir).convert_tokens_to_ids("<|im_end|>")
    summary = {"trl": trl.__version__, "cases": {}}

    # The bad pairs are dropped and counted by reason.
    path, _ = recipe("prepare", model_dir, data, {"loss": ["sigmoid"]})
    report = subprocess.run([ST, "prepare", path], text=True, capture_output=True)
    # The long prompt leaves its completions no room under max_length (TRL
    # drops such pairs too, under its default keep_start truncation).
    for reason in ("chosen_equals_rejected", "empty_completion", "nothing_to_train_after_truncation"):
        if not re.search(rf"^\s+{reason}\s+1$", report.stdout, re.M):
            failures.append(f"prepare does not report one pair dropped as {reason}:\n{report.stdout}{report.stderr}")
    summary["prepare"] = report.stdout.strip().splitlines()[-4:]

    only = os.environ.get("DPO_PARITY_ONLY", "").split(",") if os.environ.get("DPO_PARITY_ONLY") else None
    for name, dpo in CASES:
        if only and name not in only:
            continue
        path, out = recipe(name, model_dir, data, dpo)
        ours, batches, _ = run_dpo(path, out)
        kind = "simpo" if "simpo" in dpo["loss"] else "orpo" if "orpo" in dpo["loss"] else "dpo"
        theirs = reference_run(kind, dpo, model_dir, batches, end_token)
        compare(name, dpo, ours, theirs, summary["cases"])

    print(json.dumps(summary, indent=1))
    if failures:
        print("\n".join(f"FAIL: {f}" for f in failures[:40]))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
