#!/usr/bin/env python3
"""The CLI contract: --help on every command, usage mistakes exit 2 with a
message, bad input files exit 1 with an error naming the file (and line,
key or tensor), and nothing crashes (no signal, no abort).

Usage: cli_test.py SALAMANDRA_TUNE WORK_DIR
"""
import json
import os
import shutil
import subprocess
import sys

COMMANDS = ["init", "build-tokenizer", "generate", "score", "prepare", "inspect-data", "make-tasks", "eval-tasks"]
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


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def same_bytes(a, b):
    if not (os.path.exists(a) and os.path.exists(b)):
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def write_tokenizer_json(model_dir, indent):
    """tokenizer.json for a dir that has only tokenizer.model, as transformers
    converts it; `indent` changes the file's bytes and nothing else."""
    from transformers import AutoTokenizer

    spec = json.loads(AutoTokenizer.from_pretrained(model_dir).backend_tokenizer.to_str())
    write(os.path.join(model_dir, "tokenizer.json"), json.dumps(spec, indent=indent, ensure_ascii=False))


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
    data_commands(binary, work, tok)
    task_commands(binary, work, model)
    sft_commands(binary, work, model)
    print(f"{checks - failures} passed, {failures} failed")
    return 1 if failures else 0


def task_commands(binary, work, model):
    """make-tasks and eval-tasks: the demo's synthetic data and its accuracy check."""
    tasks = os.path.join(work, "tasks")
    args = ["make-tasks", "--out", tasks, "--train", "60", "--test", "20", "--seed", "3"]
    expect("make-tasks", run(binary, *args), 0, "train.jsonl (60 samples)", "test.jsonl (20)", "corpus.txt")
    train = [json.loads(line) for line in open(os.path.join(tasks, "train.jsonl"), encoding="utf-8")]
    test = [json.loads(line) for line in open(os.path.join(tasks, "test.jsonl"), encoding="utf-8")]
    shared = {r["messages"][0]["content"] for r in train} & {r["messages"][0]["content"] for r in test}
    expect("make-tasks: 20 test samples, none in train",
           subprocess.CompletedProcess([], 0 if len(test) == 20 and not shared else 1, "", ""), 0)
    before = open(os.path.join(tasks, "test.jsonl"), encoding="utf-8").read()
    expect("make-tasks again", run(binary, *args), 0)
    same = open(os.path.join(tasks, "test.jsonl"), encoding="utf-8").read() == before
    expect("make-tasks: same seed, same file", subprocess.CompletedProcess([], 0 if same else 1, "", ""), 0)
    expect("make-tasks unknown language", run(binary, "make-tasks", "--out", tasks, "--languages", "en,xx"), 1,
           'unknown language "xx"', "en, es, ca, de, fr, it, pt, gl, eu")
    expect("make-tasks empty list entry", run(binary, "make-tasks", "--out", tasks, "--tasks", "add,,sort"), 2,
           "--tasks has an empty entry")

    data = os.path.join(tasks, "test.jsonl")
    report = os.path.join(work, "accuracy.json")
    result = run(binary, "eval-tasks", "--model", model, "--data", data, "--max-new-tokens", "4", "--output", report)
    expect("eval-tasks random model", result, 0, "accuracy", "successor", "eu")
    if os.path.exists(report):
        r = json.load(open(report))
        ok = r["n"] == 20 and 0 <= r["accuracy"] <= 1 and sum(t["n"] for t in r["per_task"].values()) == 20
        expect("eval-tasks --output", subprocess.CompletedProcess([], 0 if ok else 1, "", ""), 0)
    expect("eval-tasks --limit", run(binary, "eval-tasks", "--model", model, "--data", data, "--limit", "3",
                                     "--max-new-tokens", "2"), 0, " of 3)")
    missing = os.path.join(work, "no_tasks.jsonl")
    expect("eval-tasks missing file", run(binary, "eval-tasks", "--model", model, "--data", missing), 1, missing)
    expect("eval-tasks without --data", run(binary, "eval-tasks", "--model", model), 2, "missing required option --data")
    no_answer = os.path.join(work, "no_answer.jsonl")
    write(no_answer, '{"messages": [{"role": "user", "content": "Hola"}]}\n')
    expect("eval-tasks no reference", run(binary, "eval-tasks", "--model", model, "--data", no_answer), 1,
           no_answer + ":1", "no assistant message")


