#!/usr/bin/env bash
# Fuzzes the data readers (datasets/readers.h) with libFuzzer (clang) under
# ASan and UBSan for a fixed time, starting from small samples of every
# format; prints the executions and any finding. Not part of ctest.
#   scripts/fuzz_readers.sh [SECONDS]   (default 120)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-120}
command -v clang++ >/dev/null || { sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd=sudo;
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq clang >/dev/null; }
work=$(mktemp -d)
clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$root" "$root/tests/datasets/readers_fuzz.cpp" \
  $(sed -n "/add_library(st_data_readers/,/)/s|^ *\([a-z_]*\.cpp\)$|$root/datasets/\1|p" "$root/datasets/CMakeLists.txt") -lz -o "$work/fuzz"

# Seeds: the first byte picks the format (see readers_fuzz.cpp); 0 = auto.
mkdir -p "$work/corpus"
seed() { printf "$1" > "$work/corpus/$2"; }
seed '\x00{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "content": "r"}, {"role": "assistant", "content": "a"}], "tools": [{"type": "function"}]}\n' messages
seed '\x00[{"system": "s", "tools": "[]", "conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": "{\\"name\\": \\"f\\", \\"arguments\\": {}}"}, {"from": "observation", "value": "r"}, {"from": "gpt", "value": "a"}]}]' sharegpt
seed '\x10{"instruction": "i", "input": "x", "output": "o", "history": [["q", "a"]], "system": "s"}\n{"instruction": "i", "response": "o"}\n' alpaca
seed '\x00{"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": "a"}]}\n' prompt_completion
seed '\x00{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}]}\n' preference
seed '\x00{"chosen": "\\n\\nHuman: hi\\n\\nAssistant: a\\n\\nHuman: q\\n\\nAssistant: good", "rejected": "\\n\\nHuman: hi\\n\\nAssistant: a\\n\\nHuman: q\\n\\nAssistant: bad"}\n' transcripts
seed '\x00[{"conversations": [{"from": "human", "value": "q"}], "chosen": {"from": "gpt", "value": "a"}, "rejected": {"from": "gpt", "value": "b"}}]' ranking
seed '\x00{"input": {"messages": [{"role": "user", "content": "q"}], "tools": []}, "preferred_output": [{"role": "assistant", "content": "a"}], "non_preferred_output": [{"role": "assistant", "content": "b"}]}\n' openai
printf '\x00' > "$work/corpus/gzip"
printf '{"prompt": "p", "chosen": "a", "rejected": "b"}\n' | gzip -9 -n >> "$work/corpus/gzip"

"$work/fuzz" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work/corpus" 2>&1 | tail -n 12
echo "work dir (corpus, any crash-* files): $work"
