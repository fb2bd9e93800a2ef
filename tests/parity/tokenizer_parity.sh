#!/usr/bin/env bash
# Tokenizer parity with transformers on real multilingual text: builds
# Salamandra-style tokenizers with `salamandra-tune build-tokenizer`, lets
# transformers (tokenizer_oracle.py) encode and decode every line of every
# NTREX-128 and UDHR language file and of the project's own source files, and
# requires tokenizer_parity_main (st::Tokenizer) to produce identical ids and
# text on every line. Two tokenizers: vocab 8000 trained on all languages, and
# vocab 1000 trained on English+Spanish only, where a third of all tokens are
# byte-fallback pieces.
#   tokenizer_parity.sh SALAMANDRA_TUNE PARITY_DRIVER PYTHON WORK_DIR
# Data: $ST_SHARED_DATA (default ../shared/data next to the checkout).
set -euo pipefail
st=$1 driver=$2 python=$3 work=$4
root=$(cd "$(dirname "$0")/../.." && pwd)
data=${ST_SHARED_DATA:-$root/../shared/data}
if [ ! -d "$data/ntrex128" ] || [ ! -d "$data/udhr" ]; then
  echo "SKIP: no shared data at $data (set ST_SHARED_DATA)"; exit 77
fi
rm -rf "$work"; mkdir -p "$work"
ntrex=("$data"/ntrex128/*.txt.gz)
udhr=("$data"/udhr/*.txt)
mapfile -t sources < <(cd "$root" && git ls-files '*.h' '*.cpp' '*.cu' '*.py' '*.sh' 'CMakeLists.txt' | sed "s|^|$root/|")
files=("${ntrex[@]}" "${udhr[@]}" "${sources[@]}")

{ for f in "${ntrex[@]}"; do zcat "$f"; done; cat "${udhr[@]}"; } > "$work/all.txt"
{ zcat "$data"/ntrex128/*eng*.txt.gz "$data"/ntrex128/*spa*.txt.gz; } > "$work/en_es.txt"
"$st" build-tokenizer --input "$work/all.txt" --out "$work/tok8000" --vocab-size 8000
"$st" build-tokenizer --input "$work/en_es.txt" --out "$work/tok1000" --vocab-size 1000

for tok in tok8000 tok1000; do
  "$python" "$root/tests/parity/tokenizer_oracle.py" "$work/$tok" "$work/$tok.jsonl" "${files[@]}"
  "$driver" "$work/$tok" "$work/$tok.jsonl" "${files[@]}"
done
# Records of several lines: newlines inside the text.
"$python" "$root/tests/parity/tokenizer_oracle.py" "$work/tok8000" "$work/multi.jsonl" --lines-per-record 5 "${files[@]}"
"$driver" "$work/tok8000" "$work/multi.jsonl" --lines-per-record 5 "${files[@]}"
