#!/usr/bin/env python3
"""Benchmark (not a test): `salamandra-tune sft` vs TRL's SFTTrainer, side by
side in one run on this machine's CPU, same data, model and settings; prints
JSON with absolute figures and ratios (ours / TRL).

Model: Salamandra architecture, small (hidden 256, 4 layers, 4 heads, 2 KV
heads, FFN 704) with the real 256,000-token vocabulary, so the embedding and
LM head dominate as they do for the 2B model (written by `init --config`,
fp32). The tokenizer is small (built here from the data; the real one cannot
be fetched): ids stay below its size, the model's vocabulary is 256k.

Data: the first --samples chats of shared/data/gsm8k_chat/chat_train.jsonl.
Settings on both sides: fp32 on CPU, max_length 512 (right truncation),
padded batches (ours packing=false; TRL packing=False, padding_free=False),
micro batch 2, no accumulation, no activation checkpointing (TRL's
SFTConfig defaults it on: turned off), --steps optimizer steps, AdamW lr 1e-4
(no weight decay), constant schedule, clipping at 1.0, loss on the assistant
replies only (ours train_on=assistant; TRL assistant_only_loss with the same
ChatML template plus {% generation %} markers: the rendered text is
identical). TRL 1.x computes the loss with its own chunked (fused) LM head,
so neither side materialises [tokens x 256k] logits.

Tokens: non-padding tokens of the batches (ours: metrics.jsonl "tokens";
TRL: its num_tokens, the attention mask's sum). Ours buckets padded batches
by length and TRL pads random pairs, so at equal tokens/s ours also wastes
less compute on padding. tokens_per_s is the steady state, from the end of
step --warmup to the last step; process_wall_s is the whole process (model
load, data preparation, and for ours the final checkpoint + model dir
written, which TRL with save_strategy="no" does not write). Peak RSS: ours by
/usr/bin/time, TRL by getrusage in its process. Threads: --threads on both
(our training.threads; torch.set_num_threads for TRL; OMP_NUM_THREADS both).

Usage: benchmarks/bench_sft.py [--work DIR] [--steps N] [--threads N] [--samples N]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

from bench_fixture import SMALL_256K_CONFIG, gsm8k_chats, make_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ST = os.path.join(ROOT, "build", "salamandra-tune")
PY = sys.executable
MAX_LENGTH, ROWS, LR = 512, 2, 1e-4

TRL_CHILD = textwrap.dedent("""
    import json, resource, sys, time
    import torch
    model_dir, data_file, steps, threads, warmup, out_dir = sys.argv[1:7]
    steps, threads, warmup = int(steps), int(threads), int(warmup)
    torch.set_num_threads(threads)
    start = time.perf_counter()
    import datasets, transformers
    from trl import SFTConfig, SFTTrainer
    datasets.disable_progress_bars()
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    line = "{{ '<|im_start|>' + message['role'] + '\\\\n' + message['content'] + '<|im_end|>\\\\n' }}"
    assert tok.chat_template.count(line) == 1, "unexpected built-in ChatML template"
    tok.chat_template = tok.chat_template.replace(
        line, "{%- if message['role'] == 'assistant' -%}{{ '<|im_start|>assistant\\\\n' }}{% generation %}"
        "{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\\\n' }}{%- else -%}" + line + "{%- endif -%}")
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    records = [json.loads(l) for l in open(data_file, encoding="utf-8") if l.strip()]
    dataset = datasets.Dataset.from_list([{"messages": r["messages"]} for r in records])
    config = SFTConfig(output_dir=out_dir, max_steps=steps, per_device_train_batch_size=ROWS_,
                       gradient_accumulation_steps=1, learning_rate=LR_, weight_decay=0.0,
                       lr_scheduler_type="constant", warmup_steps=0, max_grad_norm=1.0, optim="adamw_torch",
                       max_length=MAX_LENGTH_, packing=False, padding_free=False, assistant_only_loss=True,
                       activation_checkpointing=False, use_cpu=True, bf16=False, fp16=False,
                       save_strategy="no", report_to=[],
                       logging_steps=steps, disable_tqdm=True, dataloader_num_workers=0, seed=42)
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tok)
    marks = []

    class Clock(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            marks.append((time.perf_counter(), trainer._total_train_tokens))

    trainer.add_callback(Clock())
    trainer.train()
    (t0, n0), (t1, n1) = marks[warmup - 1], marks[-1]
    print(json.dumps({"steps": len(marks), "tokens": n1, "steady_tokens": n1 - n0, "steady_s": t1 - t0,
                      "tokens_per_s": (n1 - n0) / (t1 - t0), "process_wall_s": time.perf_counter() - start,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""").replace("ROWS_", str(ROWS)).replace("LR_", repr(LR)).replace("MAX_LENGTH_", str(MAX_LENGTH))


def ours(model_dir, data_file, work, steps, threads, warmup):
    out = os.path.join(work, "ours_run")
    shutil.rmtree(out, ignore_errors=True)
    recipe = os.path.join(work, "sft.toml")
    with open(recipe, "w") as f:
        f.write(f'[model]\npath = "{model_dir}"\ndtype = "float32"\ndevice = "cpu"\nactivation_checkpointing = false\n'
                f'[data]\ntrain = ["{data_file}"]\nmax_length = {MAX_LENGTH}\ntruncation = "right"\npacking = false\n'
                f'train_on = "assistant"\ncache_dir = "{os.path.join(work, "cache")}"\n'
                f'[training]\noutput_dir = "{out}"\nmax_steps = {steps}\nmicro_batch_rows = {ROWS}\n'
                f'grad_accumulation = 1\nmax_grad_norm = 1.0\nthreads = {threads}\n'
                f'[optimizer]\nlr = {LR}\nweight_decay = 0.0\n[schedule]\nkind = "constant"\nwarmup_steps = 0\n'
                f'[logging]\nevery_steps = {steps}\nplot = false\n')
    rss_file = os.path.join(work, "ours_rss_kb")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    start = time.perf_counter()
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file, ST, "sft", recipe], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    metrics = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if l.strip()]
    metrics = [m for m in metrics if "loss" in m and "eval_loss" not in m]
    shutil.rmtree(out)  # checkpoint + final model: ~2 GB at 256k vocabulary
    cumulative = [sum(m["tokens"] for m in metrics[:k + 1]) for k in range(len(metrics))]
    n0, n1 = cumulative[warmup - 1], cumulative[-1]
    t0, t1 = metrics[warmup - 1]["elapsed_s"], metrics[-1]["elapsed_s"]
    return {"steps": len(metrics), "tokens": n1, "steady_tokens": n1 - n0, "steady_s": t1 - t0,
            "tokens_per_s": (n1 - n0) / (t1 - t0), "process_wall_s": wall,
            "peak_rss_mb": int(open(rss_file).read().split()[-1]) / 1024,
            "loss_first_last": [metrics[0]["loss"], metrics[-1]["loss"]]}


def trl(model_dir, data_file, work, steps, threads, warmup):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false")
    result = subprocess.run([PY, "-c", TRL_CHILD, model_dir, data_file, str(steps), str(threads), str(warmup),
                             os.path.join(work, "trl_run")], check=True, capture_output=True, text=True, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=os.path.join(ROOT, "build", "bench", "sft"))
    parser.add_argument("--data", default=os.environ.get("ST_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data")))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2, help="steps left out of the steady-state tokens/s")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    a = parser.parse_args()
    assert 1 <= a.warmup < a.steps
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)

    records, data_file = gsm8k_chats(a.data, a.samples, a.work)
    config = SMALL_256K_CONFIG
    # The vocabulary stays the config's 256k (init --tokenizer would take the tokenizer's).
    model = make_model(ST, a.work, records, config)

    o = ours(model, data_file, a.work, a.steps, a.threads, a.warmup)
    t = trl(model, data_file, a.work, a.steps, a.threads, a.warmup)
    report = {"machine": {"cpus": os.cpu_count(), "threads": a.threads},
              "settings": {"config": config, "dtype": "float32", "max_length": MAX_LENGTH, "micro_batch_rows": ROWS,
                           "grad_accumulation": 1, "steps": a.steps, "warmup_steps_excluded": a.warmup,
                           "samples": len(records), "padded": True, "loss": "assistant only",
                           "tokens_counted": "non-padding tokens"},
              "ours": o, "trl": t,
              "tokens_per_s_ratio": o["tokens_per_s"] / t["tokens_per_s"],
              "peak_rss_ratio": o["peak_rss_mb"] / t["peak_rss_mb"],
              "process_wall_ratio": o["process_wall_s"] / t["process_wall_s"]}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
