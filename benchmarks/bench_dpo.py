#!/usr/bin/env python3
"""Benchmark (not a test): DPO through `salamandra-tune dpo` vs TRL's
DPOTrainer, side by side in one run on this machine's CPU, on the same
batches; tokens/s and peak RSS for four configurations:

  full_live         full fine-tuning, the reference a live frozen model (ours:
                    a second copy loaded from model.path; TRL: ref_model=None,
                    which loads a second copy from the same dir)
  full_precompute   full fine-tuning, reference log-probs computed once before
                    training from the initial policy (ours
                    dpo.precompute_reference = true; TRL
                    precompute_ref_log_probs=True), no second model
  lora_live         LoRA (rank 16, alpha 32, dropout 0, all-linear: PEFT's
                    LoraConfig(target_modules="all-linear")), the reference
                    the base with the adapters switched off (ours: no second
                    copy; TRL: PEFT's adapter-disable path, use_adapter(None))
  lora_precompute   LoRA, reference log-probs precomputed with the adapters
                    off on both sides

Ratios are ours / TRL. Issue targets: tokens/s >= 1.5x; peak RSS <= 0.5x
with LoRA and the adapter-disabled reference (lora_live).

Model: bench_lora_sft.py's, via bench_fixture.py: Salamandra architecture,
small (hidden 512, 4 layers, 8 heads, 4 KV heads, FFN 1408) with the real
256,000-token vocabulary, fp32; the tokenizer is small, built from the data.
Data: generated multilingual preference pairs (tests/parity/sft_parity.py's
sentences; a prompt of a user turn, sometimes after a system turn, of about
40-100 tokens; chosen and rejected replies of about 30-80 tokens; exactly
--steps x --rows pairs, so one epoch is the run and both sides precompute
the same pairs), or any preference file with --data FILE (e.g.
shared/data/orca_dpo_pairs/validation.jsonl; pairs longer than
--max-length, prompt + longer completion, are dropped: data.truncation =
"drop"). Settings on both sides: fp32 on the CPU, sigmoid loss, beta 0.1,
micro batch --rows pairs, no accumulation, no activation checkpointing (TRL's
DPOConfig defaults it on: turned off), AdamW lr 1e-5 without weight decay,
constant schedule, clipping at 1.0, bf16=False (TRL's DPOConfig defaults to
bf16 autocast, also on the CPU), --threads threads (our training.threads,
torch.set_num_threads for TRL, OMP_NUM_THREADS for both).

Equal work: ours runs first with logging.dump_batches = true; every
micro-batch it trained (batches.jsonl) is turned into TRL's examples by
tests/parity/dpo_parity.py's pairs_of() (prompt_ids, chosen_ids,
rejected_ids: our token ids, each completion cut after its last trained
token, <|im_end|>). TRL gets them as a datasets.Dataset in our step order,
its tokenization bypassed (DPOTrainer._prepare_dataset returns the dataset)
and its sampler sequential (_get_train_sampler -> SequentialSampler), with
per_device_train_batch_size = --rows, gradient_accumulation_steps 1 and
max_steps = --steps: step k of TRL trains exactly the pairs of our step k
(checked by recording what its collator receives). Both score the same
completion tokens. Padding differs by design: our pair is ONE row of prompt +
chosen + rejected (the prompt computed once, rejected masked from chosen),
padded to the micro-batch's widest row; TRL's collator makes two rows per pair
(prompt + chosen, prompt + rejected), padded to the widest of them. The JSON
gives both sides' padded slots and real tokens (TRL computes every prompt
twice). tokens_per_s counts the same tokens for both sides: the sum over the
step's pairs of prompt + chosen + rejected as TRL receives them ("pair
tokens"), whatever each side pads or recomputes. (Our rows also hold the "\\n"
the ChatML template puts after each <|im_end|>, untrained: a token or two per
completion that ours runs through the model and TRL does not.)

LM head: neither side materialises [tokens x 256k] logits. TRL's fused LM
head chunks the vocabulary; ours chunks the trained targets
(training.lm_head_chunk rows x 256k), --lm-head-chunk (64, as in
bench_lora_sft.py: about TRL's working set).

tokens_per_s: steady state, from the end of step --warmup (1) to the end of
the last step (ours: metrics.jsonl elapsed_s; TRL: a callback's
on_step_end); first_step_s is reported apart, and tokens_per_s_all_steps
over every step. The reference precompute happens before step 1 on both
sides and is reported apart (precompute_s, precompute_pairs; ours from its
"reference log-probs: N pairs computed in X s" line, TRL by timing
DPOTrainer._precompute_ref_logps). Peak RSS of the whole process: ours by
/usr/bin/time, TRL by getrusage in its own process (the one that imports
torch, transformers, TRL and PEFT and trains). Ours also writes its final
model dir at the end (save_strategy="no" for TRL); it is deleted after.

Usage: benchmarks/bench_dpo.py [--work DIR] [--steps N] [--warmup N] [--rows N] [--max-length N]
                              [--threads N] [--configs full_live,full_precompute,lora_live,lora_precompute]
                              [--data FILE] [--lm-head-chunk N] [--out FILE]
"""
import argparse
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import textwrap
import time

