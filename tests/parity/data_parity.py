#!/usr/bin/env python3
"""Data pipeline parity with transformers and TRL on the real data sets.

For every chat template (BSC's released Salamandra instruct templates with and
without date_string, BSC's trimmed ChatML, our built-in ChatML and a
tool-calling ChatML) and every real chat and preference set in shared/data,
`salamandra-tune inspect-data --format jsonl` must give:
  chat:  the text of tokenizer.apply_chat_template; the ids of the tokenizer
         on that text (one BOS, as add_bos_token says; TRL's _tokenize gives
         the same ids without BOS); and the mask TRL trains on with
         assistant_only_loss: transformers' return_assistant_tokens_mask over
         the same template with {% generation %} around each reply and its
         <|im_end|>.
  pairs: TRL's DPO tokenization (prompt with the generation prompt, prompt +
         completion, cut where they diverge), with our BOS in front of the
         prompt, and the completion mask from the same generation markers.
Samples the reference cannot render (the template raises) must be dropped by
us as template errors, samples without a reply as nothing_to_train.

  data_parity.py SALAMANDRA_TUNE WORK_DIR      (data: $ST_SHARED_DATA)
Exit 77 (skip) when the shared data is absent.
"""
import gzip
import json
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ST, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
DATA = os.environ.get("ST_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
if not os.path.isdir(os.path.join(DATA, "salamandra_chat_template")):
    print(f"SKIP: no shared data at {DATA} (set ST_SHARED_DATA)")
    sys.exit(77)

import transformers  # noqa: E402
from trl.data_utils import _tokenize, common_prefix_length, extract_prompt  # noqa: E402

shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)


def run(*args, **kw):
    return subprocess.run([ST, *args], check=True, text=True, **kw)


# ---- a Salamandra-style tokenizer trained on NTREX (all languages) ----------
corpus = os.path.join(WORK, "corpus.txt")
with open(corpus, "w", encoding="utf-8") as out:
    ntrex = os.path.join(DATA, "ntrex128")
    for name in sorted(os.listdir(ntrex)):
        if name.endswith(".txt.gz"):
            with gzip.open(os.path.join(ntrex, name), "rt", encoding="utf-8") as f:
                out.writelines(f.readlines()[:400])
tok_dir = os.path.join(WORK, "tok")
run("build-tokenizer", "--input", corpus, "--out", tok_dir, "--vocab-size", "4000", stdout=subprocess.DEVNULL)

# ---- templates: (name, source, the same with {% generation %} markers, vars) --
def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def mark_loop_body(source, content_expr, end="'<|im_end|>' + '\\n'"):
    """Wraps the reply and its <|im_end|> of the per-message ChatML line in
    {% generation %} for assistant messages; renders the same text."""
    line = "{{'<|im_start|>' + message['role'] + '\\n' + " + content_expr + " + " + end + "}}"
    assert source.count(line) == 1, f"template body not found: {line}"
    marked = ("{% if message['role'] == 'assistant' %}{{'<|im_start|>assistant\\n'}}{% generation %}{{"
              + content_expr + " + '<|im_end|>'}}{% endgeneration %}{{'\\n'}}{% else %}" + line + "{% endif %}")
    return source.replace(line, marked)


templates_dir = os.path.join(DATA, "salamandra_chat_template")
v1 = read(os.path.join(templates_dir, "salamandra_instruct_v1.jinja"))
v2 = read(os.path.join(templates_dir, "salamandra_instruct_v2_system_prompt.jinja"))
trim = read(os.path.join(templates_dir, "chatml_trim.jinja"))
with open(os.path.join(tok_dir, "tokenizer_config.json"), encoding="utf-8") as f:
    builtin = json.load(f)["chat_template"]
builtin_line = "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
assert builtin.count(builtin_line) == 1
builtin_marked = builtin.replace(
    builtin_line,
    "{%- if message['role'] == 'assistant' -%}{{ '<|im_start|>assistant\\n' }}{% generation %}"
    "{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}{%- else -%}" + builtin_line + "{%- endif -%}")
tools_marked = read(os.path.join(ROOT, "tests", "parity", "templates", "chatml_tools.jinja"))
tools_plain = tools_marked.replace("{% generation %}", "").replace("{% endgeneration %}", "")

