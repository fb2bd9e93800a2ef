#!/usr/bin/env python3
"""The CLI contract: --help on every command, usage mistakes exit 2 with a
message, bad input files exit 1 with an error naming the file (and line,
key or tensor), and nothing crashes (no signal, no abort).

Usage: cli_test.py SALAMANDRA_TUNE WORK_DIR
"""
import json
import os
import re
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
    expect("bad top-p", run(binary, "generate", "--model", model, "--prompt", "x", "--sample", "--top-p", "1.5"), 1,
           "top_p must be in (0, 1]")
    data_commands(binary, work, tok)
    robustness_commands(binary, work, tok, model, docs)
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
    lora_commands(binary, work, model, recipe)
    dpo_commands(binary, work, model, recipe)
    # Every shipped recipe is valid against the schema (its paths replaced by ours).
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for name in sorted(os.listdir(os.path.join(root, "recipes"))):
        expect(f"recipe {name}", run(binary, "prepare", os.path.join(root, "recipes", name), f"model.path={model}",
                                     f'data.train=["{data}"]', "data.eval=[]", f"data.cache_dir={work}/cache"), 0,
               "train:")


def lora_commands(binary, work, model, recipe):
    """sft with [lora]: the final dir is a PEFT adapter dir with the tokenizer files; --adapter on score and
    generate; merge's usage and refusals; [lora] mistakes."""
    lora_run = os.path.join(work, "sft_lora")
    expect("sft lora runs", run(binary, "sft", recipe, f"training.output_dir={lora_run}", "lora.rank=4",
                                'lora.targets=["all-linear"]', "optimizer.lr=1e-2"), 0,
           "lora: 14 projections adapted (rank 4)", "final model:")
    final = os.path.join(lora_run, "final")
    files = set(os.listdir(final))
    expect_true("sft lora final is an adapter dir", {"adapter_config.json", "adapter_model.safetensors",
                                                      "tokenizer.json", "tokenizer_config.json"} <= files
                and "model.safetensors" not in files and "config.json" not in files, str(sorted(files)))
    for name in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
        expect_true(f"sft lora final carries {name}", same_bytes(os.path.join(model, name), os.path.join(final, name)))
    docs = os.path.join(work, "lora_docs.txt")
    write(docs, "Hola 3\nBon dia 4\n")
    expect("score --adapter", run(binary, "score", "--model", model, "--adapter", final, "--input", docs), 0,
           '"logprobs"')
    expect("generate --adapter", run(binary, "generate", "--model", model, "--adapter", final, "--prompt", "Hola",
                                     "--max-new-tokens", "3"), 0)
    expect("score --adapter missing", run(binary, "score", "--model", model, "--adapter", f"{work}/none",
                                          "--input", docs), 1, "none: not an adapter dir")
    merged = os.path.join(work, "lora_merged")
    expect("merge --help", run(binary, "merge", "--help"), 0, "--weight", "--dtype")
    expect("merge weights count", run(binary, "merge", "--base", model, "--adapter", final, "--adapter", final,
                                      "--weight", "1", "--out", merged), 2, "one --weight per --adapter")
    expect("merge bad dtype", run(binary, "merge", "--base", model, "--adapter", final, "--out", merged,
                                  "--dtype", "int8"), 2, "--dtype")
    merge = run(binary, "merge", "--base", model, "--adapter", final, "--out", merged)
    expect("merge", merge, 0, "self-check: max |logit difference|", "ok", "merged model:")
    expect_true("merge shows its progress to the end", ends_its_progress("merge", merge.stderr), merge.stderr)
    expect("merge refuses an existing dir", run(binary, "merge", "--base", model, "--adapter", final, "--out", merged),
           1, "exists", "--force")
    expect("merge --force", run(binary, "merge", "--base", model, "--adapter", final, "--out", merged, "--force",
                                "--dtype", "float32"), 0, "merged model:")
    expect("merged dir generates", run(binary, "generate", "--model", merged, "--prompt", "Hola",
                                       "--max-new-tokens", "3"), 0)
    expect("lora bad rank_pattern", run(binary, "sft", recipe, f"training.output_dir={work}/lora_bad",
                                        "lora.rank=4", 'lora.rank_pattern={"q_proj" = "x"}'), 1,
           "lora.rank_pattern.q_proj must be a number")
    expect("lora fractional rank", run(binary, "sft", recipe, f"training.output_dir={work}/lora_bad",
                                       "lora.rank=4", "lora.rank_pattern.q_proj=2.5"), 1,
           "lora.rank_pattern", "positive integer rank")
    expect("lora bad regex", run(binary, "sft", recipe, f"training.output_dir={work}/lora_bad", "lora.rank=4",
                                 "lora.target_regex=(unclosed"), 1, "not a regular expression")
    expect("lora targets nothing", run(binary, "sft", recipe, f"training.output_dir={work}/lora_bad", "lora.rank=4",
                                       'lora.targets=["c_attn"]'), 1, "select no projection")
    expect("lora init choices", run(binary, "sft", recipe, f"training.output_dir={work}/lora_bad", "lora.rank=4",
                                    "lora.init=pissa"), 1, "lora.init")
    expect_true("failed lora runs leave no dir", not os.path.exists(f"{work}/lora_bad"))


