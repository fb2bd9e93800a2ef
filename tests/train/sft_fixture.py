"""A tiny setup the run tests share: a Salamandra-style tokenizer, a tiny
float32 model and 120 multilingual chats (and preference pairs made of
them), made with salamandra-tune itself; plus helpers to write recipes, run
the binary and read a run's results."""
import json
import os
import random
import subprocess
import sys

WORDS = "hola bon dia adéu gràcies casa gat gos sol lluna aigua pa vi mar muntanya riu ciutat poble".split()


def run(st, *args, **kw):
    return subprocess.run([st, *args], text=True, capture_output=True, **kw)


def must(result, what):
    if result.returncode != 0:
        sys.exit(f"{what} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result


def make_model_and_data(st, work):
    """Builds work/tok, work/model (tiny preset, vocabulary of the tokenizer)
    and work/chats.jsonl; returns (model_dir, data_file)."""
    rng = random.Random(7)
    corpus = os.path.join(work, "corpus.txt")
    with open(corpus, "w") as f:
        for _ in range(3000):
            f.write(" ".join(rng.choice(WORDS) for _ in range(12)) + "\n")
    must(run(st, "build-tokenizer", "--input", corpus, "--out", os.path.join(work, "tok"), "--vocab-size", "520"),
         "tokenizer")
    model = os.path.join(work, "model")
    must(run(st, "init", "--preset", "tiny", "--out", model, "--tokenizer", os.path.join(work, "tok"), "--dtype",
             "float32", "--seed", "3"), "init")
    data = os.path.join(work, "chats.jsonl")
    with open(data, "w") as f:
        for _ in range(120):
            turns = []
            for _ in range(rng.randint(1, 3)):
                turns.append({"role": "user", "content": " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9)))})
                turns.append({"role": "assistant",
                              "content": " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))})
            f.write(json.dumps({"messages": turns}) + "\n")
    return model, data


def make_pairs(chats, path):
    """Preference pairs from the fixture's chats: each chat's last reply is
    the chosen completion of the turns before it, and the next chat's last
    reply (a different one) the rejected. Returns path."""
    with open(chats) as f:
        samples = [json.loads(line)["messages"] for line in f]
    with open(path, "w") as f:
        for i, messages in enumerate(samples):
            other = samples[(i + 1) % len(samples)][-1]
            if other["content"] == messages[-1]["content"]:
                continue
            f.write(json.dumps({"prompt": messages[:-1], "chosen": [messages[-1]], "rejected": [other]}) + "\n")
    return path


def write_recipe(path, model, data, work, dtype="float32", sections=None):
    """A recipe over the fixture; `sections` ({"training": {"max_steps": 24}})
    adds or replaces keys of the base below."""
    base = {
        "model": {"path": model, "dtype": dtype},
        "data": {"train": [data], "max_length": 128, "cache_dir": os.path.join(work, "cache"), "eval_ratio": 0.1},
        "training": {"max_steps": 24, "micro_batch_rows": 2, "grad_accumulation": 2, "threads": 1},
        "optimizer": {"lr": 3e-3, "weight_decay": 0.1},
        "schedule": {},
        "checkpointing": {"every_steps": 3, "keep_last": 2},
        "logging": {"eval_every_steps": 8, "plot": False},
    }
    for section, keys in (sections or {}).items():
        base.setdefault(section, {}).update(keys)
    with open(path, "w") as f:
        for section, keys in base.items():
            f.write(f"[{section}]\n")
            for key, value in keys.items():
                f.write(f"{key} = {json.dumps(value)}\n")
    return path


def losses(run_dir):
    """(step, loss, grad_norm) per logged step of a run."""
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    return [(r["step"], r["loss"], r["grad_norm"]) for r in records if "loss" in r]


def weights(run_dir):
    """The bytes of the final dir's weights: the model's, or a LoRA run's adapter."""
    final = os.path.join(run_dir, "final")
    name = "adapter_model.safetensors" if os.path.exists(os.path.join(final, "adapter_model.safetensors")) \
        else "model.safetensors"
    with open(os.path.join(final, name), "rb") as f:
        return f.read()


def first_difference(got, want):
    """A message naming the first step where two loss lists differ, or None."""
    for a, b in zip(got, want):
        if a != b:
            return f"first difference at step {b[0]}: {a} vs {b}"
    if len(got) != len(want):
        return f"{len(got)} steps logged, {len(want)} expected"
    return None