def sft_commands(binary, work, model):
    """sft: recipe mistakes, resume mistakes, non-finite losses, and every shipped recipe's keys."""
    work, model = os.path.abspath(work), os.path.abspath(model)
    data = os.path.join(work, "sft_chat.jsonl")
    write(data, "".join('{"messages": [{"role": "user", "content": "Hola %d"}, '
                        '{"role": "assistant", "content": "Bon dia %d"}]}\n' % (i, i) for i in range(12)))
    recipe = os.path.join(work, "sft.toml")
    run_dir = os.path.join(work, "sft_run")
    write(recipe, f'[model]\npath = "{model}"\ndtype = "float32"\n[data]\ntrain = ["{data}"]\nmax_length = 64\n'
                  f'cache_dir = "{work}/cache"\n[training]\noutput_dir = "{run_dir}"\nmax_steps = 3\n'
                  f'micro_batch_rows = 2\n[logging]\nplot = false\n')
    expect("sft without recipe", run(binary, "sft"), 2, "missing RECIPE")
    expect("sft --help lists keys", run(binary, "sft", "--help"), 0, "recipe keys:", "training.grad_accumulation")
    expect("sft unknown key", run(binary, "sft", recipe, "training.grad_acumulation=2"), 1,
           'did you mean "training.grad_accumulation"')
    expect("sft out of range", run(binary, "sft", recipe, "training.micro_batch_rows=0"), 1,
           "training.micro_batch_rows")
    expect("sft bad schedule", run(binary, "sft", recipe, "schedule.kind=exponential"), 1, "schedule.kind", "cosine")
    expect("sft no output dir", run(binary, "sft", recipe, 'training.output_dir=""'), 1, "training.output_dir")
    expect("sft resume without checkpoint", run(binary, "sft", recipe, "--resume"), 1, "no checkpoint")
    # The model dir as BSC ships one: tokenizer.json beside tokenizer.model
    # and the instruct generation_config. Every dir sft writes must carry
    # those files byte for byte.
    write_tokenizer_json(model, indent=None)
    write(os.path.join(model, "generation_config.json"),
          '{"bos_token_id": 1, "eos_token_id": [2, 5], "temperature": 0.6, "repetition_penalty": 1.2,'
          ' "do_sample": true}\n')
    expect("sft runs", run(binary, "sft", recipe), 0, "final model:")
    for name in ("final/config.json", "final/tokenizer.model", "final/tokenizer_config.json", "metrics.jsonl",
                 "recipe.toml", "checkpoint-3/trainer_state.json"):
        expect(f"sft wrote {name}", subprocess.CompletedProcess([], 0 if os.path.exists(os.path.join(run_dir, name))
                                                                  else 1, "", ""), 0)
    for sub in ("final", "checkpoint-3"):
        for name in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                     "generation_config.json"):
            same = same_bytes(os.path.join(model, name), os.path.join(run_dir, sub, name))
            expect(f"sft {sub} carries {name}", subprocess.CompletedProcess([], 0 if same else 1, "", ""), 0)
    expect("sft refuses a used run dir", run(binary, "sft", recipe), 1, "--resume")
    # bf16 training of an fp32 model: the fp32 masters start from the fp32
    # weights, not their bf16 rounding (with lr 0 they stay exactly those).
    bf16_run = os.path.join(work, "sft_bf16_masters")
    expect("sft bf16 from fp32", run(binary, "sft", recipe, f"training.output_dir={bf16_run}", "model.dtype=bfloat16",
                                     "optimizer.lr=0", "training.max_steps=1"), 0, "final model:")
    from safetensors.numpy import load_file
    source = load_file(os.path.join(model, "model.safetensors"))
    state = load_file(os.path.join(bf16_run, "checkpoint-1", "training_state.safetensors"))
    exact = all((state["master." + name] == value).all() for name, value in source.items())
    expect("sft bf16 masters are the fp32 weights", subprocess.CompletedProcess([], 0 if exact else 1, "", ""), 0)
    expect("sft preference data", run(binary, "sft", recipe, f"training.output_dir={work}/sft_pref",
                                      f'data.train=["{work}/pref.jsonl"]'), 1, "pref.jsonl")
    write(os.path.join(work, "pref.jsonl"), '{"prompt": "Hola", "chosen": "Bon dia", "rejected": "Adeu"}\n')
    expect("sft preference data", run(binary, "sft", recipe, f"training.output_dir={work}/sft_pref",
                                      f'data.train=["{work}/pref.jsonl"]'), 1, "preference")
    expect("sft non-finite stops", run(binary, "sft", recipe, f"training.output_dir={work}/sft_nan",
                                       "optimizer.lr=1e30", "training.max_grad_norm=0", "training.max_steps=6"), 1,
           "not finite", "training.on_nonfinite")
    expect("sft non-finite skipped", run(binary, "sft", recipe, f"training.output_dir={work}/sft_skip",
                                         "optimizer.lr=1e30", "training.max_grad_norm=0", "training.max_steps=6",
                                         "training.on_nonfinite=skip"), 0, "final model:")
    with open(os.path.join(work, "sft_skip", "metrics.jsonl")) as f:
        skipped = [json.loads(line) for line in f if '"loss"' in line][-1]["nonfinite_steps"]
    expect("sft counts skipped steps", subprocess.CompletedProcess([], 0 if skipped > 0 else 1, "", ""), 0)
    # Every shipped recipe is valid against the schema (its paths replaced by ours).
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for name in sorted(os.listdir(os.path.join(root, "recipes"))):
        expect(f"recipe {name}", run(binary, "prepare", os.path.join(root, "recipes", name), f"model.path={model}",
                                     f'data.train=["{data}"]', f"data.cache_dir={work}/cache"), 0, "train:")


