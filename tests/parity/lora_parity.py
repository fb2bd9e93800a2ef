#!/usr/bin/env python3
"""LoRA parity: our adapters against PEFT's, both ways, in training and in merging.

Setup (sft_parity.py's fixture, imported): a Salamandra-style tokenizer, the
tiny fp32 model (hidden 96, 6 heads, 2 KV heads, FFN 211, 3 layers) and the
generated multilingual chats. Everything runs in fp32 on the CPU.

Variants (PEFT LoraConfig, and the same as a recipe's [lora] section):
  plain       r 4, alpha 8, q_proj + v_proj
  rslora      alpha / sqrt(r), q_proj + k_proj + o_proj
  dora        use_dora on q_proj, v_proj, down_proj
  patterns    rank_pattern and alpha_pattern (a leaf name and a layer regex)
  all_linear  "all-linear"
  regex       a target_modules regex string (PEFT's fullmatch)

Checks, per variant:
  peft->ours  PEFT adapter with random A, B (init_lora_weights=False; DoRA's
              magnitude perturbed off its initial norms) saved by PEFT;
              `score --adapter` gives PEFT's log-probs within 1e-5 (absolute,
              on every token of multilingual probe texts: the log-softmax of
              the logits, so every logit of the row enters it). The adapter
              must move the log-probs by far more than the bound, or the
              check could not fail.
  ours->peft  3 steps of `sft` with the variant's [lora] keys; PeftModel.
              from_pretrained loads our final dir and gives our `score
              --adapter` log-probs within 1e-5. The tensor names and shapes
              of our adapter_model.safetensors equal those PEFT saves for
              the same config, and the trainable parameter count we print
              equals PEFT's.
Training (plain on all-linear, and DoRA): 20 steps of `sft` continuing a
PEFT-made adapter (lora.adapter) against PeftModel(is_trainable=True) +
torch AdamW (decay on matrices and DoRA's magnitude, as transformers'
Trainer groups them) + transformers' cosine schedule + clipping on our
dumped batches: per-step loss within 1e-4 relative (the issue's bound),
final adapter tensors within 1e-4 relative norm (sft_parity's bound).
Merge: `merge --dtype float32` of our trained adapter (plain and DoRA)
loads in transformers and gives the log-probs of PEFT's merge_and_unload
within 1e-5; a weighted two-adapter merge equals W + 0.7 dW1 - 0.4 dW2
(per tensor within 1e-6 relative), also with a DoRA adapter as the second
(its delta by PEFT's formula); a bf16 merge is that fp32 sum rounded once
(every element within one bf16 rounding of it, nearly all equal).
Bad input, each a non-zero exit with a message naming the problem:
  shapes of another model, target modules matching no projection, a
  missing adapter_model.safetensors, r = 0 (which PEFT also rejects),
  another peft_type, modules_to_save, a base of another vocabulary.

  lora_parity.py SALAMANDRA_TUNE WORK_DIR
Prints a JSON summary; exit 1 on any failure, 77 (SKIP) only when a
dependency of the test itself is missing.
"""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sft_parity as sp  # noqa: E402  (reads the same two arguments; exits 77 without the reference stack)

try:
    import torch  # noqa: E402
    from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402
    from safetensors.torch import load_file  # noqa: E402
    from transformers import LlamaForCausalLM  # noqa: E402
    from transformers.optimization import get_cosine_with_min_lr_schedule_with_warmup  # noqa: E402
except ImportError as e:
    print(f"SKIP: reference stack not importable: {e}")
    sys.exit(77)

ST, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
LOGPROB_BOUND = 1e-5    # the issue's fp32 bound on logits, applied to log-probs
LOSS_BOUND = 1e-4       # per-step loss, relative
WEIGHT_BOUND = 1e-4     # final adapter tensors, relative norm (sft_parity's WEIGHT_BOUND)
MERGE_FORMULA_BOUND = 1e-6
MIN_EFFECT = 1e-3       # the adapter must move the log-probs at least this much
STEPS, WARMUP, LR, MIN_LR_RATIO, WEIGHT_DECAY, MAX_GRAD_NORM = 20, 3, 3e-3, 0.1, 0.1, 1.0