TEMPLATES = [
    ("salamandra_v1", v1, mark_loop_body(v1, "message['content']"), {}),
    ("salamandra_v1_date", v1, mark_loop_body(v1, "message['content']"), {"date_string": "2026-11-26"}),
    ("salamandra_v2", v2, mark_loop_body(v2, "message['content']"), {}),
    ("salamandra_v2_date", v2, mark_loop_body(v2, "message['content']"), {"date_string": "2026-11-26"}),
    ("chatml_trim", trim, mark_loop_body(trim, "message['content'] | trim"), {}),
    ("chatml_builtin", builtin, builtin_marked, {}),
    ("chatml_tools", tools_plain, tools_marked, {}),
]

# ---- data sets ----------------------------------------------------------------
def jsonl(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def mt_bench_chats(folder, name):
    """Questions joined with their reference answers: multi-turn, multilingual."""
    answers = {a["question_id"]: a["choices"][0]["turns"] for a in jsonl(os.path.join(folder, "reference_answer", "gpt-4.jsonl"))}
    out = os.path.join(WORK, f"{name}.jsonl")
    with open(out, "w", encoding="utf-8") as f:
        for q in jsonl(os.path.join(folder, "question.jsonl")):
            if q["question_id"] not in answers:
                continue
            messages = []
            for question, answer in zip(q["turns"], answers[q["question_id"]]):
                messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            f.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")
    return out


SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "system": "system", "tool": "tool", "user": "user", "assistant": "assistant"}


def chat_messages(record):
    """Independent conversion of a chat record to (messages, tools)."""
    if "messages" in record:
        return record["messages"], record.get("tools")
    if "conversations" in record:
        messages = [{"role": SHAREGPT_ROLES[t["from"]], "content": t["value"]} for t in record["conversations"]]
        if record.get("system") and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": record["system"]})
        return messages, record.get("tools")
    if "instruction" in record:
        user = record["instruction"] + ("\n\n" + record["input"] if record.get("input") else "")
        out = record.get("output", record.get("response"))
        return [{"role": "user", "content": user}, {"role": "assistant", "content": out}], None
    raise ValueError(f"unknown chat record {list(record)}")


def hh_transcripts(chosen, rejected):
    """hh-rlhf "\n\nHuman: ...\n\nAssistant: ..." pairs as TRL's
    examples/datasets/hh-rlhf-helpful-base.py splits them: the prompt is the
    shared text cut back to the last "\n\nAssistant: ", each completion the
    rest as one assistant message. One documented deviation: consecutive
    assistant turns in a prompt (4 rows of harmless-base) are merged with
    "\n\n", because a conversation must alternate."""
    marker = "\n\nAssistant: "
    n = 0
    while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
        n += 1
    prompt_text = chosen[:n]
    if not prompt_text.endswith(marker):
        prompt_text = prompt_text[: prompt_text.rfind(marker)] + marker
    completions = chosen[len(prompt_text):], rejected[len(prompt_text):]
    parts = re.split(r"(\n\nAssistant: |\n\nHuman: )", prompt_text[: -len(marker)])[1:]
    prompt = []
    for i in range(0, len(parts), 2):
        role = "user" if parts[i] == "\n\nHuman: " else "assistant"
        if prompt and prompt[-1]["role"] == role == "assistant":
            prompt[-1]["content"] += "\n\n" + parts[i + 1]
        else:
            prompt.append({"role": role, "content": parts[i + 1]})
    return prompt, *([{"role": "assistant", "content": c}] for c in completions)


def preference(record):
    """Independent conversion of a preference record to (prompt, chosen, rejected, tools)."""
    if "preferred_output" in record:
        return record["input"]["messages"], record["preferred_output"], record["non_preferred_output"], record["input"].get("tools")
    if "conversations" in record and isinstance(record.get("chosen"), dict):
        prompt, _ = chat_messages({"conversations": record["conversations"], "system": record.get("system")})
        as_msg = lambda t: [{"role": SHAREGPT_ROLES[t["from"]], "content": t["value"]}]
        return prompt, as_msg(record["chosen"]), as_msg(record["rejected"]), None
    if isinstance(record.get("chosen"), str) and "prompt" not in record:
        return *hh_transcripts(record["chosen"], record["rejected"]), None
    if "prompt" not in record:
        ex = extract_prompt({"chosen": record["chosen"], "rejected": record["rejected"]})
        return ex["prompt"], ex["chosen"], ex["rejected"], None
    return record["prompt"], record["chosen"], record["rejected"], None


def load_records(path):
    if path.endswith(".json"):
        return json.load(open(path, encoding="utf-8"))
    return jsonl(path)


