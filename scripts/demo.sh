#!/usr/bin/env bash
# The demo a new user runs. After the setup (Debian packages, the venv, the
# build), on data the project makes itself:
#   1. synthetic multilingual tasks with exact answers (9 Salamandra languages),
#      and preference pairs: the right answer against a near miss
#   2. a Salamandra-style tokenizer trained on their text
#   3. a tiny Salamandra-architecture model with random weights
#   4. exact-match accuracy on held-out prompts before training
#   5. SFT with recipes/tiny-demo.toml (progress, eval, checkpoints, plot)
#   6. accuracy after SFT: exact match, and preference accuracy on held-out pairs
#   7. DPO with LoRA, recipes/tiny-dpo.toml (reward accuracy and margin on
#      held-out pairs), and the adapter merged into the SFT model
#   8. accuracy after DPO
#   9. transformers loads the merged model dir and generates from it
#  10. the merged model exported as GGUF (q8_0) for llama.cpp and Ollama
# Everything lands in demo/. About 90 s on a 2-core CPU after the build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
st="$root/build/salamandra-tune"
work="$root/demo"
rm -rf "$work"
mkdir -p "$work"
start=$(date +%s)

echo "== 1. synthetic tasks: add, successor, reverse, sort, count in en es ca de fr it pt gl eu"
"$st" make-tasks --out "$work/tasks" --train 6000 --test 270 --pairs 2000 --tasks add,successor,reverse,sort,count
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

echo "== 6. accuracy after SFT: exact match, and preference for the right answer over a near miss"
"$st" eval-tasks --model "$work/run/final" --data "$work/tasks/test.jsonl" --pairs "$work/tasks/pairs-test.jsonl" \
  --output "$work/after.json" --show 3

echo "== 7. preference optimisation: DPO against the SFT model (recipes/tiny-dpo.toml)"
"$st" dpo "$root/recipes/tiny-dpo.toml" model.path="$work/run/final" "data.train=[\"$work/tasks/pairs.jsonl\"]" \
  "data.eval=[\"$work/tasks/pairs-test.jsonl\"]" data.cache_dir="$work/cache" training.output_dir="$work/dpo" \
  | grep -v '^#\|^\[\|^[a-z_0-9]* = \|^$' || true
test -d "$work/dpo/final"
"$st" merge --base "$work/run/final" --adapter "$work/dpo/final" --out "$work/dpo-merged" | tail -n 2

echo "== 8. accuracy after DPO"
"$st" eval-tasks --model "$work/dpo-merged" --data "$work/tasks/test.jsonl" --pairs "$work/tasks/pairs-test.jsonl" \
  --output "$work/after-dpo.json" | tail -n 2

echo "== 9. transformers loads the merged model and generates"
"$root/.venv/bin/python" - "$work/dpo-merged" <<'PY'
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

echo "== 10. export for deployment: GGUF (q8_0) with an Ollama Modelfile, for llama.cpp and Ollama"
"$st" export --model "$work/dpo-merged" --out "$work/gguf/demo-q8_0.gguf" --dtype q8_0 | tail -n 2

figure() { "$root/.venv/bin/python" -c "import json, sys; print(round(100 * json.load(open(sys.argv[1]))[sys.argv[2]], 1))" "$@"; }
reward=$("$root/.venv/bin/python" -c "
import json, sys
evals = [json.loads(l) for l in open(sys.argv[1]) if 'eval_rewards/accuracies' in l]
print(round(100 * evals[-1]['eval_rewards/accuracies'], 1))" "$work/dpo/metrics.jsonl")
echo "demo done in $(( $(date +%s) - start )) s:"
echo "  exact match: $(figure "$work/before.json" accuracy)% before training -> $(figure "$work/after.json" accuracy)% after SFT" \
     "-> $(figure "$work/after-dpo.json" accuracy)% after DPO"
echo "  preference for the right answer over a near miss (held-out pairs): $(figure "$work/after.json" preference_accuracy)%" \
     "after SFT -> $(figure "$work/after-dpo.json" preference_accuracy)% after DPO; DPO's reward accuracy ${reward}%"
echo "curves: $work/run/training.svg (SFT), $work/dpo/training.svg (DPO: loss, reward margin and accuracy);" \
     "metrics: $work/run/metrics.jsonl, $work/dpo/metrics.jsonl; model: $work/dpo-merged (adapter: $work/dpo/final;" \
     "model card: $work/run/final/README.md; GGUF: $work/gguf)"
