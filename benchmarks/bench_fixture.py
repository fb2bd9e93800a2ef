"""What the CPU benchmarks share: a small tokenizer built from their chats
and a Salamandra-architecture model of a given config (or preset) that
keeps its own vocabulary size (the real 256k), with that tokenizer's files
beside it. `init --tokenizer` would take the tokenizer's vocabulary
instead, so the files are copied in after init.
"""
import json
import os
import shutil
import subprocess


def write_chats(records, path):
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps({"messages": r["messages"]}, ensure_ascii=False) + "\n")


# bench_sft.py's model: Salamandra architecture, small, with the real 256k
# vocabulary, so that the embedding and LM head dominate as in the 2B model.
SMALL_256K_CONFIG = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 256000,
                     "hidden_size": 256, "intermediate_size": 704, "num_hidden_layers": 4, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
                     "max_position_embeddings": 8192, "tie_word_embeddings": False}


def gsm8k_chats(data_dir, samples, work):
    """The first `samples` chats of shared/data/gsm8k_chat, written to
    WORK/chats.jsonl; returns (records, that path)."""
    with open(os.path.join(data_dir, "gsm8k_chat", "chat_train.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()][:samples]
    path = os.path.join(work, "chats.jsonl")
    write_chats(records, path)
    return records, path


def make_model(st, work, records, config, vocab_size=4000):
    """The model dir WORK/model for `config` (fp32, seed 1), with a tokenizer
    of `vocab_size` pieces trained on the records' texts."""
    corpus = os.path.join(work, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as c:
        for r in records:
            c.write("\n".join(m["content"] for m in r["messages"]) + "\n")
    tok = os.path.join(work, "tok")
    subprocess.run([st, "build-tokenizer", "--input", corpus, "--out", tok, "--vocab-size", str(vocab_size)],
                   check=True, stdout=subprocess.DEVNULL)
    config_path = os.path.join(work, "config.json")
    with open(config_path, "w") as f:
        json.dump(config, f)
    model = os.path.join(work, "model")
    subprocess.run([st, "init", "--config", config_path, "--out", model, "--dtype", "float32", "--seed", "1"],
                   check=True, stdout=subprocess.DEVNULL)
    for name in os.listdir(tok):
        if name.startswith("tokenizer") or name == "special_tokens_map.json":
            shutil.copy(os.path.join(tok, name), model)
    return model


def make_preset_model(st, work, preset="salamandra-2b", dtype="bfloat16"):
    """WORK/base: `init --preset PRESET` (random weights, seed 1) stored as
    `dtype`, with a 500-piece tokenizer's files beside it (what merge and
    export carry), and its safetensors read once so every timed run reads
    warm files. Returns (model dir, safetensors paths)."""
    corpus = os.path.join(work, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write("Bon dia, com estàs? Hola, ¿qué tal? Hello, how are you? Kaixo, zer moduz?\n" * 200)
    tok = os.path.join(work, "tok")
    subprocess.run([st, "build-tokenizer", "--input", corpus, "--out", tok, "--vocab-size", "500"], check=True,
                   stdout=subprocess.DEVNULL)
    base = os.path.join(work, "base")
    subprocess.run([st, "init", "--preset", preset, "--out", base, "--dtype", dtype, "--seed", "1"],
                   check=True, stdout=subprocess.DEVNULL)
    for name in os.listdir(tok):
        if name.startswith("tokenizer") or name == "special_tokens_map.json":
            shutil.copy(os.path.join(tok, name), base)
    shards = [os.path.join(base, f) for f in sorted(os.listdir(base)) if f.endswith(".safetensors")]
    for path in shards:
        with open(path, "rb") as f:
            while f.read(1 << 26):
                pass
    return base, shards
