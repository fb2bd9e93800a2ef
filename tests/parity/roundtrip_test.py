#!/usr/bin/env python3
"""Round trip through the CLI: a model dir written by `salamandra-tune init`
(with a tokenizer from `salamandra-tune build-tokenizer`) loads in
transformers, and transformers' log-probs and token ids for a set of
documents equal what `salamandra-tune score` prints for the same dir.

Usage: roundtrip_test.py SALAMANDRA_TUNE WORK_DIR
"""
import json
import os
import shutil
import subprocess
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

DOCUMENTS = [
    "Hola, com estàs? Avui fa un dia preciós a Barcelona.",
    "The quick brown fox jumps over the lazy dog 1234567890 times.",
    "Ein Satz mit Umlauten: Größe, Übermut, ähnlich.",
    "  leading spaces,\ttabs and   runs of spaces  ",
    "Ελληνικά και кириллица 漢字 🙂",
    "x",
]
TOLERANCE = 1e-4  # fp32 weights and compute on both sides


def run(*args):
    subprocess.run(args, check=True)


def main(binary, work):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    corpus = os.path.join(work, "corpus.txt")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(corpus, "w", encoding="utf-8") as out:
        for folder in ("model", "cli", "common"):
            for name in sorted(os.listdir(os.path.join(root, folder))):
                path = os.path.join(root, folder, name)
                if os.path.isfile(path):
                    out.write(open(path, encoding="utf-8").read())
        out.write("\n".join(DOCUMENTS) + "\n")
    run(binary, "build-tokenizer", "--input", corpus, "--out", os.path.join(work, "tok"), "--vocab-size", "1500")
    config = {"model_type": "llama", "vocab_size": 1500, "hidden_size": 64, "intermediate_size": 131,
              "num_hidden_layers": 3, "num_attention_heads": 8, "num_key_value_heads": 2,
              "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "max_position_embeddings": 512,
              "initializer_range": 0.1}
    with open(os.path.join(work, "config.json"), "w") as f:
        json.dump(config, f)
    model_dir = os.path.join(work, "model")
    run(binary, "init", "--config", os.path.join(work, "config.json"), "--out", model_dir, "--dtype", "float32",
        "--tokenizer", os.path.join(work, "tok"), "--seed", "7", "--max-shard-mb", "1")
    docs = os.path.join(work, "docs.jsonl")
    with open(docs, "w", encoding="utf-8") as f:
        for d in DOCUMENTS:
            f.write(json.dumps({"text": d}) + "\n")
    scored = subprocess.run([binary, "score", "--model", model_dir, "--input", docs],
                            check=True, capture_output=True, text=True).stdout.splitlines()

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    failures, worst = 0, 0.0
    for text, line in zip(DOCUMENTS, scored, strict=True):
        ours = json.loads(line)
        ids = tokenizer(text).input_ids
        if ours["ids"] != ids:
            print(f"FAIL ids differ for {text!r}: ours {ours['ids']} transformers {ids}")
            failures += 1
            continue
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].float()
        ref = torch.log_softmax(logits[:-1], -1).gather(-1, torch.tensor(ids[1:])[:, None]).squeeze(-1)
        if ours["logprobs"][0] is not None:
            print(f"FAIL first log-prob must be null for {text!r}")
            failures += 1
        diff = (torch.tensor(ours["logprobs"][1:], dtype=torch.float32) - ref).abs().max().item() if len(ids) > 1 else 0.0
        worst = max(worst, diff)
        if diff > TOLERANCE:
            print(f"FAIL log-probs differ by {diff} for {text!r}")
            failures += 1
    sharded = os.path.exists(os.path.join(model_dir, "model.safetensors.index.json"))
    print(f"round trip: {len(DOCUMENTS)} documents, max |logprob diff| {worst:.3g}, sharded={sharded}")
    print(f"{len(DOCUMENTS) - failures} passed, {failures} failed")
    return 1 if failures or not sharded else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
