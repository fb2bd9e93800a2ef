#!/usr/bin/env python3
"""`salamandra-tune export` against llama.cpp's own reader (gguf-py) and
the Hugging Face weights and tokenizer it was made from.

Setup: sft_parity.py's tiny fp32 model (hidden 96, 6 heads, 2 KV heads, FFN
211, 3 layers) with its Salamandra-style tokenizer, exported to f32, f16,
bf16 and q8_0. For each file, gguf-py reads:
  - the llama.* hyperparameters equal to config.json's; general.file_type;
  - tokens, scores and token types equal to tokenizer.model's pieces (read
    with sentencepiece's own ModelProto), the special ids and add_bos/eos,
    the chat template equal to tokenizer_config.json's;
  - every tensor under llama.cpp's name, shape in ggml order, and bytes:
    the Hugging Face weight with q and k rows permuted by llama.cpp's
    converter formula (q with the heads, k with the KV heads), then
      f32: bit-equal; f16 / bf16: exactly numpy's / torch's rounding of it;
      q8_0: bit-equal to gguf-py's quantization of it (ggml's reference);
    norms always f32; with q8_0 the 211-wide ffn_down rows (not a multiple
    of 32) fall back to f16, and export says so.
  - The Modelfile: FROM the file, the ChatML template, the stops, the
    generation_config's parameters.
--adapter (weight 0.7, a LoRA adapter from 2 steps of our sft) gives, in f32
and bf16, the same bytes as exporting `merge --dtype float32` of it (the
adapter changes the weights), and the same bytes again when streamed in
blocks of a few rows (ST_ROW_BLOCK_BYTES=1000) instead of one block.
Bad input: an existing --out without --force, a non-llama config, a model
dir without tokenizer.model; each exits 1 naming the problem.
Owed (issue 17): llama.cpp's logits and generation from these files
(llama-cpp-python is not installed here yet).

  gguf_export_parity.py SALAMANDRA_TUNE WORK_DIR
"""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sft_parity as sp  # noqa: E402  (reads the same two arguments; exits 77 without the reference stack)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

try:
    import gguf
    from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType
    from sentencepiece import sentencepiece_model_pb2
except ImportError as e:
    print(f"SKIP: gguf-py or sentencepiece not importable: {e}")
    sys.exit(77)

ST, WORK = sp.ST, sp.WORK
failures = []


def check(ok, message):
    if not ok:
        failures.append(message)