def data_commands(binary, work, tok):
    """prepare and inspect-data: recipes, data files and their errors."""
    work, tok = os.path.abspath(work), os.path.abspath(tok)
    data = os.path.join(work, "chat.jsonl")
    write(data, '{"messages": [{"role": "user", "content": "Hola"}, {"role": "assistant", "content": "Bon dia!"}]}\n'
                '{"messages": [{"role": "user", "content": "Adeu"}, {"role": "assistant", "content": "Fins aviat"}]}\n')
    recipe = os.path.join(work, "recipe.toml")
    cache = os.path.join(work, "cache")
    write(recipe, f'[model]\npath = "{tok}"\n[data]\ntrain = ["{data}"]\nmax_length = 64\ncache_dir = "{cache}"\n')
    expect("prepare without recipe", run(binary, "prepare"), 2, "missing RECIPE")
    expect("prepare", run(binary, "prepare", recipe), 0, "train: 2 samples", "built in")
    expect("prepare again reuses", run(binary, "prepare", recipe), 0, "train: 2 samples", "reused")
    expect("prepare override rebuilds", run(binary, "prepare", recipe, "data.train_on=all"), 0, "built in")
    # The cache key covers tokenizer.json: adding one, then changing only its bytes, rebuilds.
    tokj = os.path.join(work, "tok_json")
    shutil.copytree(tok, tokj)
    write_tokenizer_json(tokj, indent=None)
    expect("prepare with tokenizer.json", run(binary, "prepare", recipe, f"model.path={tokj}"), 0, "built in")
    expect("prepare with it again reuses", run(binary, "prepare", recipe, f"model.path={tokj}"), 0, "reused")
    write_tokenizer_json(tokj, indent=1)
    expect("changed tokenizer.json rebuilds", run(binary, "prepare", recipe, f"model.path={tokj}"), 0, "built in")
    bare = os.path.join(work, "tok_bare")
    shutil.copytree(tok, bare)
    os.remove(os.path.join(bare, "tokenizer.model"))
    expect("no tokenizer file", run(binary, "prepare", recipe, f"model.path={bare}"), 1, bare,
           "neither tokenizer.json nor tokenizer.model")
    # A token across the cut between untrained and trained text: with no
    # separator, "retu" + "rn" is one token; the sample is counted, not trained.
    glued = os.path.join(work, "glued.jinja")
    write(glued, "{% for m in messages %}{{ m['content'] }}{% endfor %}")
    straddle = os.path.join(work, "straddle.jsonl")
    write(straddle, '{"messages": [{"role": "user", "content": "retu"}, {"role": "assistant", "content": "rn x"}]}\n'
                    '{"messages": [{"role": "user", "content": "Hola. "}, {"role": "assistant", "content": "Ei"}]}\n')
    expect("straddling token counted", run(binary, "inspect-data", recipe, f'data.train=["{straddle}"]',
                                           f'data.chat_template="{glued}"'), 0,
           "token_straddles_boundary", "train: 1 samples")
    expect("inspect-data text", run(binary, "inspect-data", recipe), 0, "[[Bon dia!<|im_end|>]]", "length histogram")
    result = run(binary, "inspect-data", recipe, "--format", "jsonl", "--n", "0")
    expect("inspect-data jsonl", result, 0, '"mask"', '"ids"', '"text"')
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    expect("inspect-data jsonl: one object per sample", subprocess.CompletedProcess([], len(lines), "", ""), 2)
    expect("inspect-data bad format", run(binary, "inspect-data", recipe, "--format", "xml"), 2, "--format must be")
    expect("missing recipe", run(binary, "prepare", os.path.join(work, "nope.toml")), 1, "nope.toml")
    expect("unknown key", run(binary, "prepare", recipe, "data.max_lenght=5"), 1, "data.max_lenght",
           'did you mean "data.max_length"')
    expect("bad value", run(binary, "prepare", recipe, "data.train_on=everything"), 1, "data.train_on", "assistant")
    write(recipe + ".bad", f'[model]\npath = "{tok}"\n[data]\ntrain = ["{data}"]\nmax_length = "long"\n')
    expect("wrong type in file", run(binary, "prepare", recipe + ".bad"), 1, "recipe.toml.bad:5", "data.max_length")
    write(recipe + ".missing", f'[model]\npath = "{tok}"\n[data]\ntrain = ["{work}/none.jsonl"]\n')
    expect("missing data file", run(binary, "prepare", recipe + ".missing"), 1, "none.jsonl")
    bad = os.path.join(work, "bad.jsonl")
    write(bad, '{"messages": [{"role": "user", "content": "Hola"}, {"role": "assistant", "content": "Ei"}]}\n'
               '{"messages": [{"role": "user", "content": "Hola"}, {"role": "robot", "content": "Ei"}]}\n')
    expect("unknown role", run(binary, "prepare", recipe, f'data.train=["{bad}"]'), 1, bad + ":2", "robot")
    expect("unknown role skipped", run(binary, "prepare", recipe, f'data.train=["{bad}"]', "data.skip_invalid=true"), 0,
           "train: 1 samples", "unknown role")
    with open(bad, "wb") as f:
        f.write(b'{"messages": [{"role": "user", "content": "Hola"}, {"role": "assistant", "content": "Ei"}]}\n'
                b'{"messages": [{"role": "user", "content": "\xff"}, {"role": "assistant", "content": "Ei"}]}\n')
    expect("invalid utf-8", run(binary, "inspect-data", recipe, f'data.train=["{bad}"]'), 1, bad + ":2", "UTF-8")
    write(bad, '{"messages": [{"role": "user", "content": "Hola"}, {"role": "user", "content": "Ei"}]}\n')
    expect("no alternation", run(binary, "prepare", recipe, f'data.train=["{bad}"]'), 1, bad + ":1")
    write(bad, '{"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "Ei"}]}\n')
    expect("empty content", run(binary, "prepare", recipe, f'data.train=["{bad}"]'), 1, bad + ":1", "empty")
    mapped = os.path.join(work, "mapped.jsonl")
    write(mapped, '{"dialog": [{"speaker": "human", "text": "Hola"}, {"speaker": "bot", "text": "Ei, bon dia"}]}\n')
    expect("field mapping", run(binary, "inspect-data", recipe, f'data.train=["{mapped}"]', "data.format=messages",
                                'data.fields={messages = "dialog", role = "speaker", content = "text"}',
                                'data.role_aliases={human = "user", bot = "assistant"}'), 0,
           "<|im_start|>user\nHola<|im_end|>", "[[Ei, bon dia<|im_end|>]]", "train: 1 samples")
    expect("unknown mapped field", run(binary, "prepare", recipe, 'data.fields={speaker = "x"}'), 1,
           "data.fields.speaker", "known fields")
    write(bad, '{"question": "Hola", "answer": "Ei"}\n')
    expect("unknown schema", run(binary, "prepare", recipe, f'data.train=["{bad}"]'), 1, bad, "format")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