def dpo_commands(binary, work, model, recipe):
    """dpo: [dpo] mistakes, chat data refused, a full and a LoRA run with TRL's metrics, inspect-data on a dpo
    recipe."""
    pairs = os.path.join(work, "dpo_pairs.jsonl")
    write(pairs, "".join(f'{{"prompt": [{{"role": "user", "content": "Hola {i}"}}], '
                         f'"chosen": [{{"role": "assistant", "content": "Bon dia {i}"}}], '
                         f'"rejected": [{{"role": "assistant", "content": "Adeu {i + 1}"}}]}}\n' for i in range(12)))
    train = f'data.train=["{pairs}"]'
    out = f"training.output_dir={work}/dpo_bad"
    expect("dpo --help lists [dpo]", run(binary, "dpo", "--help"), 0, "dpo.loss", "dpo.precompute_reference")
    expect("dpo on chat data", run(binary, "dpo", recipe, out), 1, "dpo trains on preference pairs")
    expect("dpo unknown loss", run(binary, "dpo", recipe, out, train, 'dpo.loss=["sigmoidd"]'), 1,
           'dpo.loss[0] = "sigmoidd"', "is not a loss")
    expect("dpo weights count", run(binary, "dpo", recipe, out, train, 'dpo.loss=["sigmoid","sft"]',
                                    "dpo.loss_weights=[1]"), 1, "dpo.loss_weights", "1 weights for 2 losses")
    expect("dpo weights are numbers", run(binary, "dpo", recipe, out, train, 'dpo.loss_weights=["a"]'), 1,
           "dpo.loss_weights[0] must be a number")
    expect("dpo simpo with a reference", run(binary, "dpo", recipe, out, train, 'dpo.loss=["simpo"]',
                                             f"dpo.reference={model}"), 1, "reference-free")
    expect("dpo exo_pair without smoothing", run(binary, "dpo", recipe, out, train, 'dpo.loss=["exo_pair"]'), 1,
           "dpo.label_smoothing")
    expect_true("failed dpo runs leave no dir", not os.path.exists(f"{work}/dpo_bad"))
    full = os.path.join(work, "dpo_full")
    expect("dpo runs", run(binary, "dpo", recipe, f"training.output_dir={full}", train), 0,
           "reference:", "final model:")
    with open(os.path.join(full, "metrics.jsonl")) as f:
        last = [json.loads(line) for line in f if '"loss"' in line][-1]
    expect_true("dpo logs TRL's metrics", all(k in last for k in (
        "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
        "logps/rejected", "logits/chosen", "logits/rejected", "pairs")), str(last))
    expect_true("dpo final is a model dir", os.path.exists(os.path.join(full, "final", "model.safetensors")))
    lora = os.path.join(work, "dpo_lora")
    expect("dpo lora runs", run(binary, "dpo", recipe, f"training.output_dir={lora}", train, "lora.rank=4"), 0,
           "adapters switched off", "final model:")
    expect_true("dpo lora final is an adapter dir", os.path.exists(os.path.join(lora, "final",
                                                                                "adapter_model.safetensors")))
    expect("export bad dtype", run(binary, "export", "--model", model, "--out", f"{work}/m.gguf", "--dtype", "q4"),
           2, "--dtype")
    exported = run(binary, "export", "--model", model, "--out", f"{work}/export/m.gguf", "--dtype", "q8_0")
    expect("export", exported, 0, "verified", "Modelfile")
    expect_true("export shows its progress to the end", ends_its_progress("export", exported.stderr), exported.stderr)
    expect("inspect-data on a dpo recipe", run(binary, "inspect-data", recipe, train, "--n", "1"), 0,
           "chosen", "rejected")


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