def permute(w, n_head, n_head_kv=None):
    """llama.cpp's convert_hf_to_gguf.py LlamaModel.permute."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def field(reader, name):
    f = reader.fields.get(name)
    if f is None:
        return None
    if f.types[0] == GGUFValueType.ARRAY:
        return [f.contents(i) for i in range(len(f.data))]
    return f.contents()


def expected_tensors(model_dir, config):
    weights = load_file(os.path.join(model_dir, "model.safetensors"))
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    # In export's order: the embedding and the head first (the largest;
    # llama.cpp finds tensors by name, whatever their order).
    out = {"token_embd.weight": weights["model.embed_tokens.weight"], "output.weight": weights["lm_head.weight"]}
    for l in range(config["num_hidden_layers"]):
        h, g = f"model.layers.{l}.", f"blk.{l}."
        out[g + "attn_norm.weight"] = weights[h + "input_layernorm.weight"]
        out[g + "attn_q.weight"] = permute(weights[h + "self_attn.q_proj.weight"], heads, heads)
        out[g + "attn_k.weight"] = permute(weights[h + "self_attn.k_proj.weight"], heads, kv)
        out[g + "attn_v.weight"] = weights[h + "self_attn.v_proj.weight"]
        out[g + "attn_output.weight"] = weights[h + "self_attn.o_proj.weight"]
        out[g + "ffn_norm.weight"] = weights[h + "post_attention_layernorm.weight"]
        out[g + "ffn_gate.weight"] = weights[h + "mlp.gate_proj.weight"]
        out[g + "ffn_up.weight"] = weights[h + "mlp.up_proj.weight"]
        out[g + "ffn_down.weight"] = weights[h + "mlp.down_proj.weight"]
    out["output_norm.weight"] = weights["model.norm.weight"]
    return {k: np.ascontiguousarray(v.astype(np.float32)) for k, v in out.items()}


def expected_bytes(name, w, dtype):
    """(ggml type, bytes) export must write for this tensor."""
    if w.ndim == 1 or dtype == "float32":
        return GGMLQuantizationType.F32, w.tobytes()
    if dtype == "float16" or (dtype == "q8_0" and w.shape[-1] % 32):
        return GGMLQuantizationType.F16, w.astype(np.float16).tobytes()
    if dtype == "bfloat16":
        return GGMLQuantizationType.BF16, torch.from_numpy(w).to(torch.bfloat16).view(torch.int16).numpy().tobytes()
    return GGMLQuantizationType.Q8_0, gguf.quants.quantize(w, GGMLQuantizationType.Q8_0).tobytes()


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    _, model_dir = sp.build_fixture("float32")
    with open(os.path.join(model_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": [2, 5], "temperature": 0.6, "top_p": 0.9,
                   "repetition_penalty": 1.2, "do_sample": True}, f)
    config = json.load(open(os.path.join(model_dir, "config.json")))
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(open(os.path.join(model_dir, "tokenizer.model"), "rb").read())
    tokenizer_config = json.load(open(os.path.join(model_dir, "tokenizer_config.json")))
    want = expected_tensors(model_dir, config)
    summary = {}
    for dtype in ("float32", "float16", "bfloat16", "q8_0"):
        out = os.path.join(WORK, dtype, "model.gguf")
        os.makedirs(os.path.dirname(out))
        run = subprocess.run([ST, "export", "--model", model_dir, "--out", out, "--dtype", dtype],
                             text=True, capture_output=True)
        if run.returncode != 0:
            failures.append(f"export {dtype} exited {run.returncode}: {run.stderr}")
            continue
        check("verified 30 tensors" in run.stdout, f"{dtype}: no read-back report: {run.stdout}")
        fallbacks = re.findall(r"q8_0 cannot hold (\S+)", run.stdout)
        check(fallbacks == ([f"blk.{l}.ffn_down.weight" for l in range(3)] if dtype == "q8_0" else []),
              f"{dtype}: fallbacks reported {fallbacks}")
        r = GGUFReader(out)
        meta = {
            "general.architecture": "llama",
            "general.file_type": {"float32": 0, "float16": 1, "q8_0": 7, "bfloat16": 32}[dtype],
            "llama.context_length": config["max_position_embeddings"],
            "llama.embedding_length": config["hidden_size"],
            "llama.block_count": config["num_hidden_layers"],
            "llama.feed_forward_length": config["intermediate_size"],
            "llama.attention.head_count": config["num_attention_heads"],
            "llama.attention.head_count_kv": config["num_key_value_heads"],
            "llama.rope.dimension_count": config["hidden_size"] // config["num_attention_heads"],
            "llama.vocab_size": config["vocab_size"],
            "tokenizer.ggml.model": "llama",
            "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
            "tokenizer.ggml.unknown_token_id": 0, "tokenizer.ggml.padding_token_id": 3,
            "tokenizer.ggml.add_bos_token": True, "tokenizer.ggml.add_eos_token": False,
            # llama.cpp's converter: the normalizer's add_dummy_prefix.
            "tokenizer.ggml.add_space_prefix": proto.normalizer_spec.add_dummy_prefix,
            "tokenizer.chat_template": tokenizer_config["chat_template"],
        }
        for key, value in meta.items():
            check(field(r, key) == value, f"{dtype}: {key} = {field(r, key)!r}, expected {value!r}")
        check(np.float32(field(r, "llama.rope.freq_base")) == np.float32(config["rope_theta"]), f"{dtype}: rope")
        check(np.float32(field(r, "llama.attention.layer_norm_rms_epsilon")) == np.float32(config["rms_norm_eps"]),
              f"{dtype}: rms eps")
        check(field(r, "tokenizer.ggml.tokens") == [p.piece for p in proto.pieces], f"{dtype}: tokens")
        check(field(r, "tokenizer.ggml.scores") == [np.float32(p.score).item() for p in proto.pieces],
              f"{dtype}: scores")
        check(field(r, "tokenizer.ggml.token_type") == [int(p.type) for p in proto.pieces], f"{dtype}: token types")
        got = {t.name: t for t in r.tensors}
        check(list(got) == list(want), f"{dtype}: tensor names {list(got)}")
        wrong = []
        for name, w in want.items():
            t = got.get(name)
            if t is None:
                continue
            kind, data = expected_bytes(name, w, dtype)
            if t.tensor_type != kind or [int(d) for d in t.shape] != list(reversed(w.shape)) or \
                    np.asarray(t.data).tobytes() != data:
                wrong.append(f"{name} ({t.tensor_type.name}, shape {[int(d) for d in t.shape]})")
        check(not wrong, f"{dtype}: tensors not as llama.cpp's converter makes them: {wrong}")
        modelfile = open(os.path.join(WORK, dtype, "Modelfile")).read()
        for line in ("FROM ./model.gguf", "<|im_start|>assistant", 'PARAMETER stop "<|im_end|>"',
                     'PARAMETER stop "</s>"', "PARAMETER temperature 0.6", "PARAMETER top_p 0.9",
                     "PARAMETER repeat_penalty 1.2"):
            check(line in modelfile, f"{dtype}: Modelfile lacks {line!r}:\n{modelfile}")
        summary[dtype] = {"bytes": os.path.getsize(out), "tensors": len(r.tensors), "fallbacks": fallbacks}

    # --adapter merges on the way: the same bytes as exporting the fp32
    # merge of the adapter (a LoRA adapter from 2 steps of our sft, weight 0.7).
    chats = os.path.join(WORK, "chats.jsonl")  # build_fixture's
    recipe = os.path.join(WORK, "lora.toml")
    with open(recipe, "w") as f:
        f.write(sp.recipe_text(model_dir, chats, os.path.join(WORK, "cache"), False, 128,
                               model_extra='dtype = "float32"\n'))
        f.write(f"[training]\noutput_dir = {json.dumps(os.path.join(WORK, 'lora-run'))}\nmax_steps = 2\n"
                f"[optimizer]\nlr = 0.05\n[lora]\nrank = 4\ntargets = [\"all-linear\"]\n[logging]\nplot = false\n")
    subprocess.run([ST, "sft", recipe], check=True, capture_output=True)
    adapter = os.path.join(WORK, "lora-run", "final")
    merged = os.path.join(WORK, "merged")
    subprocess.run([ST, "merge", "--base", model_dir, "--adapter", adapter, "--weight", "0.7", "--out", merged,
                    "--dtype", "float32"], check=True, capture_output=True)
    for dtype in ("float32", "bfloat16"):
        via = os.path.join(WORK, "adapter", f"via-{dtype}.gguf")
        ref = os.path.join(WORK, "adapter", f"merged-{dtype}.gguf")
        run = subprocess.run([ST, "export", "--model", model_dir, "--adapter", adapter, "--weight", "0.7",
                              "--out", via, "--dtype", dtype], text=True, capture_output=True)
        check(run.returncode == 0 and "merged 1 adapter(s)" in run.stdout, f"export --adapter: {run.stdout}{run.stderr}")
        subprocess.run([ST, "export", "--model", merged, "--out", ref, "--dtype", dtype], check=True,
                       capture_output=True)
        a, b = GGUFReader(via), GGUFReader(ref)
        differ = [t.name for t, u in zip(a.tensors, b.tensors) if np.asarray(t.data).tobytes() != np.asarray(u.data).tobytes()]
        check(not differ and len(a.tensors) == len(b.tensors), f"export --adapter {dtype} differs from the merged "
              f"model's export in {differ}")
        # In blocks of a few rows (whole heads for q/k), as a 256k-row
        # embedding is converted: the same bytes as in one block.
        blocked = os.path.join(WORK, "adapter", f"blocked-{dtype}.gguf")
        subprocess.run([ST, "export", "--model", model_dir, "--adapter", adapter, "--weight", "0.7", "--out", blocked,
                        "--dtype", dtype], check=True, capture_output=True, env={**os.environ, "ST_ROW_BLOCK_BYTES": "1000"})
        check(open(blocked, "rb").read() == open(via, "rb").read(), f"export --adapter {dtype}: blocks of rows change bytes")
        # The adapter changed the weights: the check can fail.
        base = GGUFReader(os.path.join(WORK, dtype, "model.gguf"))
        check(any(np.asarray(t.data).tobytes() != np.asarray(u.data).tobytes() for t, u in zip(a.tensors, base.tensors)),
              f"{dtype}: the adapter changed nothing")
    summary["adapter"] = "same bytes as exporting merge --dtype float32"

    # Bad input.
    def refused(args, *needles):
        run = subprocess.run([ST, "export", *args], text=True, capture_output=True)
        check(run.returncode == 1 and all(n in run.stderr for n in needles),
              f"export {args} was not refused with {needles}: {run.returncode} {run.stderr}")
    existing = os.path.join(WORK, "float32", "model.gguf")
    refused(["--model", model_dir, "--out", existing], "exists", "--force")
    other = os.path.join(WORK, "mistral")
    shutil.copytree(model_dir, other)
    config["model_type"] = "mistral"
    json.dump(config, open(os.path.join(other, "config.json"), "w"))
    refused(["--model", other, "--out", os.path.join(WORK, "m.gguf")], "config.json", 'must be "llama"', "mistral")
    config["model_type"] = "llama"
    json.dump(config, open(os.path.join(other, "config.json"), "w"))
    os.remove(os.path.join(other, "tokenizer.model"))
    refused(["--model", other, "--out", os.path.join(WORK, "m.gguf")], "no tokenizer.model")
    check(not os.path.exists(os.path.join(WORK, "m.gguf")), "a refused export left a file")

    summary["failures"] = failures
    print(json.dumps(summary, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
