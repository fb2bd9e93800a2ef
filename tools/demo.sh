#!/usr/bin/env bash
# The demo a new user runs: set up, then on data the project makes itself
# build a Salamandra-style tokenizer, create a tiny Salamandra-architecture
# model, generate from it and score text with it. Everything lands in demo/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/setup.sh"
st="$root/build/salamandra-tune"
work="$root/demo"
rm -rf "$work"
mkdir -p "$work"

echo "== 1. tokenizer: SentencePiece BPE with Salamandra's recipe, trained on the project's own text"
cat "$root"/README.md "$root"/model/*.h "$root"/model/*.cpp "$root"/tools/*.cpp > "$work/corpus.txt"
"$st" build-tokenizer --input "$work/corpus.txt" --out "$work/tokenizer" --vocab-size 4000

echo "== 2. model: a tiny Salamandra-architecture model (4 layers, hidden 128), random weights"
"$st" init --preset tiny --vocab-size 4000 --out "$work/model" --tokenizer "$work/tokenizer" --seed 1

echo "== 3. generate (greedy, KV cache)"
"$st" generate --model "$work/model" --prompt "Bon dia! Com estàs?" --max-new-tokens 16

echo "== 4. score: log-probability of each token given the ones before"
printf 'Hola món\nThe quick brown fox.\n' > "$work/documents.txt"
"$st" score --model "$work/model" --input "$work/documents.txt" --output "$work/scores.jsonl"
head -c 400 "$work/scores.jsonl"; echo
echo "demo done: model dir $work/model loads in transformers (AutoModelForCausalLM.from_pretrained)."