VARIANTS = {
    "plain": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
    "rslora": dict(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "o_proj"], use_rslora=True),
    "dora": dict(r=4, lora_alpha=6, target_modules=["q_proj", "v_proj", "down_proj"], use_dora=True),
    "patterns": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"],
                     rank_pattern={"v_proj": 2, r"layers\.1\.self_attn\.q_proj": 6}, alpha_pattern={"up_proj": 3}),
    "all_linear": dict(r=3, lora_alpha=5, target_modules="all-linear"),
    "regex": dict(r=2, lora_alpha=4, target_modules=r".*\.(0|2)\.mlp\.(gate|up)_proj"),
}

failures = []


def fail(msg):
    failures.append(msg)


def st(*args, check=True):
    r = subprocess.run([ST, *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise SystemExit(f"FAIL: salamandra-tune {' '.join(map(str, args))} exited {r.returncode}\n"
                         f"{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r


def base_model():
    return LlamaForCausalLM.from_pretrained(MODEL_DIR, dtype=torch.float32, attn_implementation="eager").eval()


def peft_config(variant, **extra):
    return LoraConfig(task_type="CAUSAL_LM", lora_dropout=0.0, **VARIANTS[variant], **extra)


def lora_keys(variant):
    """The variant as [lora] recipe lines."""
    c = VARIANTS[variant]
    lines = [f"rank = {c['r']}", f"alpha = {c['lora_alpha']}"]
    t = c["target_modules"]
    lines.append(f"target_regex = {json.dumps(t)}" if isinstance(t, str) and t != "all-linear"
                 else f"targets = {json.dumps([t] if isinstance(t, str) else t)}")
    lines.append(f"rslora = {'true' if c.get('use_rslora') else 'false'}")
    lines.append(f"dora = {'true' if c.get('use_dora') else 'false'}")
    for key in ("rank_pattern", "alpha_pattern"):
        if key in c:
            lines.append(f"{key} = {{ " + ", ".join(f"{json.dumps(k)} = {v}" for k, v in c[key].items()) + " }")
    return "\n".join(lines) + "\n"


def lora_sft(name, lora_lines, steps, lr=LR):
    out = os.path.join(WORK, name)
    recipe = os.path.join(WORK, f"{name}.toml")
    with open(recipe, "w", encoding="utf-8") as f:
        f.write(sp.recipe_text(MODEL_DIR, DATA, os.path.join(WORK, "cache"), False, sp.MAX_LENGTH,
                               model_extra='dtype = "float32"\ndevice = "cpu"\nactivation_checkpointing = false\n'))
        f.write(f"[training]\noutput_dir = {json.dumps(out)}\nmax_steps = {steps}\nmicro_batch_rows = 2\n"
                f"grad_accumulation = 2\nmax_grad_norm = {MAX_GRAD_NORM}\nthreads = {sp.THREADS}\n"
                f"[optimizer]\nlr = {lr}\nweight_decay = {WEIGHT_DECAY}\n"
                f"[schedule]\nkind = \"cosine\"\nwarmup_steps = {WARMUP}\nmin_lr_ratio = {MIN_LR_RATIO}\n"
                f"[logging]\nevery_steps = 1\ndump_batches = true\n[lora]\n{lora_lines}")
    r = st("sft", recipe)
    metrics = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if l.strip()]
    metrics = [m for m in metrics if "loss" in m and "eval_loss" not in m]
    batches = [json.loads(l) for l in open(os.path.join(out, "batches.jsonl")) if l.strip()]
    return out, r.stdout, metrics, batches


def probe_file():
    path = os.path.join(WORK, "probe.jsonl")
    texts = [" ".join(lines[:3]) for lines in sp.SENTENCES.values()]
    with open(path, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    return path


def our_logprobs(adapter=None, model_dir=None):
    args = ["score", "--model", model_dir or MODEL_DIR, "--input", PROBE, "--dtype", "float32", "--device", "cpu"]
    if adapter:
        args += ["--adapter", adapter]
    rows = [json.loads(l) for l in st(*args).stdout.splitlines() if l.strip()]
    return [r["ids"] for r in rows], [torch.tensor(r["logprobs"][1:], dtype=torch.float64) for r in rows]


def ref_logprobs(model, ids):
    out = []
    with torch.no_grad():
        for row in ids:
            t = torch.tensor([row])
            logp = torch.log_softmax(model(input_ids=t).logits[0, :-1].double(), -1)
            out.append(logp.gather(-1, t[0, 1:, None]).squeeze(-1))
    return out


def max_diff(a, b):
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def randomise_magnitudes(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_magnitude_vector" in name:
                p.mul_(1 + 0.2 * (torch.rand(p.shape, generator=g) - 0.5))


def peft_adapter(variant, path, seed):
    """A PEFT adapter with random A, B (and magnitudes), saved by PEFT."""
    torch.manual_seed(seed)
    model = get_peft_model(base_model(), peft_config(variant, init_lora_weights=False))
    randomise_magnitudes(model, seed)
    model.save_pretrained(path)
    return model


def check_variant(variant, summary):
    s = summary.setdefault(variant, {})
    # PEFT -> ours
    path = os.path.join(WORK, f"peft_{variant}")
    model = peft_adapter(variant, path, seed=len(variant))
    ids, ours = our_logprobs(adapter=path)
    ref = ref_logprobs(model, ids)
    s["peft_to_ours_max_abs"] = d = max_diff(ours, ref)
    s["peft_adapter_effect"] = effect = max_diff(ref, BASE_LOGPROBS)
    if d > LOGPROB_BOUND:
        fail(f"{variant}: PEFT's adapter through `score --adapter` differs from PEFT by {d:.2e} > {LOGPROB_BOUND}")
    if effect < MIN_EFFECT:
        fail(f"{variant}: PEFT's random adapter moves the log-probs by only {effect:.2e}: the check is blind")

    # ours -> PEFT: a few steps of training make a non-trivial adapter
    out, stdout, metrics, _ = lora_sft(f"sft_{variant}", lora_keys(variant), steps=3, lr=2e-2)
    final = os.path.join(out, "final")
    loaded = PeftModel.from_pretrained(base_model(), final).eval()
    ids, ours = our_logprobs(adapter=final)
    ref = ref_logprobs(loaded, ids)
    s["ours_to_peft_max_abs"] = d = max_diff(ours, ref)
    s["our_adapter_effect"] = effect = max_diff(ours, BASE_LOGPROBS)
    if d > LOGPROB_BOUND:
        fail(f"{variant}: our adapter loaded by PEFT differs from ours by {d:.2e} > {LOGPROB_BOUND}")
    if effect < MIN_EFFECT:
        fail(f"{variant}: our 3-step adapter moves the log-probs by only {effect:.2e}: the check is blind")

    # names, shapes and the trainable count against PEFT's for the same config
    fresh = get_peft_model(base_model(), peft_config(variant))
    fresh_dir = os.path.join(WORK, f"peft_fresh_{variant}")
    fresh.save_pretrained(fresh_dir)
    theirs = {k: tuple(v.shape) for k, v in load_file(os.path.join(fresh_dir, "adapter_model.safetensors")).items()}
    mine = {k: tuple(v.shape) for k, v in load_file(os.path.join(final, "adapter_model.safetensors")).items()}
    if mine != theirs:
        fail(f"{variant}: adapter tensors differ from PEFT's: only ours {sorted(set(mine) - set(theirs))[:4]}, "
             f"only PEFT's {sorted(set(theirs) - set(mine))[:4]}, shapes "
             f"{[(k, mine[k], theirs[k]) for k in set(mine) & set(theirs) if mine[k] != theirs[k]][:4]}")
    trainable = fresh.get_nb_trainable_parameters()[0]
    m = re.search(r"(\d+) trainable parameters of (\d+)", stdout)
    s["trainable_parameters"] = {"ours": int(m.group(1)) if m else None, "peft": trainable}
    if not m or int(m.group(1)) != trainable:
        fail(f"{variant}: trainable parameters ours {m.group(1) if m else '(not printed)'}, PEFT {trainable}")
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json"):
        if not os.path.exists(os.path.join(final, name)):
            fail(f"{variant}: final/ lacks {name}")
    return final


def reference_lora_train(start_dir, batches):
    model = PeftModel.from_pretrained(base_model(), start_dir, is_trainable=True).train()
    params = [p for p in model.parameters() if p.requires_grad]
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    # transformers' Trainer: decay all but biases and norms (DoRA's magnitude decays).
    decay = [p for n, p in zip(names, params) if p.dim() >= 2 or "lora_magnitude_vector" in n]
    no_decay = [p for n, p in zip(names, params) if not (p.dim() >= 2 or "lora_magnitude_vector" in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                             {"params": no_decay, "weight_decay": 0.0}], lr=LR, eps=1e-8, foreach=False)
    sched = get_cosine_with_min_lr_schedule_with_warmup(opt, WARMUP, STEPS, min_lr_rate=MIN_LR_RATIO)
    history = []
    for step in batches[:STEPS]:
        mbs = [sp.tensors(mb) for mb in step["micro_batches"]]
        n = sum(int(t["loss_mask"][:, 1:].sum()) for t in mbs)
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for t in mbs:
            logp = sp.forward_logprobs(model, t, False)
            loss = -(logp * t["loss_mask"][:, 1:]).sum() / n
            loss.backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM, foreach=False)
        opt.step()
        sched.step()
        history.append(total)
    # PEFT's saved names: no adapter name, and DoRA's magnitude without ".weight".
    state = {re.sub(r"lora_magnitude_vector\.weight$", "lora_magnitude_vector", n.replace(".default", "")):
             p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return history, state


def check_training(variant, summary):
    s = summary.setdefault(f"train_{variant}", {})
    start = os.path.join(WORK, f"start_{variant}")
    peft_adapter(variant, start, seed=100 + len(variant))
    out, _, metrics, batches = lora_sft(f"train_{variant}", f"adapter = {json.dumps(start)}\n", STEPS)
    history, ref_state = reference_lora_train(start, batches)
    worst = 0.0
    for m, h in zip(metrics, history):
        d = sp.rel(m["loss"], h)
        worst = max(worst, d)
        if d > LOSS_BOUND:
            fail(f"train {variant} step {m['step']}: loss ours {m['loss']!r} PEFT {h!r} (rel {d:.2e} > {LOSS_BOUND})")
    if len(metrics) != STEPS:
        fail(f"train {variant}: {len(metrics)} steps logged, expected {STEPS}")
    s["loss_rel_max"] = worst
    s["loss_first_last"] = [metrics[0]["loss"], metrics[-1]["loss"]]
    ours = load_file(os.path.join(out, "final", "adapter_model.safetensors"))
    if set(ours) != set(ref_state):
        fail(f"train {variant}: final adapter tensors {sorted(set(ours) ^ set(ref_state))[:4]} differ by name")
    else:
        worst, where, _ = sp.weight_diff(ours, ref_state)
        s["final_adapter_rel_max"] = worst
        if worst > WEIGHT_BOUND:
            fail(f"train {variant}: final {where} differs from PEFT's by {worst:.2e} > {WEIGHT_BOUND}")
    if not metrics[-1]["loss"] < metrics[0]["loss"]:
        fail(f"train {variant}: the loss did not move down")


def check_merge(variant, adapter, summary):
    s = summary.setdefault(f"merge_{variant}", {})
    out = os.path.join(WORK, f"merged_{variant}")
    r = st("merge", "--base", MODEL_DIR, "--adapter", adapter, "--out", out, "--dtype", "float32")
    s["self_check"] = [l for l in r.stdout.splitlines() if l.startswith("self-check")]
    merged = LlamaForCausalLM.from_pretrained(out, dtype=torch.float32, attn_implementation="eager").eval()
    peft_merged = PeftModel.from_pretrained(base_model(), adapter).merge_and_unload().eval()
    ids, _ = our_logprobs()
    d = max_diff(ref_logprobs(merged, ids), ref_logprobs(peft_merged, ids))
    s["vs_peft_merge_and_unload_max_abs"] = d
    if d > LOGPROB_BOUND:
        fail(f"merge {variant}: the merged dir's log-probs differ from PEFT's merge_and_unload by {d:.2e}")
    files = set(os.listdir(out))
    if missing := {"config.json", "generation_config.json", "tokenizer.model", "tokenizer_config.json"} - files:
        fail(f"merge {variant}: the merged dir lacks {sorted(missing)}")


def delta(adapter_dir, base):
    """Per module, what merging the adapter adds to the base weight W, by PEFT's
    formulas: s B A, or for DoRA m / ||W + s B A||_row * (W + s B A) - W.
    (Adapters without rank/alpha patterns.)"""
    cfg = json.load(open(os.path.join(adapter_dir, "adapter_config.json")))
    t = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    out = {}
    for k in t:
        if k.endswith(".lora_A.weight"):
            module = k[len("base_model.model."):-len(".lora_A.weight")]
            d = (cfg["lora_alpha"] / cfg["r"]) * (t[k.replace("lora_A", "lora_B")] @ t[k])
            magnitude = t.get(f"base_model.model.{module}.lora_magnitude_vector")
            if magnitude is not None:
                w = base[module + ".weight"].float()
                d = (magnitude / torch.linalg.norm(w + d, dim=1))[:, None] * (w + d) - w
            out[module + ".weight"] = d
    return out


def check_weighted_merge(first, second, dora, summary):
    """first at 0.7 and second at -0.4 (both LoRA), in fp32 and bf16; then
    first at 0.7 and a DoRA adapter at 0.5 (merged by its dense delta and
    self-checked against it), in fp32."""
    s = summary.setdefault("merge_weighted", {})
    base = sp.load_dir(MODEL_DIR)
    d1, d2, d3 = delta(first, base), delta(second, base), delta(dora, base)
    expected = {k: v.clone() for k, v in base.items()}
    for k, v in d1.items():
        expected[k] += 0.7 * v
    with_dora = {k: v.clone() for k, v in expected.items()}
    for k, v in d2.items():
        expected[k] += -0.4 * v
    for k, v in d3.items():
        with_dora[k] += 0.5 * v
    for dtype, other, weight, want in (("float32", second, -0.4, expected), ("bfloat16", second, -0.4, expected),
                                       ("float32-dora", dora, 0.5, with_dora)):
        out = os.path.join(WORK, f"merged_weighted_{dtype}")
        st("merge", "--base", MODEL_DIR, "--adapter", first, "--weight", 0.7, "--adapter", other, "--weight", weight,
           "--out", out, "--dtype", dtype.split("-")[0])
        got = sp.load_dir(out)
        if set(got) != set(want):
            fail(f"weighted merge {dtype}: tensors {sorted(set(got) ^ set(want))[:4]}")
            continue
        if dtype.startswith("float32"):
            worst, where, _ = sp.weight_diff(got, want)
            s[f"{dtype}_rel_max"] = worst
            if worst > MERGE_FORMULA_BOUND:
                fail(f"weighted merge {dtype}: {where} differs from W + 0.7 dW1 {weight:+} dW2 by {worst:.2e}")
        else:
            equal = total = 0
            worst_ulps = 0.0
            for k, v in want.items():
                rounded = v.to(torch.bfloat16)
                equal += int((got[k] == rounded).sum())
                total += v.numel()
                # one bf16 rounding of the fp32 sum: |got - v| <= half an ulp (2^-9 relative) up to ties
                ulp = torch.finfo(torch.bfloat16).eps * v.abs().clamp_min(1e-30)
                worst_ulps = max(worst_ulps, ((got[k].float() - v).abs() / ulp).max().item())
            s["bfloat16_equal_fraction"] = equal / total
            s["bfloat16_max_error_in_ulps"] = worst_ulps
            if worst_ulps > 0.5 + 1e-3 or equal / total < 0.999:
                fail(f"weighted bf16 merge: not one rounding of the fp32 sum ({worst_ulps:.3f} ulps, "
                     f"{equal / total:.4%} equal)")
        if "merged_delta_tensors" not in s:
            s["merged_delta_tensors"] = len(set(d1) | set(d2))


def expect_failure(name, args, pattern, summary):
    r = st(*args, check=False)
    text = r.stdout + r.stderr
    ok = r.returncode not in (0, 70) and r.returncode > 0 and re.search(pattern, text)
    summary.setdefault("bad_input", {})[name] = {"exit": r.returncode, "message": text.strip().splitlines()[-1:]}
    if not ok:
        fail(f"bad input {name}: exit {r.returncode}, message {text.strip()[-300:]!r} (expected /{pattern}/)")


def edited_adapter(source, name, edit_config=None, remove=None):
    path = os.path.join(WORK, f"bad_{name}")
    shutil.copytree(source, path)
    if edit_config:
        cfg_path = os.path.join(path, "adapter_config.json")
        cfg = json.load(open(cfg_path))
        edit_config(cfg)
        json.dump(cfg, open(cfg_path, "w"))
    if remove:
        os.remove(os.path.join(path, remove))
    return path


def check_bad_input(adapter, summary):
    score = ["score", "--model", MODEL_DIR, "--input", PROBE, "--adapter"]
    # an adapter of another model (hidden 64): shapes do not fit
    other_cfg = os.path.join(WORK, "other_config.json")
    cfg = json.load(open(os.path.join(MODEL_DIR, "config.json")))
    cfg.update(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=16)
    json.dump(cfg, open(other_cfg, "w"))
    other_dir = os.path.join(WORK, "other_model")
    st("init", "--config", other_cfg, "--out", other_dir, "--dtype", "float32", "--tokenizer", TOKENIZER_DIR)
    other = get_peft_model(LlamaForCausalLM.from_pretrained(other_dir, dtype=torch.float32), peft_config("plain"))
    other_adapter = os.path.join(WORK, "other_adapter")
    other.save_pretrained(other_adapter)
    expect_failure("other_model_shapes", score + [other_adapter], r"has shape .* but the base model", summary)
    expect_failure("targets_nothing", score + [edited_adapter(adapter, "targets", lambda c: c.update(
        target_modules=["c_attn"]))], r"select no projection", summary)
    expect_failure("missing_weights", score + [edited_adapter(adapter, "missing", remove="adapter_model.safetensors")],
                   r"adapter_model\.safetensors: missing", summary)
    rank_zero = edited_adapter(adapter, "r0", lambda c: c.update(r=0))
    try:
        PeftModel.from_pretrained(base_model(), rank_zero)
        peft_rejects = False
    except ValueError:
        peft_rejects = True
    summary["bad_input"]["peft_rejects_r0"] = peft_rejects
    if not peft_rejects:
        fail("PEFT loaded an adapter with r = 0: the rejected-config case needs another example")
    expect_failure("rank_zero", score + [rank_zero], r"rank \(r\) must be a positive integer", summary)
    expect_failure("other_peft_type", score + [edited_adapter(adapter, "ia3", lambda c: c.update(peft_type="IA3"))],
                   r"peft_type is \"IA3\"", summary)
    expect_failure("modules_to_save", score + [edited_adapter(adapter, "mts", lambda c: c.update(
        modules_to_save=["lm_head"]))], r"modules_to_save.*not supported", summary)
    # a base of another vocabulary: our adapter records the one it was trained on
    vocab_cfg = os.path.join(WORK, "vocab_config.json")
    cfg = json.load(open(os.path.join(MODEL_DIR, "config.json")))
    cfg["vocab_size"] += 8
    json.dump(cfg, open(vocab_cfg, "w"))
    vocab_dir = os.path.join(WORK, "vocab_model")
    st("init", "--config", vocab_cfg, "--out", vocab_dir, "--dtype", "float32")
    expect_failure("other_vocabulary", ["score", "--model", vocab_dir, "--input", PROBE, "--adapter", adapter],
                   r"vocabulary of \d+ tokens, but the base model has \d+", summary)
    expect_failure("merge_missing_adapter", ["merge", "--base", MODEL_DIR, "--adapter", os.path.join(WORK, "nowhere"),
                                             "--out", os.path.join(WORK, "never")], r"nowhere: not an adapter dir",
                   summary)
    if os.path.exists(os.path.join(WORK, "never")):
        fail("a failed merge left its output dir")


def main():
    global MODEL_DIR, DATA, PROBE, BASE_LOGPROBS, TOKENIZER_DIR
    torch.set_num_threads(sp.THREADS)
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    sp.WORK = WORK
    DATA, MODEL_DIR = sp.build_fixture("float32")
    TOKENIZER_DIR = os.path.join(WORK, "tok")
    PROBE = probe_file()
    ids, BASE_LOGPROBS = our_logprobs()
    summary = {"base_vs_transformers_max_abs": max_diff(BASE_LOGPROBS, ref_logprobs(base_model(), ids))}

    finals = {}
    for variant in VARIANTS:
        finals[variant] = check_variant(variant, summary)
    for variant in ("all_linear", "dora"):
        check_training(variant, summary)
    for variant in ("plain", "dora"):
        check_merge(variant, finals[variant], summary)
    check_weighted_merge(finals["plain"], finals["all_linear"], finals["dora"], summary)
    check_bad_input(finals["plain"], summary)

    summary["failures"] = len(failures)
    print(json.dumps(summary, indent=1))
    for f in failures[:30]:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