from bench_fixture import make_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ST = os.path.join(ROOT, "build", "salamandra-tune")
PY = sys.executable
LR, BETA, RANK, ALPHA = 1e-5, 0.1, 16, 32
CONFIGS = ["full_live", "full_precompute", "lora_live", "lora_precompute"]
MODEL_CONFIG = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 256000,
                "hidden_size": 512, "intermediate_size": 1408, "num_hidden_layers": 4, "num_attention_heads": 8,
                "num_key_value_heads": 4, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
                "max_position_embeddings": 8192, "tie_word_embeddings": False}

TRL_CHILD = textwrap.dedent("""
    import json, resource, sys, time
    import torch
    a = json.loads(sys.argv[1])
    torch.set_num_threads(a["threads"])
    start = time.perf_counter()
    import datasets, transformers
    from torch.utils.data import SequentialSampler
    from trl import DPOConfig, DPOTrainer
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    steps_pairs = json.load(open(a["pairs_file"]))
    flat = [p for step in steps_pairs for p in step]
    tok = transformers.AutoTokenizer.from_pretrained(a["model_dir"])
    model = transformers.AutoModelForCausalLM.from_pretrained(a["model_dir"], dtype=torch.float32)
    dataset = datasets.Dataset.from_list(flat)
    # Our ids as TRL's examples, in our step order (see the header).
    DPOTrainer._prepare_dataset = lambda self, ds, *args, **kw: ds
    DPOTrainer._get_train_sampler = lambda self, *args, **kw: SequentialSampler(self.train_dataset)
    precompute = {"s": 0.0, "pairs": 0}
    original_precompute = DPOTrainer._precompute_ref_logps

    def timed_precompute(self, ds, name, batch_size):
        t = time.perf_counter()
        out = original_precompute(self, ds, name, batch_size)
        precompute["s"] += time.perf_counter() - t
        precompute["pairs"] += len(ds)
        return out

    DPOTrainer._precompute_ref_logps = timed_precompute
    config = DPOConfig(output_dir=a["out_dir"], max_steps=a["steps"], per_device_train_batch_size=a["rows"],
                       gradient_accumulation_steps=1, learning_rate=a["lr"], weight_decay=0.0,
                       lr_scheduler_type="constant", warmup_steps=0, max_grad_norm=1.0, optim="adamw_torch",
                       loss_type=["sigmoid"], beta=a["beta"], max_length=None,
                       precompute_ref_log_probs=a["precompute"], gradient_checkpointing=False,
                       use_cpu=True, bf16=False, fp16=False, save_strategy="no", report_to=[],
                       remove_unused_columns=False, logging_steps=1, disable_tqdm=True,
                       dataloader_num_workers=0, seed=42)
    peft_config = None
    if a["lora"]:
        from peft import LoraConfig
        peft_config = LoraConfig(r=a["rank"], lora_alpha=a["alpha"], lora_dropout=0.0,
                                 target_modules="all-linear", task_type="CAUSAL_LM")
    t_init = time.perf_counter()
    trainer = DPOTrainer(model=model, ref_model=None, args=config, train_dataset=dataset, processing_class=tok,
                         peft_config=peft_config)
    init_s = time.perf_counter() - t_init
    seen, training = [], [False]
    collate = trainer.data_collator

    def recording_collator(examples):
        if training[0]:
            seen.append([[list(e["prompt_ids"]), list(e["chosen_ids"]), list(e["rejected_ids"])] for e in examples])
        return collate(examples)

    trainer.data_collator = recording_collator
    marks, losses = [], []

    class Clock(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            training[0] = True
            marks.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kw):
            marks.append(time.perf_counter())

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                losses.append(logs["loss"])

    trainer.add_callback(Clock())
    trainer.train()
    if a["precompute"]:
        reference = "precomputed, " + ("PEFT adapters disabled" if a["lora"] else "the policy before training")
    elif a["lora"]:
        reference = "live: the PEFT model with its adapters disabled"
    else:
        reference = "live: a separate " + type(trainer.ref_model).__name__
    expected = [[[p["prompt_ids"], p["chosen_ids"], p["rejected_ids"]] for p in step] for step in steps_pairs]
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    print(json.dumps({"steps": len(marks) - 1, "step_end_s": [m - marks[0] for m in marks[1:]],
                      "same_pairs_in_same_steps": seen[:len(expected)] == expected,
                      "trainer_init_s": init_s, "precompute_s": precompute["s"] if a["precompute"] else None,
                      "precompute_pairs": precompute["pairs"] if a["precompute"] else None,
                      "reference": reference,
                      "loss_first_last": [losses[0], losses[-1]] if losses else None,
                      "trainable_parameters": trainable, "process_wall_s": time.perf_counter() - start,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")


def parity_helpers(work):
    """tests/parity/dpo_parity.py (pairs_of) and sft_parity.py (the sentences);
    they read SALAMANDRA_TUNE WORK_DIR from argv when imported."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "parity"))
    argv, sys.argv = sys.argv, [sys.argv[0], ST, os.path.join(work, "parity_unused")]
    try:
        import dpo_parity
    finally:
        sys.argv = argv
    return dpo_parity


def generate_pairs(path, n, sentences, systems, seed=2024):
    """n preference pairs: a prompt of 4-10 sentences (a system turn before
    every fourth), a chosen reply of 3-8 sentences in the prompt's language
    and a rejected one of 3-8 in another (or the same) language."""
    rng = random.Random(seed)
    langs = sorted(sentences)
    said = lambda lang, k: " ".join(rng.choice(sentences[lang]) for _ in range(k))
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            lang = langs[i % len(langs)]
            prompt = [{"role": "system", "content": rng.choice(systems)}] if i % 4 == 0 else []
            prompt.append({"role": "user", "content": said(lang, rng.randint(4, 10))})
            chosen = said(lang, rng.randint(3, 8))
            rejected = said(rng.choice(langs), rng.randint(3, 8))
            while rejected == chosen:
                rejected = said(lang, 4)
            f.write(json.dumps({"prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
                                "rejected": [{"role": "assistant", "content": rejected}]}, ensure_ascii=False) + "\n")


def texts_of(value):
    """Every string under "content" (or a plain string field) of a record: the tokenizer's corpus."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for v in value for t in texts_of(v)]
    if isinstance(value, dict):
        if isinstance(value.get("content"), str):
            return [value["content"]]
        return [t for k, v in value.items() if k != "role" for t in texts_of(v)]
    return []


def recipe_text(name, a, model_dir, data_file, work, lora, precompute):
    out = os.path.join(work, name)
    return out, (
        f'[model]\npath = {json.dumps(model_dir)}\ndtype = "float32"\ndevice = "cpu"\nactivation_checkpointing = false\n'
        f'[data]\ntrain = [{json.dumps(data_file)}]\nmax_length = {a.max_length}\npacking = false\n'
        f'truncation = "drop"\ncache_dir = {json.dumps(os.path.join(work, "cache"))}\n'
        f'[training]\noutput_dir = {json.dumps(out)}\nmax_steps = {a.steps}\nmicro_batch_rows = {a.rows}\n'
        f'grad_accumulation = 1\nmax_grad_norm = 1.0\nthreads = {a.threads}\nlm_head_chunk = {a.lm_head_chunk}\n'
        f'[optimizer]\nlr = {LR}\nweight_decay = 0.0\n[schedule]\nkind = "constant"\nwarmup_steps = 0\n'
        f'[logging]\nevery_steps = 1\ndump_batches = true\nplot = false\n'
        f'[dpo]\nloss = ["sigmoid"]\nbeta = {BETA}\nprecompute_reference = {str(precompute).lower()}\n'
        + (f'[lora]\nrank = {RANK}\nalpha = {ALPHA}\ntargets = ["all-linear"]\n' if lora else ""))


def ours(name, a, model_dir, data_file, work, lora, precompute, pairs_of, end_token):
    """Our run: its figures, and the pairs of each step as TRL's examples."""
    out, text = recipe_text(f"ours_{name}", a, model_dir, data_file, work, lora, precompute)
    shutil.rmtree(out, ignore_errors=True)
    recipe = os.path.join(work, f"ours_{name}.toml")
    with open(recipe, "w") as f:
        f.write(text)
    rss_file = os.path.join(work, f"ours_{name}_rss_kb")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file, ST, "dpo", recipe], env=env,
                            capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        return {"error": f"salamandra-tune dpo {recipe} exited {result.returncode}",
                "stdout_tail": result.stdout[-3000:], "stderr_tail": result.stderr[-3000:]}, None
    metrics = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if l.strip()]
    metrics = [m for m in metrics if "loss" in m and "eval_loss" not in m]
    dumped = [json.loads(l) for l in open(os.path.join(out, "batches.jsonl")) if l.strip()]
    shutil.rmtree(out)  # checkpoint + final model dir: over 1 GB at 256k vocabulary
    steps_pairs = []
    for step in dumped:
        steps_pairs.append([p for mb in step["micro_batches"] for p in pairs_of(mb, end_token)])
    slots = [sum(mb["rows"] * mb["cols"] for mb in step["micro_batches"]) for step in dumped]
    reference = [l.strip() for l in result.stdout.splitlines() if l.startswith("reference")]
    computed = [re.search(r"reference log-probs: (\d+) pairs computed in ([0-9.]+) s", l) for l in reference]
    computed = [m for m in computed if m]
    side = {"steps": len(metrics), "step_end_s": [m["elapsed_s"] for m in metrics],
            "precompute_s": float(computed[0].group(2)) if computed else None,
            "precompute_pairs": int(computed[0].group(1)) if computed else None,
            "reference": reference, "loss_first_last": [metrics[0]["loss"], metrics[-1]["loss"]],
            "real_tokens_per_step": [m["tokens"] for m in metrics], "padded_slots_per_step": slots,
            "lora_line": next((l for l in result.stdout.splitlines() if "trainable parameters" in l), None),
            "process_wall_s": wall, "peak_rss_mb": int(open(rss_file).read().split()[-1]) / 1024}
    return side, steps_pairs