CHAT_SETS = [
    os.path.join(DATA, "fastchat", "dummy_conversation.json"),
    os.path.join(DATA, "gsm8k_chat", "chat_train.jsonl"),
    os.path.join(DATA, "gsm8k_chat", "chat_validation.jsonl"),
    os.path.join(DATA, "toolcall_chat", "stock_toolcall_training.jsonl"),
    os.path.join(DATA, "toolcall_chat", "stock_toolcall_validation.jsonl"),
    os.path.join(DATA, "torchtune_tiny", "chat_tiny.json"),
    os.path.join(DATA, "torchtune_tiny", "instruct_tiny.json"),
    mt_bench_chats(os.path.join(DATA, "mt_bench"), "mt_bench_en"),
] + [mt_bench_chats(os.path.join(DATA, "mt_bench_x", lang), f"mt_bench_{lang}") for lang in ("de", "es", "fr", "it")]
PREFERENCE_SETS = [
    os.path.join(DATA, "hh_rlhf", "harmless-base", "test.jsonl.gz"),
    os.path.join(DATA, "orca_dpo_pairs", "validation.jsonl"),
    os.path.join(DATA, "llamafactory", "dpo_en_demo.json"),
    os.path.join(DATA, "torchtune_tiny", "hh_rlhf_tiny.json"),
]

# ---- ours -------------------------------------------------------------------
def ours(model_dir, data_file, variables):
    recipe = os.path.join(WORK, "recipe.toml")
    with open(recipe, "w", encoding="utf-8") as f:
        f.write(f"[model]\npath = {json.dumps(model_dir)}\n[data]\ntrain = [{json.dumps(data_file)}]\n"
                "skip_invalid = true\nmax_length = 1048576\nallow_beyond_positions = true\n")
        if variables:
            f.write("template_vars = {" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in variables.items()) + "}\n")
    out = run("inspect-data", recipe, "--n", "0", "--format", "jsonl", capture_output=True).stdout
    return [json.loads(line) for line in out.splitlines()]


failures = []
compared = {"chat": 0, "pairs": 0, "dropped": 0, "straddling": 0}


def check(where, what, got, expected):
    if got != expected:
        failures.append(f"{where}: {what} differs\n  ours: {str(got)[:300]}\n  ref:  {str(expected)[:300]}")
        return False
    return True


def ref_or_error(f):
    try:
        return f(), None
    except Exception as e:  # the reference raised: we must drop the sample
        return None, e


REPLY = re.compile(r"<\|im_start\|>assistant\n(.*?<\|im_end\|>)", re.S)


