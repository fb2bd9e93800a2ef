#!/usr/bin/env python3
"""Benchmark (not a test): `salamandra-tune prepare` vs TRL's SFT dataset
preparation, side by side in one run on the same data and tokenizer; prints
JSON with absolute figures and ratios.

Data: the real chat sets of shared/data (gsm8k_chat, fastchat, toolcall_chat,
mt_bench_x with reference answers) as one messages JSONL, repeated --repeat
times. Tokenizer: a Salamandra-style tokenizer built here (the real one
cannot be fetched); chat template: its ChatML, with {% generation %} markers
for TRL (assistant_only_loss needs them; the rendered text is identical).

Ours: prepare with 1 tokenizer thread and with all cores (cold cache each
time). TRL: datasets.map over trl.data_utils._tokenize with
return_assistant_tokens_mask (what SFTTrainer runs for assistant_only_loss),
num_proc 1 and all cores. Tokens/s counts every token of every sample.
Packing: trained tokens / (rows x max_length), ours (best-fit-decreasing)
vs trl.data_utils.pack_dataset(strategy="bfd").

Usage: benchmarks/bench_prepare.py [--work DIR] [--repeat N] [--max-length N]
"""
import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ST = os.path.join(ROOT, "build", "salamandra-tune")


def jsonl(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def chat_records(data):
    records = []
    for name in ("chat_train.jsonl", "chat_validation.jsonl"):
        records += [{"messages": r["messages"]} for r in jsonl(os.path.join(data, "gsm8k_chat", name))]
    roles = {"human": "user", "gpt": "assistant", "system": "system"}
    for r in json.load(open(os.path.join(data, "fastchat", "dummy_conversation.json"), encoding="utf-8")):
        records.append({"messages": [{"role": roles[t["from"]], "content": t["value"]} for t in r["conversations"]]})
    for lang in ("de", "es", "fr", "it"):
        folder = os.path.join(data, "mt_bench_x", lang)
        answers = {a["question_id"]: a["choices"][0]["turns"] for a in jsonl(os.path.join(folder, "reference_answer", "gpt-4.jsonl"))}
        for q in jsonl(os.path.join(folder, "question.jsonl")):
            if q["question_id"] in answers:
                messages = []
                for question, answer in zip(q["turns"], answers[q["question_id"]]):
                    messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
                records.append({"messages": messages})
    return records


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=os.path.join(ROOT, "build", "bench", "prepare"))
    parser.add_argument("--data", default=os.environ.get("ST_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data")))
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--max-length", type=int, default=2048)
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    cores = os.cpu_count() or 1

    # Tokenizer trained on NTREX (all languages).
    corpus = os.path.join(args.work, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as out:
        ntrex = os.path.join(args.data, "ntrex128")
        for name in sorted(os.listdir(ntrex)):
            if name.endswith(".txt.gz"):
                with gzip.open(os.path.join(ntrex, name), "rt", encoding="utf-8") as f:
                    out.writelines(f.readlines()[:400])
    model = os.path.join(args.work, "model")
    subprocess.run([ST, "build-tokenizer", "--input", corpus, "--out", model, "--vocab-size", "8000"],
                   check=True, stdout=subprocess.DEVNULL)

    records = chat_records(args.data) * args.repeat
    data_file = os.path.join(args.work, "chats.jsonl")
    with open(data_file, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    result = {"samples": len(records), "cores": cores, "max_length": args.max_length}

    # ---- ours
    recipe = os.path.join(args.work, "recipe.toml")
    with open(recipe, "w") as f:
        f.write(f'[model]\npath = "{model}"\n[data]\ntrain = ["{data_file}"]\nmax_length = {args.max_length}\n')
    for workers in (1, cores):
        cache = os.path.join(args.work, f"cache{workers}")
        start = time.perf_counter()
        subprocess.run([ST, "prepare", recipe, f"data.cache_dir={cache}", f"data.workers={workers}"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        (entry,) = os.listdir(cache)
        meta = json.load(open(os.path.join(cache, entry, "meta.json")))
        result[f"ours_tokens_per_s_{workers}"] = meta["tokens"] / seconds
        result["ours_tokens"] = meta["tokens"]
        result["ours_trained_tokens"] = meta["report"]["trained_tokens"]
    out = subprocess.run([ST, "inspect-data", recipe, "--n", "0", f"data.cache_dir={cache}"], check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "packing efficiency" in line:
            result["ours_packing_efficiency"] = float(line.rsplit(" ", 1)[1].rstrip("%")) / 100

    # ---- TRL
    import datasets
    import transformers
    from trl.data_utils import _tokenize, pack_dataset

    datasets.disable_progress_bars()
    tok = transformers.AutoTokenizer.from_pretrained(model)
    line = "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    marked = tok.chat_template.replace(
        line, "{%- if message['role'] == 'assistant' -%}{{ '<|im_start|>assistant\\n' }}{% generation %}"
        "{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}{%- else -%}" + line + "{%- endif -%}")

    def tokenize(example):
        out = _tokenize(tok, example["messages"], chat_template=marked, return_assistant_tokens_mask=True)
        return {"input_ids": out["input_ids"], "completion_mask": out["assistant_masks"]}

    dataset = datasets.Dataset.from_list(records)
    for procs in (1, cores):
        start = time.perf_counter()
        tokenized = dataset.map(tokenize, remove_columns=["messages"], num_proc=procs if procs > 1 else None,
                                load_from_cache_file=False)
        seconds = time.perf_counter() - start
        tokens = sum(len(x) for x in tokenized["input_ids"])
        result[f"trl_tokens_per_s_{procs}"] = tokens / seconds
        result["trl_tokens"] = tokens
    trained = sum(sum(m) for m in tokenized["completion_mask"])
    packed = pack_dataset(tokenized, args.max_length, strategy="bfd")
    result["trl_packing_efficiency"] = trained / (len(packed) * args.max_length)
    result["trl_trained_tokens"] = trained

    for n in sorted({1, cores}):
        result[f"ratio_tokens_per_s_{n}"] = result[f"ours_tokens_per_s_{n}"] / result[f"trl_tokens_per_s_{n}"]
    result["ratio_packing_efficiency"] = result["ours_packing_efficiency"] / result["trl_packing_efficiency"]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
