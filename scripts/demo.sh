#!/usr/bin/env bash
# The demo a new user runs. After the setup (Debian packages, the venv, the
# build), on data the project makes itself:
#   1. synthetic multilingual tasks with exact answers (9 Salamandra languages)
#   2. a Salamandra-style tokenizer trained on their text
#   3. a tiny Salamandra-architecture model with random weights
#   4. exact-match accuracy on held-out prompts before training
#   5. SFT with recipes/tiny-demo.toml (progress, eval, checkpoints, plot)
#   6. accuracy after training
#   7. transformers loads the trained model dir and generates from it
# Everything lands in demo/. About 2 minutes on a 2-core CPU after the build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
st="$root/build/salamandra-tune"
work="$root/demo"
rm -rf "$work"
mkdir -p "$work"
start=$(date +%s)

echo "== 1. synthetic tasks: add, successor, reverse, sort, count in en es ca de fr it pt gl eu"
"$st" make-tasks --out "$work/tasks" --train 6000 --test 270 --tasks add,successor,reverse,sort,count
head -n 3 "$work/tasks/test.jsonl"

echo "== 2. tokenizer: SentencePiece BPE with Salamandra's recipe, trained on the tasks' text"
"$st" build-tokenizer --input "$work/tasks/corpus.txt" --out "$work/tokenizer" --vocab-size 1500

echo "== 3. model: a tiny Salamandra-architecture model (4 layers, hidden 128), random weights"
"$st" init --preset tiny --vocab-size 1500 --dtype float32 --out "$work/model" --tokenizer "$work/tokenizer" --seed 1

echo "== 4. exact-match accuracy before training"
"$st" eval-tasks --model "$work/model" --data "$work/tasks/test.jsonl" --output "$work/before.json" | tail -n 1

echo "== 5. supervised fine-tuning (recipes/tiny-demo.toml)"
"$st" sft "$root/recipes/tiny-demo.toml" model.path="$work/model" "data.train=[\"$work/tasks/train.jsonl\"]" \
  data.cache_dir="$work/cache" training.output_dir="$work/run" | grep -v '^#\|^\[\|^[a-z_0-9]* = \|^$' || true
test -d "$work/run/final"

echo "== 6. exact-match accuracy after training"
"$st" eval-tasks --model "$work/run/final" --data "$work/tasks/test.jsonl" --output "$work/after.json" --show 3

echo "== 7. transformers loads the trained model and generates"
"$root/.venv/bin/python" - "$work/run/final" <<'PY'
import sys, transformers
path = sys.argv[1]
tok = transformers.AutoTokenizer.from_pretrained(path)
model = transformers.AutoModelForCausalLM.from_pretrained(path)
messages = [{"role": "user", "content": "Quant és 2 + 5?"}]
ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
ids = [[tok.bos_token_id] + ids[0].tolist()]
import torch
out = model.generate(torch.tensor(ids), max_new_tokens=8, do_sample=False,
                     eos_token_id=[tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")])
print("transformers:", messages[0]["content"], "->", tok.decode(out[0, len(ids[0]):], skip_special_tokens=True))
PY

before=$("$root/.venv/bin/python" -c "import json; print(round(100 * json.load(open('$work/before.json'))['accuracy'], 1))")
after=$("$root/.venv/bin/python" -c "import json; print(round(100 * json.load(open('$work/after.json'))['accuracy'], 1))")
echo "demo done in $(( $(date +%s) - start )) s: exact match ${before}% before training -> ${after}% after."
echo "loss and learning-rate curves: $work/run/training.svg; metrics: $work/run/metrics.jsonl; model: $work/run/final"