def trl(name, a, model_dir, work, lora, precompute, steps_pairs):
    pairs_file = os.path.join(work, f"trl_{name}_pairs.json")
    with open(pairs_file, "w") as f:
        json.dump(steps_pairs, f)
    args = {"model_dir": model_dir, "pairs_file": pairs_file, "out_dir": os.path.join(work, f"trl_{name}"),
            "steps": a.steps, "rows": a.rows, "threads": a.threads, "lr": LR, "beta": BETA, "lora": lora,
            "precompute": precompute, "rank": RANK, "alpha": ALPHA}
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), TOKENIZERS_PARALLELISM="false", TQDM_DISABLE="1")
    result = subprocess.run([PY, "-c", TRL_CHILD, json.dumps(args)], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        return {"error": f"TRL child exited {result.returncode}", "stderr_tail": result.stderr[-3000:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def throughput(side, tokens_per_step, warmup):
    """Steady-state and all-steps tokens/s over the pair tokens."""
    ends = side["step_end_s"]
    steady_tokens = sum(tokens_per_step[warmup:len(ends)])
    side.update({"first_step_s": ends[0], "steady_steps": len(ends) - warmup, "steady_s": ends[-1] - ends[warmup - 1],
                 "steady_pair_tokens": steady_tokens,
                 "tokens_per_s": steady_tokens / (ends[-1] - ends[warmup - 1]),
                 "tokens_per_s_all_steps": sum(tokens_per_step[:len(ends)]) / ends[-1]})
    del side["step_end_s"]


def token_stats(values):
    return {"min": min(values), "mean": round(sum(values) / len(values), 1), "max": max(values)}


def machine(threads):
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), None)
    versions = {}
    for package in ("torch", "transformers", "trl", "peft", "datasets"):
        try:
            versions[package] = __import__(package).__version__
        except ImportError:
            versions[package] = None
    return {"cpu": model or platform.processor(), "cpus": os.cpu_count(), "threads": threads,
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1), **versions}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=os.path.join(ROOT, "build", "bench", "dpo"))
    parser.add_argument("--data", default="generated",
                        help="a preference file (e.g. shared/data/orca_dpo_pairs/validation.jsonl) or 'generated'")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=1, help="steps left out of the steady-state tokens/s")
    parser.add_argument("--rows", type=int, default=2, help="pairs per micro-batch (no accumulation)")
    parser.add_argument("--max-length", type=int, default=256, help="data.max_length: prompt + longer completion")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--configs", default=",".join(CONFIGS), help="a comma list of " + ", ".join(CONFIGS))
    parser.add_argument("--lm-head-chunk", type=int, default=64, help="our training.lm_head_chunk (rows)")
    parser.add_argument("--out", help="also write the JSON here")
    a = parser.parse_args()
    configs = [c for c in a.configs.split(",") if c]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configs {unknown}; choose from {CONFIGS}")
    if not 1 <= a.warmup < a.steps:
        parser.error("--warmup must be at least 1 and below --steps")
    a.work = os.path.abspath(a.work)
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)

    dp = parity_helpers(a.work)
    if a.data == "generated":
        data_file = os.path.join(a.work, "pairs.jsonl")
        generate_pairs(data_file, a.steps * a.rows, dp.sp.SENTENCES, dp.sp.SYSTEMS)
        vocab = 1000
    else:
        data_file = os.path.abspath(a.data)
        vocab = 4000
    with open(data_file, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    corpus = [{"messages": [{"content": t} for t in texts_of(r)]} for r in records]
    model_dir = make_model(ST, a.work, corpus, MODEL_CONFIG, vocab_size=vocab)
    end_token = dp.AutoTokenizer.from_pretrained(model_dir).convert_tokens_to_ids("<|im_end|>")

    report = {"machine": machine(a.threads),
              "model": {**MODEL_CONFIG, "dtype": "float32", "tokenizer_pieces": vocab},
              "settings": {"steps": a.steps, "warmup_steps_excluded": a.warmup, "micro_batch_rows": a.rows,
                           "grad_accumulation": 1, "max_length": a.max_length, "loss": "sigmoid", "beta": BETA,
                           "lr": LR, "schedule": "constant", "max_grad_norm": 1.0, "activation_checkpointing": False,
                           "lora": {"r": RANK, "alpha": ALPHA, "dropout": 0.0, "targets": "all-linear"},
                           "our_lm_head_chunk": a.lm_head_chunk, "data": a.data, "records": len(records),
                           "tokens_per_s_counts": "pair tokens: prompt + chosen + rejected per pair, as TRL "
                                                  "receives them; the same count for both sides"},
              "data": None, "padding": None, "configs": {}}
    failed = False
    first_pairs = None
    for name in configs:
        lora, precompute = name.startswith("lora"), name.endswith("precompute")
        print(f"[bench_dpo] {name}: ours", file=sys.stderr, flush=True)
        o, steps_pairs = ours(name, a, model_dir, data_file, a.work, lora, precompute, dp.pairs_of, end_token)
        entry = {"ours": o}
        report["configs"][name] = entry
        if steps_pairs is None:
            failed = True
            continue
        pair_tokens = [sum(len(p["prompt_ids"]) + len(p["chosen_ids"]) + len(p["rejected_ids"]) for p in step)
                       for step in steps_pairs]
        if first_pairs is None:
            first_pairs = steps_pairs
            flat = [p for step in steps_pairs for p in step]
            report["data"] = {
                "pairs_trained": len(flat), "distinct_pairs": len({json.dumps(p, sort_keys=True) for p in flat}),
                "pairs_per_step": sorted({len(s) for s in steps_pairs}),
                "prompt_tokens": token_stats([len(p["prompt_ids"]) for p in flat]),
                "chosen_tokens": token_stats([len(p["chosen_ids"]) for p in flat]),
                "rejected_tokens": token_stats([len(p["rejected_ids"]) for p in flat])}
            trl_real = sum(2 * len(p["prompt_ids"]) + len(p["chosen_ids"]) + len(p["rejected_ids"]) for p in flat)
            trl_slots = sum(2 * len(s) * max(len(p["prompt_ids"]) + max(len(p["chosen_ids"]), len(p["rejected_ids"]))
                                             for p in s) for s in steps_pairs)
            report["padding"] = {
                "pair_tokens": sum(pair_tokens),
                "ours_real_tokens": sum(o["real_tokens_per_step"]),
                "ours_padded_slots": sum(o["padded_slots_per_step"]),
                "trl_real_tokens": trl_real, "trl_padded_slots": trl_slots,
                "note": "ours: one row per pair (prompt + chosen + rejected, plus the untrained '\\n' after each "
                        "<|im_end|>), padded to the micro-batch's widest row; TRL: two rows per pair (prompt + "
                        "chosen, prompt + rejected) padded to the widest of the micro-batch's 2 x rows"}
        entry["same_batches_as_first_config"] = steps_pairs == first_pairs
        throughput(o, pair_tokens, a.warmup)
        print(f"[bench_dpo] {name}: TRL", file=sys.stderr, flush=True)
        t = trl(name, a, model_dir, a.work, lora, precompute, steps_pairs)
        entry["trl"] = t
        if "error" in t:
            failed = True
            continue
        throughput(t, pair_tokens, a.warmup)
        entry["tokens_per_s_ratio"] = o["tokens_per_s"] / t["tokens_per_s"]
        entry["tokens_per_s_all_steps_ratio"] = o["tokens_per_s_all_steps"] / t["tokens_per_s_all_steps"]
        entry["peak_rss_ratio"] = o["peak_rss_mb"] / t["peak_rss_mb"]
        if precompute and o["precompute_s"] and t["precompute_s"]:
            entry["precompute_pairs_per_s_ratio"] = ((o["precompute_pairs"] / o["precompute_s"])
                                                     / (t["precompute_pairs"] / t["precompute_s"]))
        entry["targets"] = {"tokens_per_s_ratio>=1.5": entry["tokens_per_s_ratio"] >= 1.5}
        if name == "lora_live":
            entry["targets"]["peak_rss_ratio<=0.5"] = entry["peak_rss_ratio"] <= 0.5
    text = json.dumps(report, indent=2)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
