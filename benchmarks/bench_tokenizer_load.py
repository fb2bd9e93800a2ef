#!/usr/bin/env python3
"""Benchmark (not a test): loading a Salamandra-size tokenizer.json, ours vs
transformers' AutoTokenizer, side by side in one run; prints JSON with
absolute figures and the ratios ours/reference.

Tokenizer: the real 256k Salamandra tokenizer cannot be fetched, so one of
the same shape is built here (cached under --work; rebuilt when the
parameters change): a `tokenizers` BPE trained on NTREX-128 + UDHR, words
"▁"-prefixed and digits kept single as in Salamandra's SentencePiece config,
with min_frequency 1 it reaches 256k on that text; should it fall short, the
rest is synthetic pieces (concatenations of two trained pieces, each with the
merge that makes it). Layout as `salamandra-tune build-tokenizer` writes it:
<unk> <s> </s> <pad> <|im_start|> <|im_end|> at 0-5, <|reserved_token_1..98|>
at 6-103, the 256 byte pieces at 104-359, then the trained pieces. The dir
is what transformers 5 saves (LlamaTokenizer.save_pretrained: tokenizer.json,
tokenizer_config.json with tokenizer_class LlamaTokenizer,
chat_template.jinja). A 1000-piece dir made the same way is the baseline.

Each load runs in a fresh process, --repeats times per side and dir:
  reference: python -c 'from transformers import AutoTokenizer' and then
             AutoTokenizer.from_pretrained(DIR), timed inside (imports not
             counted);
  ours:      `--ours BINARY DIR` (benchmarks/bench_tokenizer_load.cpp), which
             loads the tokenizer, exits and prints {"load_s": ...}; without
             --ours only the reference is measured.
Peak RSS is each child's own ru_maxrss (os.wait4). Linux keeps a process's
peak across exec, so a child spawned by a big process starts at that
process's RSS: this script therefore builds the tokenizers in a subprocess
and spawns the measured ones from a parent that imports neither tokenizers
nor transformers (its RSS, parent_rss_mb, is a floor under every peak).
rss_mb is the load's share:
the median peak on the 256k dir minus the median peak on the 1000-piece dir
loaded the same way (interpreter, imports, libraries and fixed costs cancel).
process_s is the child's wall time as the parent sees it.

Usage: benchmarks/bench_tokenizer_load.py [--work DIR] [--ours BINARY]
           [--repeats N] [--pieces N] [--out FILE]
"""
import argparse
import glob
import gzip
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
GENERATOR = 1  # bump when the generated tokenizer changes

SPECIALS = ["<unk>", "<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"] + [
    f"<|reserved_token_{i}|>" for i in range(1, 99)]
BYTES = [f"<0x{b:02X}>" for b in range(256)]

REFERENCE_CHILD = """
import json, sys, time
from transformers import AutoTokenizer
from transformers.utils import logging
logging.set_verbosity_error()
start = time.perf_counter()
tok = AutoTokenizer.from_pretrained(sys.argv[1])
load_s = time.perf_counter() - start
print(json.dumps({"load_s": load_s, "class": type(tok).__name__, "pieces": len(tok)}))
"""


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def corpus(data):
    files = sorted(glob.glob(os.path.join(data, "ntrex128", "*.txt.gz"))) + sorted(
        glob.glob(os.path.join(data, "udhr", "*.txt")))
    if not files:
        sys.exit(f"no NTREX-128/UDHR text under {data} (set --data or ST_SHARED_DATA)")
    return files


def read_lines(files):
    for path in files:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            yield from f.read().split("\n")


