#!/usr/bin/env python3
"""Benchmark (not a test): LoRA SFT through `salamandra-tune sft` vs PEFT +
TRL's SFTTrainer, side by side in one run on this machine's CPU, on the same
batches; and the peak memory of our LoRA step against our full-SFT step of
the same model. Prints JSON with absolute figures and ratios (ours / TRL).

Model: Salamandra architecture, small (hidden 512, 4 layers, 8 heads, 4 KV
heads, FFN 1408) with the real 256,000-token vocabulary (written by `init
--config`, fp32); the tokenizer is small (built here from the data).
Adapter on both sides: rank 16, alpha 32, dropout 0, all-linear (PEFT's
LoraConfig(target_modules="all-linear")), A kaiming-uniform, B zero.

Equal work: every row is exactly --max-length tokens. Only chats longer than
that (by our tokenization, which data_parity.py checks against TRL's) are
used, both sides truncate at the end (ours truncation="right", TRL's
truncation_mode="keep_start"), and the loss covers every token (ours
train_on="all", TRL completion_only_loss=False, assistant_only_loss=False),
so no batch holds padding or a skipped position whatever order each side
draws, and both count the same tokens per step (checked). Settings: fp32 on
the CPU, micro batch --rows (2), no accumulation, no activation
checkpointing, AdamW lr 1e-4, constant schedule, clipping at 1.0.

The LM head: neither side materialises [tokens x 256k] logits. TRL's fused
LM head chunks the vocabulary (32768 columns for every token of the
micro-batch: 384 x 32768 = 12.6M logits at the defaults); ours chunks the
tokens (training.lm_head_chunk rows x 256k), 64 by default here (16.4M
logits, about the same working set). Ours is also run at the schema's
default of 2048 rows (the GPU's choice: one chunk of 384 x 256k at the
defaults).

tokens_per_s: steady state from the end of step --warmup to the last step.
Peak RSS: ours by /usr/bin/time, TRL by getrusage in its process.

Usage: benchmarks/bench_lora_sft.py [--work DIR] [--steps N] [--threads N] [--samples N] [--max-length N]
                                   [--rows N] [--lm-head-chunk N]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

from bench_fixture import make_model, write_chats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ST = os.path.join(ROOT, "build", "salamandra-tune")
PY = sys.executable
LR, RANK, ALPHA = 1e-4, 16, 32

TRL_CHILD = textwrap.dedent("""
    import json, resource, sys, time
    import torch
    model_dir, data_file, steps, threads, warmup, out_dir, max_length, rows = sys.argv[1:9]
    steps, threads, warmup, max_length, rows = int(steps), int(threads), int(warmup), int(max_length), int(rows)
    torch.set_num_threads(threads)
    start = time.perf_counter()
    import datasets, transformers
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer
    datasets.disable_progress_bars()
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    records = [json.loads(l) for l in open(data_file, encoding="utf-8") if l.strip()]
    dataset = datasets.Dataset.from_list([{"messages": r["messages"]} for r in records])
    config = SFTConfig(output_dir=out_dir, max_steps=steps, per_device_train_batch_size=rows,
                       gradient_accumulation_steps=1, learning_rate=LR_, weight_decay=0.0,
                       lr_scheduler_type="constant", warmup_steps=0, max_grad_norm=1.0, optim="adamw_torch",
                       max_length=max_length, truncation_mode="keep_start", packing=False, padding_free=False,
                       completion_only_loss=False, assistant_only_loss=False,
                       activation_checkpointing=False, use_cpu=True, bf16=False, fp16=False,
                       save_strategy="no", report_to=[],
                       logging_steps=steps, disable_tqdm=True, dataloader_num_workers=0, seed=42)
    lora = LoraConfig(r=RANK_, lora_alpha=ALPHA_, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tok, peft_config=lora)
    marks = []

    class Clock(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            marks.append((time.perf_counter(), trainer._total_train_tokens))

    trainer.add_callback(Clock())
    trainer.train()
    (t0, n0), (t1, n1) = marks[warmup - 1], marks[-1]
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    print(json.dumps({"steps": len(marks), "tokens": n1, "steady_tokens": n1 - n0, "steady_s": t1 - t0,
                      "tokens_per_s": (n1 - n0) / (t1 - t0), "process_wall_s": time.perf_counter() - start,
                      "trainable_parameters": trainable,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""").replace("LR_", repr(LR)).replace("RANK_", str(RANK)).replace("ALPHA_", str(ALPHA))


def ours(model_dir, data_file, work, steps, threads, warmup, max_length, rows, lora, chunk):
    name = f"ours_{'lora' if lora else 'full'}_chunk{chunk}"
    out = os.path.join(work, name)
    shutil.rmtree(out, ignore_errors=True)
    recipe = os.path.join(work, f"{name}.toml")
    with open(recipe, "w") as f:
        f.write(f'[model]\npath = "{model_dir}"\ndtype = "float32"\ndevice = "cpu"\nactivation_checkpointing = false\n'
                f'[data]\ntrain = ["{data_file}"]\nmax_length = {max_length}\ntruncation = "right"\npacking = false\n'
                f'train_on = "all"\ncache_dir = "{os.path.join(work, "cache")}"\n'
                f'[training]\noutput_dir = "{out}"\nmax_steps = {steps}\nmicro_batch_rows = {rows}\n'
                f'grad_accumulation = 1\nmax_grad_norm = 1.0\nthreads = {threads}\nlm_head_chunk = {chunk}\n'
                f'[optimizer]\nlr = {LR}\nweight_decay = 0.0\n[schedule]\nkind = "constant"\nwarmup_steps = 0\n'
                f'[logging]\nevery_steps = {steps}\nplot = false\n'
                + (f'[lora]\nrank = {RANK}\nalpha = {ALPHA}\ntargets = ["all-linear"]\n' if lora else ""))
    rss_file = os.path.join(work, f"{name}_rss_kb")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file, ST, "sft", recipe], check=True, env=env,
                            capture_output=True, text=True)
    wall = time.perf_counter() - start
    metrics = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if l.strip()]
    metrics = [m for m in metrics if "loss" in m and "eval_loss" not in m]
    shutil.rmtree(out)
    cumulative = [sum(m["tokens"] for m in metrics[:k + 1]) for k in range(len(metrics))]
    n0, n1 = cumulative[warmup - 1], cumulative[-1]
    t0, t1 = metrics[warmup - 1]["elapsed_s"], metrics[-1]["elapsed_s"]
    trainable = [l for l in result.stdout.splitlines() if "trainable parameters" in l]
    return {"steps": len(metrics), "tokens": n1, "steady_tokens": n1 - n0, "steady_s": t1 - t0,
            "tokens_per_s": (n1 - n0) / (t1 - t0), "process_wall_s": wall,
            "peak_rss_mb": int(open(rss_file).read().split()[-1]) / 1024,
            "tokens_per_step": sorted({m["tokens"] for m in metrics}),
            "lora_line": trainable[0] if trainable else None,
            "loss_first_last": [metrics[0]["loss"], metrics[-1]["loss"]]}


def trl(model_dir, data_file, work, steps, threads, warmup, max_length, rows):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false")
    result = subprocess.run([PY, "-c", TRL_CHILD, model_dir, data_file, str(steps), str(threads), str(warmup),
                             os.path.join(work, "trl_run"), str(max_length), str(rows)],
                            check=True, capture_output=True, text=True, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def long_chats(records, work, model_dir, max_length):
    """The records whose tokenization (BOS and template included) exceeds max_length."""
    data_file = os.path.join(work, "all.jsonl")
    write_chats(records, data_file)
    recipe = os.path.join(work, "inspect.toml")
    with open(recipe, "w") as f:
        f.write(f'[model]\npath = "{model_dir}"\n[data]\ntrain = ["{data_file}"]\nmax_length = 100000\n'
                f'allow_beyond_positions = true\ntrain_on = "all"\ncache_dir = "{os.path.join(work, "cache0")}"\n')
    listing = subprocess.run([ST, "inspect-data", recipe, "--n", str(len(records)), "--format", "jsonl"],
                             check=True, capture_output=True, text=True).stdout
    lengths = [len(s["ids"]) for s in map(json.loads, listing.splitlines()) if "ids" in s]
    assert len(lengths) == len(records), (len(lengths), len(records))
    return [r for r, n in zip(records, lengths) if n > max_length]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=os.path.join(ROOT, "build", "bench", "lora_sft"))
    parser.add_argument("--data", default=os.environ.get("ST_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data")))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2, help="steps left out of the steady-state tokens/s")
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--max-length", type=int, default=192)
    parser.add_argument("--rows", type=int, default=2, help="rows per micro-batch (no accumulation)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--lm-head-chunk", type=int, default=64,
                        help="our training.lm_head_chunk (rows): 64 x 256k logits is about TRL's working set")
    a = parser.parse_args()
    assert 1 <= a.warmup < a.steps
    a.work = os.path.abspath(a.work)
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)

    with open(os.path.join(a.data, "gsm8k_chat", "chat_train.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()][: a.samples]
    config = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 256000,
              "hidden_size": 512, "intermediate_size": 1408, "num_hidden_layers": 4, "num_attention_heads": 8,
              "num_key_value_heads": 4, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
              "max_position_embeddings": 8192, "tie_word_embeddings": False}
    model = make_model(ST, a.work, records, config)
    chosen = long_chats(records, a.work, model, a.max_length)
    data_file = os.path.join(a.work, "chats.jsonl")
    write_chats(chosen, data_file)

    shape = (a.steps, a.threads, a.warmup, a.max_length, a.rows)
    o = ours(model, data_file, a.work, *shape, True, a.lm_head_chunk)
    t = trl(model, data_file, a.work, *shape)
    full = ours(model, data_file, a.work, *shape, False, a.lm_head_chunk)
    default_chunk = ours(model, data_file, a.work, *shape, True, 2048)
    equal_work = o["tokens_per_step"] == [a.rows * a.max_length] and t["tokens"] == o["tokens"]
    report = {"machine": {"cpus": os.cpu_count(), "threads": a.threads},
              "settings": {"config": config, "dtype": "float32", "max_length": a.max_length, "micro_batch_rows": a.rows,
                           "grad_accumulation": 1, "steps": a.steps, "warmup_steps_excluded": a.warmup,
                           "samples": len(chosen), "lora": {"r": RANK, "alpha": ALPHA, "targets": "all-linear"},
                           "rows": "every row full (max_length tokens), loss on all tokens",
                           "lm_head_chunk": a.lm_head_chunk},
              "equal_work": equal_work,
              "ours_lora": o, "trl_peft_lora": t, "ours_full_sft": full, "ours_lora_chunk_2048": default_chunk,
              "tokens_per_s_ratio": o["tokens_per_s"] / t["tokens_per_s"],
              "peak_rss_ratio": o["peak_rss_mb"] / t["peak_rss_mb"],
              "lora_vs_full_peak_rss_ratio": o["peak_rss_mb"] / full["peak_rss_mb"],
              "lora_vs_full_tokens_per_s_ratio": o["tokens_per_s"] / full["tokens_per_s"],
              "chunk_2048": {"tokens_per_s_ratio": default_chunk["tokens_per_s"] / t["tokens_per_s"],
                             "peak_rss_ratio": default_chunk["peak_rss_mb"] / t["peak_rss_mb"]}}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
