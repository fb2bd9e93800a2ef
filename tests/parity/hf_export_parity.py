#!/usr/bin/env python3
"""`salamandra-tune export --format hf` against transformers, PEFT and the
files it was made from.

Setup: sft_parity.py's tiny fp32 model (hidden 96, 6 heads, 2 KV heads, FFN
211, 3 layers) with its Salamandra-style tokenizer and an instruct
generation_config (eos [2, 5]); 3 steps of our full `sft` on its chats
(stage 1, whose final dir carries training_record.json), then 2 steps of
LoRA `sft` on that (stage 2, an adapter).

Checks:
  bf16 export of stage 1:
    - every tensor is exactly torch's bf16 rounding of the source tensor
      (the same names, no others), and config.json says bfloat16;
    - transformers (AutoModelForCausalLM) loads the dir, and its logits
      (computed in fp32) equal those of the source with its weights rounded
      to bf16 in torch, bit for bit; the difference to the unrounded
      source's logits is reported beside that rounding effect;
    - tokenizer.model, tokenizer_config.json, special_tokens_map.json and
      generation_config.json are byte-identical to the source's;
    - the README.md model card: front matter base_model = the model sft
      started from, library_name transformers; the data file with its
      SHA-256 (hashlib's) and size, the resolved recipe (= run/recipe.toml),
      the final loss (= the last step's in metrics.jsonl);
    - vLLM cannot run on this CPU. Instead: config.json holds every field
      vLLM's Llama loader reads (architectures LlamaForCausalLM,
      model_type llama, the sizes, head counts, hidden_act silu,
      rms_norm_eps, rope theta, max_position_embeddings, vocab_size,
      tie_word_embeddings, attention/mlp bias, dtype), each resolving in
      transformers' AutoConfig to the source's value; and the weight names
      are exactly the ones its loader maps (q/k/v_proj into qkv_proj,
      gate/up_proj into gate_up_proj, the norms, embed_tokens, lm_head).
  sharded (fp32, 2 MB, --max-shard-mb 1): an index plus shards;
    transformers loads it and its tensors equal the source's.
  fp32 export of stage 1 + the stage-2 adapter (weight 1): transformers'
    logits of the exported dir against PEFT's (PeftModel over the source,
    fp32, adapter unmerged), max |diff| <= 1e-5 x max(1, max |logit|)
    (our fp32 agreement bound); the card names both stages.
  Bad input: an existing --out without --force, q8_0 for hf, a non-llama
    config, a training record without its data; each exits non-zero
    naming the problem, writing nothing.

  hf_export_parity.py SALAMANDRA_TUNE WORK_DIR
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sft_parity as sp  # noqa: E402  (reads the same two arguments; exits 77 without the reference stack)

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

try:
    import transformers
    from peft import PeftModel
except ImportError as e:
    print(f"SKIP: transformers or peft not importable: {e}")
    sys.exit(77)

ST, WORK = sp.ST, sp.WORK
failures = []
torch.set_num_threads(2)


def check(ok, message):
    if not ok:
        failures.append(message)


def export(*args, env=None):
    return subprocess.run([ST, "export", *map(str, args)], text=True, capture_output=True, env=env)


def weights(path):
    state = {}
    for f in sorted(os.listdir(path)):
        if f.endswith(".safetensors"):
            state.update(load_file(os.path.join(path, f)))
    return state


def train(name, model_dir, data, extra):
    out = os.path.join(WORK, name)
    recipe = os.path.join(WORK, f"{name}.toml")
    with open(recipe, "w") as f:
        f.write(sp.recipe_text(model_dir, data, os.path.join(WORK, "cache"), False, 128,
                               model_extra='dtype = "float32"\n'))
        f.write(f"[training]\noutput_dir = {json.dumps(out)}\nmicro_batch_rows = 4\n{extra}"
                f"[optimizer]\nlr = 0.01\n[logging]\nplot = false\n")
    subprocess.run([ST, "sft", recipe], check=True, capture_output=True)
    return out


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits.float()


# What vLLM's LlamaForCausalLM reads from the config (its LlamaModel,
# LlamaDecoderLayer, LlamaAttention and LlamaMLP constructors).
VLLM_CONFIG_KEYS = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                    "num_key_value_heads", "hidden_act", "rms_norm_eps", "max_position_embeddings",
                    "tie_word_embeddings", "attention_bias", "mlp_bias", "head_dim"]


def vllm_weight_names(config):
    names = {"model.embed_tokens.weight", "model.norm.weight"}
    for l in range(config["num_hidden_layers"]):
        p = f"model.layers.{l}."
        names |= {p + n + ".weight" for n in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                              "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
                                              "input_layernorm", "post_attention_layernorm")}
    if not config.get("tie_word_embeddings", False):
        names.add("lm_head.weight")
    return names


def check_card(path, stages):
    card = open(os.path.join(path, "README.md"), encoding="utf-8").read()
    front = re.match(r"---\n(.*?)\n---\n", card, re.S)
    check(front is not None, f"{path}: README.md has no front matter")
    front = front.group(1) if front else ""
    for name, run_dir, base in stages:
        record = json.load(open(os.path.join(run_dir, "final", "training_record.json")))
        check(record["base_model"] == base, f"{name}: the record's base model {record['base_model']} is not {base}")
        data = record["data"][0]
        want = hashlib.sha256(open(data["path"], "rb").read()).hexdigest()
        check(data["sha256"] == want and data["bytes"] == os.path.getsize(data["path"]),
              f"{name}: data digest {data['sha256']} / {data['bytes']} bytes, hashlib says {want}")
        check(f"`{want}`" in card, f"{path}: the card lacks {name}'s data digest")
        recipe = open(os.path.join(run_dir, "recipe.toml")).read()
        check(recipe.strip() in card, f"{path}: the card lacks {name}'s resolved recipe")
        steps = [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl")) if '"loss"' in l]
        last = [m for m in steps if "loss" in m][-1]
        check(record["final_metrics"]["loss"] == last["loss"], f"{name}: final loss {record['final_metrics']['loss']}"
              f" is not the last step's {last['loss']}")
        check(f"| loss | {float(last['loss']):.6g} |" in card, f"{path}: the card lacks {name}'s final loss")
    check(f"base_model: {json.dumps(stages[0][2])}" in front, f"{path}: front matter base_model: {front}")
    check("library_name: transformers" in front, f"{path}: front matter library_name: {front}")
    return card


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    data, model_dir = sp.build_fixture("float32")
    with open(os.path.join(model_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": [2, 5], "temperature": 0.6, "top_p": 0.9,
                   "repetition_penalty": 1.2, "do_sample": True}, f)
    stage1 = train("sft-run", model_dir, data, "max_steps = 3\n")
    source = os.path.join(stage1, "final")
    stage2 = train("lora-run", source, data, "max_steps = 2\n[lora]\nrank = 4\ntargets = [\"all-linear\"]\n")
    adapter = os.path.join(stage2, "final")
    config = json.load(open(os.path.join(source, "config.json")))
    summary = {}

    # bf16, one file.
    bf16 = os.path.join(WORK, "bf16")
    run = export("--model", source, "--out", bf16, "--format", "hf", "--dtype", "bfloat16")
    check(run.returncode == 0 and "verified 30 tensors" in run.stdout, f"export bf16: {run.stdout}{run.stderr}")
    src, out = weights(source), weights(bf16)
    check(set(src) == set(out), f"bf16: tensor names differ: {set(src) ^ set(out)}")
    inexact = [n for n in src if n in out and not (out[n].dtype == torch.bfloat16
                                                     and torch.equal(out[n], src[n].to(torch.bfloat16)))]
    check(not inexact, f"bf16: not torch's bf16 rounding: {inexact}")
    exported_config = json.load(open(os.path.join(bf16, "config.json")))
    check(exported_config.get("torch_dtype") == "bfloat16", f"bf16: config.json dtype {exported_config}")
    for name in ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"):
        check(open(os.path.join(bf16, name), "rb").read() == open(os.path.join(source, name), "rb").read(),
              f"bf16: {name} differs from the source's")
    ids = torch.tensor([[1] + list(range(7, 400, 13))])
    hf = transformers.AutoModelForCausalLM.from_pretrained(bf16, dtype=torch.float32, attn_implementation="eager")
    reference = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32,
                                                                   attn_implementation="eager")
    unrounded = logits(reference, ids)
    with torch.no_grad():
        for p in reference.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    rounded = logits(reference, ids)
    got = logits(hf, ids)
    check(torch.equal(got, rounded), f"bf16: logits differ from the source rounded to bf16 by "
          f"{(got - rounded).abs().max().item()}")
    summary["bf16"] = {"logits_vs_rounded_source": (got - rounded).abs().max().item(),
                       "logits_vs_source": (got - unrounded).abs().max().item(),
                       "rounding_effect": (rounded - unrounded).abs().max().item()}
    card = check_card(bf16, [("stage 1", stage1, model_dir)])
    # What vLLM reads.
    auto = transformers.AutoConfig.from_pretrained(bf16)
    source_auto = transformers.AutoConfig.from_pretrained(source)
    check(exported_config.get("architectures") == ["LlamaForCausalLM"] and auto.model_type == "llama",
          f"vLLM: architectures {exported_config.get('architectures')}, model_type {auto.model_type}")
    for key in VLLM_CONFIG_KEYS:
        check(key in exported_config and getattr(auto, key, None) == getattr(source_auto, key, None),
              f"vLLM: config.json {key} = {exported_config.get(key)!r}, the source's {getattr(source_auto, key, None)!r}")
    theta = (getattr(auto, "rope_parameters", None) or {}).get("rope_theta", getattr(auto, "rope_theta", None))
    check(theta == config["rope_theta"], f"vLLM: rope theta resolves to {theta}")
    check(auto.dtype == torch.bfloat16, f"vLLM: dtype resolves to {auto.dtype}")
    check(set(out) == vllm_weight_names(config), f"vLLM: weight names {set(out) ^ vllm_weight_names(config)}")
    summary["vllm_config_keys"] = len(VLLM_CONFIG_KEYS) + 3

    # Sharded.
    sharded = os.path.join(WORK, "sharded")
    run = export("--model", source, "--out", sharded, "--format", "hf", "--dtype", "float32", "--max-shard-mb", "1")
    index = os.path.join(sharded, "model.safetensors.index.json")
    check(run.returncode == 0 and os.path.exists(index), f"sharded: {run.stdout}{run.stderr}")
    if os.path.exists(index):
        shards = sorted(f for f in os.listdir(sharded) if f.endswith(".safetensors"))
        check(len(shards) > 1, f"sharded: {shards}")
        loaded = transformers.AutoModelForCausalLM.from_pretrained(sharded, dtype=torch.float32)
        state = loaded.state_dict()
        check(all(torch.equal(state[n], src[n]) for n in src), "sharded: transformers reads other tensors")
        summary["sharded"] = len(shards)

    # fp32 with the adapter merged, against PEFT applying it unmerged.
    merged = os.path.join(WORK, "merged-fp32")
    run = export("--model", source, "--adapter", adapter, "--out", merged, "--format", "hf", "--dtype", "float32")
    check(run.returncode == 0 and "merged 1 adapter(s)" in run.stdout and "self-check" in run.stdout,
          f"export --adapter: {run.stdout}{run.stderr}")
    if run.returncode == 0:
        hf = transformers.AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32, attn_implementation="eager")
        base = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32,
                                                                  attn_implementation="eager")
        peft = PeftModel.from_pretrained(base, adapter).eval()
        want, got = logits(peft, ids), logits(hf, ids)
        bound = 1e-5 * max(1.0, want.abs().max().item())
        diff = (got - want).abs().max().item()
        check(diff <= bound, f"--adapter: logits differ from PEFT's by {diff} (bound {bound})")
        changed = (want - logits(transformers.AutoModelForCausalLM.from_pretrained(
            source, dtype=torch.float32, attn_implementation="eager"), ids)).abs().max().item()
        check(changed > 10 * bound, f"--adapter: the adapter changes the logits by only {changed}")
        summary["adapter"] = {"logits_vs_peft": diff, "bound": bound, "adapter_effect": changed}
        check_card(merged, [("stage 1", stage1, model_dir), ("stage 2", stage2, source)])

    # Bad input.
    def refused(args, code, *needles):
        before = set(os.listdir(WORK))
        run = export(*args)
        check(run.returncode == code and all(n in run.stderr for n in needles),
              f"{args}: exit {run.returncode}, stderr {run.stderr!r}, wanted {code} and {needles}")
        check(set(os.listdir(WORK)) - before == set(), f"{args}: left {set(os.listdir(WORK)) - before}")

    refused(["--model", source, "--out", bf16, "--format", "hf"], 1, bf16, "--force")
    refused(["--model", source, "--out", os.path.join(WORK, "q8"), "--format", "hf", "--dtype", "q8_0"], 2, "q8_0")
    not_llama = os.path.join(WORK, "not-llama")
    shutil.copytree(source, not_llama)
    with open(os.path.join(not_llama, "config.json"), "w") as f:
        json.dump({**config, "model_type": "mistral"}, f)
    refused(["--model", not_llama, "--out", os.path.join(WORK, "nl"), "--format", "hf"], 1, "mistral")
    bad_record = os.path.join(WORK, "bad-record")
    shutil.copytree(source, bad_record)
    record = json.load(open(os.path.join(bad_record, "training_record.json")))
    del record["data"]
    json.dump(record, open(os.path.join(bad_record, "training_record.json"), "w"))
    refused(["--model", bad_record, "--out", os.path.join(WORK, "br"), "--format", "hf"], 1,
            "training_record.json", "data")

    summary["failures"] = failures
    print(json.dumps(summary, indent=1))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