def train(files, size):
    """Trained pieces (in id order) and merges of a BPE of at most `size` pieces."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
        pre_tokenizers.Digits(individual_digits=True)])
    trainer = trainers.BpeTrainer(vocab_size=size, min_frequency=1, limit_alphabet=2000, show_progress=False)
    tok.train_from_iterator(read_lines(files), trainer)
    model = json.loads(tok.to_str())["model"]
    pieces = sorted(model["vocab"], key=model["vocab"].get)
    return pieces, [tuple(m) for m in model["merges"]]


def build(out, pieces, merges, total):
    """A Salamandra-style dir of `total` pieces, as transformers 5 saves it."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import AutoTokenizer

    vocab = {}
    for piece in SPECIALS + BYTES + pieces:
        if len(vocab) == total:
            break
        vocab.setdefault(piece, len(vocab))
    trained = len(vocab) - len(SPECIALS) - len(BYTES)
    merges = [m for m in merges if m[0] in vocab and m[1] in vocab and m[0] + m[1] in vocab]
    # Synthetic pieces: two trained pieces joined, with the merge that makes them.
    first, count, i = len(SPECIALS) + len(BYTES), trained, 0
    while len(vocab) < total:
        assert i < count * count, "too few trained pieces to pad from"
        a = pieces[(i * 7919) % count]
        b = pieces[(i // count * 104729 + i) % count]
        i += 1
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
            merges.append((a, b))
    assert len(vocab) == total and all(vocab[p] < first for p in SPECIALS + BYTES)

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=True, byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", 1)])
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    with tempfile.TemporaryDirectory() as raw:
        tok.save(os.path.join(raw, "tokenizer.json"))
        with open(os.path.join(raw, "tokenizer_config.json"), "w") as f:
            json.dump({"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>",
                       "unk_token": "<unk>", "pad_token": "<pad>", "extra_special_tokens": SPECIALS[4:6],
                       "legacy": False, "model_max_length": 8192, "clean_up_tokenization_spaces": False}, f)
        shutil.rmtree(out, ignore_errors=True)
        AutoTokenizer.from_pretrained(raw).save_pretrained(out)
    check = AutoTokenizer.from_pretrained(out)
    assert type(check).__name__ == "LlamaTokenizer" and len(check) == total, (type(check), len(check))
    assert [check.convert_tokens_to_ids(s) for s in SPECIALS[:6]] == list(range(6))
    return {"pieces": total, "trained_pieces": trained, "synthetic_pieces": total - first - trained,
            "merges": len(merges)}


def prepare(work, data, pieces):
    """The cached big and small dirs and the big one's description."""
    files = corpus(data)
    stamp = {"generator": GENERATOR, "pieces": pieces,
             "corpus": [[os.path.basename(f), os.path.getsize(f)] for f in files]}
    stamp_path = os.path.join(work, "tokenizers.json")
    big, small = os.path.join(work, f"tok{pieces}"), os.path.join(work, "tok1000")
    if os.path.exists(stamp_path):
        with open(stamp_path) as f:
            cached = json.load(f)
        if cached["stamp"] == stamp and os.path.isdir(big) and os.path.isdir(small):
            return big, small, cached["big"]
    os.makedirs(work, exist_ok=True)
    start = time.perf_counter()
    trained, merges = train(files, pieces - len(SPECIALS) - len(BYTES))
    log(f"trained {len(trained)} pieces, {len(merges)} merges in {time.perf_counter() - start:.1f} s")
    info = build(big, trained, merges, pieces)
    build(small, trained, merges, 1000)
    log(f"built {big} in {time.perf_counter() - start:.1f} s")
    with open(stamp_path, "w") as f:
        json.dump({"stamp": stamp, "big": info}, f, indent=2)
    return big, small, info


def measure(cmd):
    """(JSON the child printed, its wall seconds, its peak RSS in MB)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, not all children's
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed ({child.returncode}):\n{err.read().decode(errors='replace')[-2000:]}")
        return json.loads(out.read().decode().strip().splitlines()[-1]), seconds, usage.ru_maxrss / 1024


def side(cmd, big, small, repeats):
    """Figures of one side: load time, process time and peak RSS on both dirs."""
    runs = {"big": [], "small": []}
    for _ in range(repeats):  # interleaved, so drift hits both dirs alike
        for name, path in (("big", big), ("small", small)):
            runs[name].append(measure(cmd + [path]))
    load = [r[0]["load_s"] for r in runs["big"]]
    process = [r[1] for r in runs["big"]]
    peak = statistics.median(r[2] for r in runs["big"])
    baseline = statistics.median(r[2] for r in runs["small"])
    result = {"load_s_min": min(load), "load_s_median": statistics.median(load),
              "process_s_min": min(process), "process_s_median": statistics.median(process),
              "peak_rss_mb": peak, "baseline_peak_rss_mb": baseline, "rss_mb": peak - baseline,
              "baseline_load_s_median": statistics.median(r[0]["load_s"] for r in runs["small"]),
              "baseline_process_s_median": statistics.median(r[1] for r in runs["small"])}
    extra = {k: v for k, v in runs["big"][0][0].items() if k != "load_s"}
    return {**result, **extra}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=os.path.join(ROOT, "build", "bench", "tokenizer_load"))
    parser.add_argument("--data", default=os.environ.get("ST_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data")))
    parser.add_argument("--ours", help="binary run as `BINARY DIR`, printing {\"load_s\": ...}")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pieces", type=int, default=256000)
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = os.path.abspath(args.work)
    if args.prepare_only:
        print(json.dumps(prepare(work, args.data, args.pieces)))
        return

    # In a child, so that this process stays small (see the RSS note above).
    prepared = subprocess.run([PY, os.path.abspath(__file__), "--prepare-only", "--work", work, "--data", args.data,
                               "--pieces", str(args.pieces)], check=True, stdout=subprocess.PIPE, text=True)
    big, small, info = json.loads(prepared.stdout.strip().splitlines()[-1])
    size = os.path.getsize(os.path.join(big, "tokenizer.json"))
    log(f"{big}: {info['pieces']} pieces ({info['synthetic_pieces']} synthetic), {info['merges']} merges, "
        f"tokenizer.json {size / 2**20:.1f} MiB")
    report = {"machine": {"cpus": os.cpu_count()}, "repeats": args.repeats,
              "parent_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "tokenizer": {**info, "dir": big, "tokenizer_json_mb": size / 2**20,
                            "baseline_dir": small}}

    reference = side([PY, "-c", REFERENCE_CHILD], big, small, args.repeats)
    assert reference["class"] == "LlamaTokenizer" and reference["pieces"] == info["pieces"], reference
    report["reference"] = reference
    if args.ours:
        ours = side([os.path.abspath(args.ours)], big, small, args.repeats)
        report["ours"] = ours
        report["ratios"] = {key: ours[key] / reference[key] for key in
                            ("load_s_min", "load_s_median", "process_s_min", "process_s_median", "rss_mb",
                             "peak_rss_mb")}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