def hf_straddles(tok, text):
    """Whether a token of transformers' own tokenization (its offsets) covers
    both characters of an assistant reply (through its <|im_end|>) and
    characters outside it: the one case where no mask can be right."""
    offsets = tok(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    for reply in REPLY.finditer(text):
        lo, hi = reply.span(1)
        for a, b in offsets:
            if (a < lo < b) or (a < hi < b):
                return True
    return False


def compare(label, base_dir, chat_sets, preference_sets):
    """Every template over the given sets with the tokenizer of base_dir."""
    for name, plain, marked, variables in TEMPLATES:
        name = f"{label}/{name}"
        model_dir = os.path.join(WORK, label, "model_" + name.split("/")[1])
        shutil.copytree(base_dir, model_dir)
        config_path = os.path.join(model_dir, "tokenizer_config.json")
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
        config["chat_template"] = plain
        with open(config_path, "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=2)
        tok = transformers.AutoTokenizer.from_pretrained(model_dir)
        bos = [tok.bos_token_id]

        for path in chat_sets:
            got = ours(model_dir, path, variables)
            records = load_records(path)
            if not check(f"{name} {path}", "sample count", len(got), len(records)):
                continue
            for i, (sample, record) in enumerate(zip(got, records)):
                where = f"{name} {sample['origin']}"
                messages, tools = chat_messages(record)
                text, error = ref_or_error(lambda: tok.apply_chat_template(messages, tools=tools, tokenize=False, **variables))
                if error is not None or not any(m["role"] == "assistant" for m in messages):
                    expected = "template_error" if error is not None else "nothing_to_train"
                    check(where, "drop", sample.get("dropped"), expected)
                    compared["dropped"] += 1
                    continue
                if sample.get("dropped") == "token_straddles_boundary":
                    check(where, "a reply boundary inside a token (HF offsets)", hf_straddles(tok, text), True)
                    compared["straddling"] += 1
                    continue
                if not check(where, "dropped", sample.get("dropped"), None):
                    continue
                check(where, "text", sample["text"], text)
                check(where, "ids", sample["ids"], tok(text).input_ids)
                trl = _tokenize(tok, messages, tools=tools, chat_template=marked, return_assistant_tokens_mask=True, **variables)
                check(where, "ids vs TRL (+BOS)", sample["ids"], bos + trl["input_ids"])
                check(where, "mask vs TRL assistant mask", sample["mask"], [0] + trl["assistant_masks"])
                compared["chat"] += 1

        for path in preference_sets:
            got = ours(model_dir, path, variables)
            records = load_records(path)
            if not check(f"{name} {path}", "sample count", len(got), len(records)):
                continue
            for sample, record in zip(got, records):
                where = f"{name} {sample['origin']}"
                prompt, chosen, rejected, tools = preference(record)
                kw = dict(tools=tools, **variables)

                def reference():
                    p = _tokenize(tok, prompt, add_generation_prompt=True, **kw)["input_ids"]
                    pc = _tokenize(tok, prompt + chosen, chat_template=marked, return_assistant_tokens_mask=True, **kw)
                    pr = _tokenize(tok, prompt + rejected, chat_template=marked, return_assistant_tokens_mask=True, **kw)
                    n = min(common_prefix_length(p, pc["input_ids"]), common_prefix_length(p, pr["input_ids"]))
                    return p, pc, pr, n
                result, error = ref_or_error(reference)
                if error is not None:
                    check(where, "drop", sample.get("dropped"), "template_error")
                    compared["dropped"] += 1
                    continue
                if sample.get("dropped") == "token_straddles_boundary":
                    p, pc, pr, n = result
                    texts = [tok.apply_chat_template(prompt + c, tokenize=False, **kw) for c in (chosen, rejected)]
                    check(where, "a reply boundary inside a token (HF offsets)",
                          n < len(p) or any(hf_straddles(tok, t) for t in texts), True)
                    compared["straddling"] += 1
                    continue
                if not check(where, "dropped", sample.get("dropped"), None):
                    continue
                p, pc, pr, n = result
                check(where, "prompt is a token prefix (TRL)", n, len(p))
                check(where, "prompt_text", sample["prompt_text"], tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True, **kw))
                check(where, "prompt_ids (BOS + TRL)", sample["prompt_ids"], bos + p[:n])
                check(where, "chosen ids (TRL)", sample["chosen"]["ids"], pc["input_ids"][n:])
                check(where, "rejected ids (TRL)", sample["rejected"]["ids"], pr["input_ids"][n:])
                check(where, "chosen mask", sample["chosen"]["mask"], pc["assistant_masks"][n:])
                check(where, "rejected mask", sample["rejected"]["mask"], pr["assistant_masks"][n:])
                compared["pairs"] += 1



def first_records(path, count, label):
    """The first `count` records of a data set, as a file of the same format."""
    out = os.path.join(WORK, f"{label}_{count}_" + os.path.basename(path).replace(".gz", ""))
    records = load_records(path)[:count]
    with open(out, "w", encoding="utf-8") as f:
        if out.endswith(".json"):
            json.dump(records, f, ensure_ascii=False)
        else:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return out


def variant(label, edit_config=None, with_json=False):
    """The base tokenizer dir with tokenizer.json added (it then wins over
    tokenizer.model) and/or tokenizer_config.json switches changed."""
    out = os.path.join(WORK, "tok_" + label)
    shutil.copytree(tok_dir, out)
    if with_json:
        spec = transformers.AutoTokenizer.from_pretrained(tok_dir).backend_tokenizer.to_str()
        with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
            f.write(spec)
    if edit_config:
        path = os.path.join(out, "tokenizer_config.json")
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
        config.update(edit_config)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=2)
    return out


# The base tokenizer on every record; its variants (tokenizer.json, and the
# switches transformers honours) on the first records of each set, which
# keeps the test's time in bounds while covering every template and format.
compare("spm", tok_dir, CHAT_SETS, PREFERENCE_SETS)
VARIANT_RECORDS = 40
for label, edit, with_json in (("json", None, True), ("legacy", {"legacy": True}, False),
                               ("json_legacy", {"legacy": True}, True),
                               ("no_prefix_space", {"add_prefix_space": False}, False)):
    compare(label, variant(label, edit, with_json),
            [first_records(p, VARIANT_RECORDS, label) for p in CHAT_SETS],
            [first_records(p, VARIANT_RECORDS, label) for p in PREFERENCE_SETS])

print(json.dumps({"templates": len(TEMPLATES), "chat_samples_compared": compared["chat"],
                  "pairs_compared": compared["pairs"], "drops_compared": compared["dropped"],
                  "straddling_refused": compared["straddling"],
                  "failures": len(failures)}))
for f in failures[:20]:
    print(f)
sys.exit(1 if failures else 0)
