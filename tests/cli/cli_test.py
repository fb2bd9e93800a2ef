#!/usr/bin/env python3
"""The CLI contract: --help on every command, usage mistakes exit 2 with a
message, bad input files exit 1 with an error naming the file (and line,
key or tensor), and nothing crashes (no signal, no abort).

Usage: cli_test.py SALAMANDRA_TUNE WORK_DIR
"""
import os
import shutil
import subprocess
import sys

COMMANDS = ["init", "build-tokenizer", "generate", "score"]
failures = 0
checks = 0


def run(binary, *args):
    return subprocess.run([binary, *args], capture_output=True, text=True)


def expect(name, result, code, *needles):
    global failures, checks
    checks += 1
    text = result.stdout + result.stderr
    ok = result.returncode == code and all(n in text for n in needles)
    if not ok:
        failures += 1
        print(f"FAIL {name}: exit {result.returncode} (want {code}), output:\n{text}\nwanted: {needles}")


def main(binary, work):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    expect("no command", run(binary), 2, "usage")
    expect("unknown command", run(binary, "frobnicate"), 2, "unknown command")
    for command in COMMANDS:
        expect(f"{command} --help", run(binary, command, "--help"), 0, "usage: salamandra-tune " + command)
        expect(f"{command} bad option", run(binary, command, "--no-such-option"), 2, "unknown option --no-such-option")
    expect("init missing --out", run(binary, "init", "--preset", "tiny"), 2, "missing required option --out")
    expect("init both sources", run(binary, "init", "--preset", "tiny", "--config", "x", "--out", "y"), 2,
           "exactly one of")
    expect("init bad seed", run(binary, "init", "--preset", "tiny", "--out", "y", "--seed", "abc"), 2,
           "--seed expects an integer")
    expect("init unknown preset", run(binary, "init", "--preset", "huge", "--out", os.path.join(work, "h")), 1,
           "unknown preset")

    # A good tokenizer and model to break in different ways.
    corpus = os.path.join(work, "corpus.txt")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(corpus, "w", encoding="utf-8") as f:
        for name in sorted(os.listdir(os.path.join(root, "model"))):
            path = os.path.join(root, "model", name)
            if os.path.isfile(path):
                f.write(open(path, encoding="utf-8").read())
    tok = os.path.join(work, "tok")
    expect("build-tokenizer", run(binary, "build-tokenizer", "--input", corpus, "--out", tok, "--vocab-size", "600"), 0)
    model = os.path.join(work, "model")
    cfg = os.path.join(work, "config.json")
    with open(cfg, "w") as f:
        f.write('{"model_type": "llama", "vocab_size": 600, "hidden_size": 32, "intermediate_size": 50,'
                ' "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}')
    expect("init", run(binary, "init", "--config", cfg, "--out", model, "--tokenizer", tok, "--dtype", "float32"), 0)
    expect("init existing", run(binary, "init", "--config", cfg, "--out", model), 1, "already exists")
    docs = os.path.join(work, "docs.txt")
    with open(docs, "w") as f:
        f.write("Hola món\n")
    expect("score ok", run(binary, "score", "--model", model, "--input", docs), 0, '"logprobs":[null,')
    expect("generate ok", run(binary, "generate", "--model", model, "--prompt", "Hola", "--max-new-tokens", "3"), 0)

    def broken(name, edit):
        d = os.path.join(work, name)
        shutil.copytree(model, d)
        edit(d)
        return d

    def write(path, text):
        with open(path, "w") as f:
            f.write(text)

    d = broken("bad_config", lambda d: write(os.path.join(d, "config.json"), "{not json"))
    expect("malformed config.json", run(binary, "score", "--model", d, "--input", docs), 1,
           os.path.join(d, "config.json"), "malformed JSON")
    d = broken("no_tokenizer", lambda d: os.remove(os.path.join(d, "tokenizer.model")))
    expect("missing tokenizer", run(binary, "score", "--model", d, "--input", docs), 1, "tokenizer.model")

    def truncate(d):
        path = os.path.join(d, "model.safetensors")
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.truncate(size // 2)
    d = broken("truncated", truncate)
    expect("truncated weights", run(binary, "score", "--model", d, "--input", docs), 1,
           os.path.join(d, "model.safetensors"))

    def huge_header(d):
        path = os.path.join(d, "model.safetensors")
        data = bytearray(open(path, "rb").read())
        data[0:8] = (len(data) * 4).to_bytes(8, "little")
        open(path, "wb").write(bytes(data))
    d = broken("header_past_end", huge_header)
    expect("header length past end", run(binary, "score", "--model", d, "--input", docs), 1,
           os.path.join(d, "model.safetensors"))

    jsonl = os.path.join(work, "docs.jsonl")
    write(jsonl, '{"text": "ok"}\n{"text": 5}\n')
    expect("jsonl wrong type", run(binary, "score", "--model", model, "--input", jsonl), 1, jsonl + ":2",
           '"text" must be a string')
    write(jsonl, '{"text": "ok"}\n{"text": \n')
    expect("jsonl malformed", run(binary, "score", "--model", model, "--input", jsonl), 1, jsonl + ":2",
           "malformed JSON")
    expect("missing input", run(binary, "score", "--model", model, "--input", os.path.join(work, "nope.txt")), 1,
           "nope.txt")
    expect("missing model dir", run(binary, "generate", "--model", os.path.join(work, "nope"), "--prompt", "x"), 1,
           "nope")
    expect("bad top-p", run(binary, "generate", "--model", model, "--prompt", "x", "--top-p", "1.5"), 1,
           "top_p must be in (0, 1]")
    print(f"{checks - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
