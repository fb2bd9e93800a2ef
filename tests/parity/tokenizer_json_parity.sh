#!/usr/bin/env bash
# tokenizer.json parity with transformers: builds a Salamandra-style
# tokenizer, derives from it every tokenizer.json variant of
# tokenizer_json_variants.py (as transformers 5 saves it, transformers-4
# style, added tokens only the JSON has, merges that differ from the vocab's,
# the generic pipeline's options, and legacy / add_prefix_space switches),
# and requires st::Tokenizer to give AutoTokenizer's ids and decodes on every
# line of NTREX-128, UDHR and the chat and preference sets of shared/data.
#   tokenizer_json_parity.sh SALAMANDRA_TUNE PARITY_DRIVER PYTHON WORK_DIR
# Data: $ST_SHARED_DATA (default ../shared/data next to the checkout).
set -euo pipefail
st=$1 driver=$2 python=$3 work=$4
root=$(cd "$(dirname "$0")/../.." && pwd)
data=${ST_SHARED_DATA:-$root/../shared/data}
if [ ! -d "$data/ntrex128" ] || [ ! -d "$data/udhr" ]; then
  echo "SKIP: no shared data at $data (set ST_SHARED_DATA)"; exit 77
fi
rm -rf "$work"; mkdir -p "$work"
files=("$data"/ntrex128/*.txt.gz "$data"/udhr/*.txt)
for f in fastchat/dummy_conversation.json gsm8k_chat/chat_train.jsonl toolcall_chat/stock_toolcall_training.jsonl \
         mt_bench/question.jsonl orca_dpo_pairs/validation.jsonl llamafactory/dpo_en_demo.json \
         hh_rlhf/harmless-base/test.jsonl.gz; do
  [ -f "$data/$f" ] && files+=("$data/$f")
done

{ for f in "$data"/ntrex128/*.txt.gz; do zcat "$f"; done; cat "$data"/udhr/*.txt; } > "$work/all.txt"
"$st" build-tokenizer --input "$work/all.txt" --out "$work/base" --vocab-size 8000 >/dev/null
mapfile -t variants < <("$python" "$root/tests/parity/tokenizer_json_variants.py" "$work/base" "$work/variants")
[ "${#variants[@]}" -gt 0 ] || { echo "no variants written"; exit 1; }
for v in "${variants[@]}"; do
  echo "== $v"
  "$python" "$root/tests/parity/tokenizer_oracle.py" "$work/variants/$v" "$work/$v.jsonl" "${files[@]}"
  "$driver" "$work/variants/$v" "$work/$v.jsonl" "${files[@]}"
done