def ends_its_progress(what, stderr):
    """The progress line of export or merge reached all of the bytes (a
    line, not a terminal's \r updates, as stderr is a pipe here)."""
    lines = re.findall(rf"^{what}: (\d+\.\d)/(\d+\.\d) MB, \d+ MB/s, ETA \d+ s$", stderr, re.M)
    return bool(lines) and lines[-1][0] == lines[-1][1] and float(lines[-1][1]) > 0


def expect_true(name, ok, detail=""):
    expect(name, subprocess.CompletedProcess([], 0 if ok else 1, detail, ""), 0)


def robustness_commands(binary, work, tok, model, docs):
    """The cases of issue 14 outside training runs: limits, init, generate,
    score and inspect-data tell the truth, usage mistakes exit 2, failed
    commands leave nothing behind."""
    work, tok = os.path.abspath(work), os.path.abspath(tok)
    expect("--version", run(binary, "--version"), 0, "salamandra-tune 0.1.0", "LibTorch 2.", "CUDA kernels:")
    expect("prepare --help lists the data keys", run(binary, "prepare", "--help"), 0, "data keys",
           "data.max_length: an integer", "data.train_on", "data.allow_beyond_positions")

    # init: the vocabulary is the tokenizer's; configs transformers refuses are refused.
    tiny = os.path.join(work, "tiny_from_tok")
    expect("init takes the tokenizer's vocabulary", run(binary, "init", "--preset", "tiny", "--out", tiny,
                                                        "--tokenizer", tok, "--dtype", "float32"), 0,
           "vocab_size 600 from the tokenizer", "vocab 600")
    expect("generate on it decodes", run(binary, "generate", "--model", tiny, "--prompt", "Hola", "--max-new-tokens",
                                         "20"), 0)
    mismatch = os.path.join(work, "mismatch")
    expect("init refuses a vocabulary mismatch", run(binary, "init", "--preset", "tiny", "--out", mismatch,
                                                     "--tokenizer", tok, "--vocab-size", "8000"), 1,
           "--vocab-size 8000 does not match the 600 pieces")
    expect_true("init left no dir after refusing", not os.path.exists(mismatch) and
                not os.path.exists(mismatch + ".tmp-init"))
    bad_cfg = os.path.join(work, "hidden130.json")
    write(bad_cfg, '{"model_type": "llama", "vocab_size": 600, "hidden_size": 130, "intermediate_size": 50,'
                   ' "num_hidden_layers": 1, "num_attention_heads": 4}')
    expect("init refuses hidden 130 with 4 heads", run(binary, "init", "--config", bad_cfg, "--out",
                                                       os.path.join(work, "h130")), 1,
           bad_cfg, '"hidden_size" (130) must be a multiple of "num_attention_heads" (4)')
    huge_cfg = os.path.join(work, "huge.json")
    # 372.5 TiB for the embedding alone: beyond the 47-bit address space, so
    # refused at once whatever the kernel's overcommit policy.
    write(huge_cfg, '{"model_type": "llama", "vocab_size": 100000000000, "hidden_size": 1024, "intermediate_size": 64,'
                    ' "num_hidden_layers": 1, "num_attention_heads": 4}')
    expect("init out of memory names what and how big", run(binary, "init", "--config", huge_cfg, "--out",
                                                            os.path.join(work, "huge")), 1,
           "out of memory while allocating the weights of a model of", "tried to allocate 372.5 TiB")

    # generate: the position limit is an error or a note, never silence.
    short = os.path.join(work, "short_positions")
    short_cfg = os.path.join(work, "short.json")
    write(short_cfg, '{"model_type": "llama", "vocab_size": 600, "hidden_size": 32, "intermediate_size": 50,'
                     ' "num_hidden_layers": 1, "num_attention_heads": 4, "max_position_embeddings": 48}')
    expect("init 48 positions", run(binary, "init", "--config", short_cfg, "--out", short, "--tokenizer", tok), 0)
    long_prompt = " ".join(["Hola món"] * 20)
    expect("generate: prompt over the limit", run(binary, "generate", "--model", short, "--prompt", long_prompt), 1,
           "leaves no room below the model's max_position_embeddings 48")
    expect("generate: reaching the limit is said", run(binary, "generate", "--model", short, "--prompt", "Hola món",
                                                       "--max-new-tokens", "100"), 0,
           "at the model's position limit", "max_position_embeddings 48")
    expect("generate --temperature without --sample", run(binary, "generate", "--model", model, "--prompt", "x",
                                                          "--temperature", "0.7"), 2,
           "--temperature applies only when sampling: add --sample")
    expect("generate --system without --chat", run(binary, "generate", "--model", model, "--prompt", "x", "--system",
                                                   "y"), 2, "--system needs --chat")
    # --chat prompts with the chat template: the same ids as the rendered text given by hand.
    rendered = "<|im_start|>system\nSigues breu.<|im_end|>\n<|im_start|>user\nHola<|im_end|>\n<|im_start|>assistant\n"
    chat = run(binary, "generate", "--model", model, "--prompt", "Hola", "--system", "Sigues breu.", "--chat", "--ids",
               "--max-new-tokens", "6")
    by_hand = run(binary, "generate", "--model", model, "--prompt", rendered, "--ids", "--max-new-tokens", "6")
    expect("generate --chat", chat, 0)
    expect_true("generate --chat renders the template", chat.stdout == by_hand.stdout and chat.stdout.strip(),
                chat.stdout + by_hand.stdout)

    # score: binary and empty input name the file.
    binary_file = os.path.join(work, "weights.bin")
    with open(binary_file, "wb") as f:
        f.write(b"text\n\x89PNG\x00\xff\xfe\n")
    expect("score binary input", run(binary, "score", "--model", model, "--input", binary_file), 1,
           binary_file + ":2", "UTF-8")
    empty = os.path.join(work, "empty.txt")
    write(empty, "")
    expect("score empty input", run(binary, "score", "--model", model, "--input", empty), 1, empty, "no documents")

    # Recipes: a malformed override is a usage mistake; max_length is checked against the positions.
    data = os.path.join(work, "robust_chat.jsonl")
    reply = "Bon dia a tothom, com estàs avui? Molt bé, gràcies per preguntar"
    write(data, json.dumps({"messages": [{"role": "user", "content": "Hola"}, {"role": "assistant", "content": reply}]})
          + "\n")
    recipe = os.path.join(work, "robust.toml")
    write(recipe, f'[model]\npath = "{short}"\n[data]\ntrain = ["{data}"]\nmax_length = 40\n'
                  f'cache_dir = "{work}/cache"\n')
    expect("malformed override exits 2", run(binary, "prepare", recipe, "data.max_length"), 2,
           "needs the form section.key=value")
    expect("max_length above the positions", run(binary, "prepare", recipe, "data.max_length=49"), 1,
           "data.max_length = 49 (override data.max_length=49)", "max_position_embeddings 48",
           "data.allow_beyond_positions = true")
    expect("max_length above the positions, allowed", run(binary, "prepare", recipe, "data.max_length=49",
                                                          "data.allow_beyond_positions=true"), 0, "train: 1 samples")

    # inspect-data shows exactly the tokens training sees: a truncated reply is shown cut.
    text = run(binary, "inspect-data", recipe)
    expect("inspect-data truncated", text, 0, "40 tokens", "(truncated to max_length")
    # The cut may fall inside a character (byte fallback): its half decodes as U+FFFD.
    shown = text.stdout.split("=== sample 1", 1)[-1]
    trained = shown.split("[[", 1)[1].split("]]", 1)[0] if "[[" in shown else ""
    kept = trained.rstrip("\ufffd")
    expect_true("inspect-data highlights only the kept part of the reply",
                kept and reply.startswith(kept) and len(kept) < len(reply), text.stdout)
    result = run(binary, "inspect-data", recipe, "--format", "jsonl")
    sample = json.loads(result.stdout.splitlines()[0]) if result.returncode == 0 else {}
    expect_true("inspect-data jsonl: text of the kept tokens", sample.get("truncated") and len(sample["ids"]) == 40
                and "preguntar" not in sample["text"] and sample["text"].endswith(trained), json.dumps(sample))
    count = re.search(r"40 tokens, (\d+) trained", text.stdout)
    expect_true("inspect-data: the header counts the mask", count and int(count.group(1)) == sum(sample["mask"][1:]),
                text.stdout)

    # A preference pair: the header and the statistics count the same tokens.
    pair = os.path.join(work, "robust_pair.jsonl")
    write(pair, '{"prompt": "Hola, com va?", "chosen": "Molt be", "rejected": "No ho se pas, potser demà"}\n')
    text = run(binary, "inspect-data", recipe, f'data.train=["{pair}"]', "data.max_length=64",
               "data.allow_beyond_positions=true")
    header = re.search(r"(\d+) tokens \(prompt (\d+), chosen (\d+), rejected (\d+)\), (\d+) trained", text.stdout)
    stats = re.search(r"train: 1 samples from 1 records \(preference pairs\), (\d+) tokens, (\d+) trained", text.stdout)
    expect_true("inspect-data pair: header and statistics agree",
                header and stats and header.group(1) == stats.group(1) and header.group(5) == stats.group(2)
                and int(header.group(1)) == sum(int(header.group(i)) for i in (2, 3, 4)), text.stdout)

    # Fields the template never renders are counted and warned about.
    tools = os.path.join(work, "tool_calls.jsonl")
    write(tools, json.dumps({"messages": [
        {"role": "user", "content": "Quin temps fa?"},
        {"role": "assistant", "content": "", "tool_calls": [{"type": "function",
                                                             "function": {"name": "temps", "arguments": "{}"}}]},
        {"role": "tool", "content": "sol"},
        {"role": "assistant", "content": "Fa sol"}]}) + "\n" + json.dumps({"messages": [
        {"role": "user", "content": "Hola"}, {"role": "assistant", "content": "Ei"}]}) + "\n")
    expect("unrendered tool_calls warned", run(binary, "prepare", recipe, f'data.train=["{tools}"]',
                                               "data.max_length=40"), 0,
           "warning: 1 train sample carries tool_calls, which the chat template", "never renders")

    # Failed commands leave no partial dirs.
    failed_tok = os.path.join(work, "failed_tok")
    expect("build-tokenizer too small a corpus", run(binary, "build-tokenizer", "--input", docs, "--out", failed_tok,
                                                     "--vocab-size", "50000"), 1)
    expect_true("a failed build-tokenizer leaves no dir", not os.path.exists(failed_tok))
    # sft failing inside its setup (preference data, found once the data is
    # prepared) writes nothing: the run dir comes only after every check.
    failed_run = os.path.join(work, "failed_run")
    expect("sft on preference data", run(binary, "sft", recipe, f"training.output_dir={failed_run}",
                                         f'data.train=["{pair}"]', "data.max_length=40"), 1,
           "sft trains on chat data", "preference pairs")
    expect_true("a failed sft leaves no run dir", not os.path.exists(failed_run))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
