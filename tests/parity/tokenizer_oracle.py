"""Reference side of the tokenizer parity test: what Hugging Face does.

Loads a model dir with transformers' AutoTokenizer (for Salamandra dirs that
is LlamaTokenizer, a `tokenizers` BPE converted from tokenizer.model) and
writes one JSON line per record of each text file:
  {"file", "line", "ids", "ids_plain", "decoded", "decoded_skip", "roundtrip"}
ids: tokenizer(text)["input_ids"] (BOS/EOS per the config);
ids_plain: the same with add_special_tokens=False;
decoded: decode(ids, skip_special_tokens=False) -- BOS included, so "<s>" leads;
decoded_skip: decode(ids, skip_special_tokens=True);
roundtrip: decoded_skip == text (HF's own notion of a lossless round trip; it
is false e.g. for text starting with a space, whose dummy-prefix space the
decoder strips, or when the text contains special tokens).

Records: the file's bytes decoded as UTF-8 (.gz decompressed), split on "\n";
a final empty piece after a trailing "\n" is dropped; "\r" stays in the text
(NTREX is CRLF). With --lines-per-record K, K consecutive lines form one
record, each keeping its "\n" (tests newline runs and the dummy prefix at
line starts). tests/model/tokenizer_parity_main.cpp splits identically.

Usage: tokenizer_oracle.py MODEL_DIR OUT.jsonl [--lines-per-record K] FILE...
"""

import argparse
import gzip
import json
import sys
import time


def read_records(path, lines_per_record):
    """The records of one file, as (first line number, text)."""
    with open(path, "rb") as handle:
        data = handle.read()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    lines = data.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if lines_per_record <= 1:
        return [(i + 1, line) for i, line in enumerate(lines)]
    records = []
    for start in range(0, len(lines), lines_per_record):
        chunk = lines[start : start + lines_per_record]
        records.append((start + 1, "".join(line + "\n" for line in chunk)))
    return records


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("out")
    parser.add_argument("files", nargs="+")
    parser.add_argument("--lines-per-record", type=int, default=1)
    args = parser.parse_args()

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    print(f"oracle: {type(tokenizer).__name__} from {args.model_dir}", file=sys.stderr)
    start = time.time()
    count = 0
    with open(args.out, "w", encoding="utf-8") as out:
        for path in args.files:
            records = read_records(path, args.lines_per_record)
            texts = [text for _, text in records]
            # Batch calls go through the same Rust encode as single calls.
            ids_all = tokenizer(texts)["input_ids"] if texts else []
            plain_all = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
            for (line, text), ids, plain in zip(records, ids_all, plain_all):
                decoded_skip = tokenizer.decode(ids, skip_special_tokens=True)
                row = {
                    "file": path,
                    "line": line,
                    "ids": ids,
                    "ids_plain": plain,
                    "decoded": tokenizer.decode(ids, skip_special_tokens=False),
                    "decoded_skip": decoded_skip,
                    "roundtrip": decoded_skip == text,
                }
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
    print(f"oracle: {count} records from {len(args.files)} files in {time.time() - start:.1f} s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
