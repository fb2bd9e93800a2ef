#!/usr/bin/env python3
"""tokenizer.json variants of one Salamandra-style tokenizer, for parity tests
of our tokenizer.json reader against transformers' AutoTokenizer.

  tokenizer_json_variants.py BASE_DIR OUT_DIR

BASE_DIR: a dir made by `salamandra-tune build-tokenizer` (tokenizer.model,
tokenizer_config.json, special_tokens_map.json). Writes one complete
tokenizer dir per variant under OUT_DIR (replacing only those subdirs) and
prints the variant names, one per line, on stdout; progress goes to stderr.
No variant has a tokenizer.model: a reader must take everything from
tokenizer.json and tokenizer_config.json. Files are made with the
`tokenizers` library or transformers' save_pretrained; JSON is edited by hand
only where the library cannot write the form (t4_style's merges, below).

How transformers 5 reads these dirs (verified on 5.24, tokenization_utils_base
_from_pretrained and tokenization_utils_tokenizers convert_to_native_format):
* A model class with its own __init__ (tokenizer_class LlamaTokenizer or
  LlamaTokenizerFast; not a missing tokenizer_class, whatever config.json's
  model_type: 5.x maps no tokenizer to llama) takes only model.vocab and model.merges, the post_processor (and
  padding/truncation) from tokenizer.json and builds the rest itself: BPE with
  fuse_unk and byte_fallback but no unk_token, no dropout, no ignore_merges;
  normalizer none; pre_tokenizer Metaspace(split=false, prepend_scheme
  "first", "always" with legacy=true, "never" with add_prefix_space=false);
  decoder Replace/ByteFallback/Fuse plus Strip(" ",1,0) unless
  add_prefix_space=false. Everything else in the file is ignored.
* tokenizer_class PreTrainedTokenizerFast or TokenizersBackend (one class in
  5.x) loads the file with Tokenizer.from_file: its whole pipeline runs.
* With a tokenizer.json, add_bos_token/add_eos_token in tokenizer_config.json
  are dropped; BOS/EOS come from the file's post_processor.
* Added tokens: tokenizer_config.json's added_tokens_decoder if present;
  otherwise tokenizer.json's added_tokens (and special_tokens_map.json).
  transformers 5's save_pretrained writes no added_tokens_decoder, so every
  t5-saved dir reads them from tokenizer.json.

Variants (the script asserts what each one claims; see check_* calls):
  t5_saved              AutoTokenizer.from_pretrained(BASE).save_pretrained:
                        the plain case. Same ids as BASE on every sample.
  t5_saved_legacy       + legacy=true: Metaspace prepend "always", so text
                        after a special token gets "▁". Must differ from
                        t5_saved.
  t5_saved_no_prefix    + add_prefix_space=false: prepend "never" and no
                        Strip in the decoder. Must differ from t5_saved.
  t4_style              the transformers-4 LlamaTokenizerFast file:
                        normalizer Sequence[Prepend("▁"), Replace(" ", "▁")],
                        pre_tokenizer null, BPE unk_token "<unk>" without an
                        ignore_merges key and merges as "a b" strings (the
                        pre-0.20 `tokenizers` form, which current tokenizers
                        only reads, so written by hand); config as saved by
                        transformers 4 (BASE's: added_tokens_decoder,
                        add_bos_token, legacy) but tokenizer_class
                        PreTrainedTokenizerFast, so the file's normalizer
                        runs: it prepends "▁" to every segment between
                        special tokens. Must differ from t5_saved.
  t4_style_llama_class  the same file with tokenizer_class
                        LlamaTokenizerFast: the normalizer is ignored, ids
                        equal t5_saved's.
  t4_style_no_class     the same file, tokenizer_config.json without
                        tokenizer_class, config.json {"model_type": "llama"}:
                        transformers 5 maps no tokenizer to model type llama,
                        so this is TokenizersBackend, the whole file runs and
                        the ids equal t4_style's (not t5_saved's). The same
                        holds with no config.json at all.
  json_only_added       added tokens that only tokenizer.json has (config
                        without added_tokens_decoder), LlamaTokenizer class:
                        " de", "the" (lstrip, normalized=false), "ción"
                        (rstrip), "and" (single_word), and the special
                        "<tool>" and "«"; one already in the vocab keeps its
                        id (8000 pieces: "ción", "and", "«"), the others get
                        new ids after it. Each must occur in the samples,
                        flipping lstrip/rstrip/single_word must change the
                        ids, and the ids must differ from t5_saved.
  json_only_added_legacy, json_only_added_no_prefix   as for t5_saved; after
                        an added token a segment is not "first", so these
                        differ on plain text too.
  json_only_added_t4    the same added tokens on the t4_style file through
                        PreTrainedTokenizerFast: with a normalizer the
                        normalized flag matters (a normalized added token's
                        own content goes through the normalizer, so " de"
                        becomes "▁▁de", found only after two spaces,
                        whereas the raw " de" is everywhere); flipping it must
                        change the ids. (Without a normalizer, as in
                        json_only_added, it cannot.) rstrip/lstrip of a
                        normalized token see the normalized text, where
                        spaces are "▁", not whitespace: "ción"'s rstrip does
                        nothing here.
  other_merges          LlamaTokenizer with a merges list that is not the
                        one derivable from the vocab: every 5th merge dropped,
                        each block of 50 reversed. Its vocab equals t5_saved's;
                        its ids must differ from BASE's (tokenizer.model).
  full_pipeline         PreTrainedTokenizerFast: Metaspace prepend "always",
                        split=true; BPE byte_fallback, fuse_unk, unk_token
                        "<unk>", ignore_merges=true, over other_merges' merges
                        (with the vocab-derived ones ignore_merges changes
                        nothing). Flipping split, prepend_scheme or
                        ignore_merges must each change the ids.
  full_pipeline_unk     full_pipeline with byte_fallback=false, as
                        tokenizer_class TokenizersBackend: characters outside
                        the vocab become <unk>, runs fused. <unk> must occur
                        and flipping fuse_unk must change the ids.
Every variant must load with AutoTokenizer as the class it names, and for
the PreTrainedTokenizerFast ones AutoTokenizer's ids must equal those of
`tokenizers` running the file itself.

Samples: the PROBES below plus the first lines of a few NTREX-128 files when
the shared data is there ($ST_SHARED_DATA, default ../shared/data).
"""
import argparse
import copy
import gzip
import json
import os
import shutil
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROBES = [
    "Hello world",
    "",
    " starts with a space",
    "  two leading spaces and a double  space, trailing  ",
    "<|im_start|>user\nHola, ¿qué tal? La canción de la casa del pueblo.<|im_end|>\n<|im_start|>assistant\n",
    "<s>Texto tras BOS</s> y después",
    "the cat and the band, the end; then acción de gracias «citas» <tool>call</tool> x<tool>y",
    "Sandy and Andy, the theory: andante, desde la acción, ción",
    "La nación está lista y la canción suena.",
    "Emoji 🙂 and 漢字 ǅ ﬁ plus tab\tand\r\nCRLF",
    "Δεν ξέρω. Не знаю. Ďakujem, że przyszedłeś.",
]
NTREX_FILES = ("eng-GB", "spa", "cat", "fra", "deu", "ell", "bul")
NTREX_LINES = 150

# (content, flags) of json_only_added's tokens; `tokenizers` gives non-special
# tokens normalized=true and special ones normalized=false by default.
ADDED = [
    (" de", {}),
    ("the", {"lstrip": True, "normalized": False}),
    ("ción", {"rstrip": True}),
    ("and", {"single_word": True}),
]
ADDED_SPECIAL = ["<tool>", "«"]

LLAMA, FAST = "LlamaTokenizer", "TokenizersBackend"


def log(*args):
    print(*args, file=sys.stderr)


def samples(data):
    texts = list(PROBES)
    ntrex = os.path.join(data, "ntrex128")
    for name in NTREX_FILES:
        path = os.path.join(ntrex, f"newstest2019-ref.{name}.txt.gz")
        if os.path.exists(path):
            with gzip.open(path, "rb") as f:
                texts += f.read().decode("utf-8").split("\n")[:NTREX_LINES]
    return texts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--data", default=os.environ.get("ST_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data")))
    args = parser.parse_args()
    start = time.time()

    from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    texts = samples(args.data)
    os.makedirs(args.out_dir, exist_ok=True)
    names = []

    def ids(tok):
        return tok(texts)["input_ids"]

    def raw_ids(tokenizer_json):
        tok = Tokenizer.from_str(json.dumps(tokenizer_json))
        return [e.ids for e in tok.encode_batch(texts)]

    def differ(a, b):
        return sum(x != y for x, y in zip(a, b))

    def check_differs(what, a, b):
        n = differ(a, b)
        assert n > 0, f"{what}: no sample's ids change, the variant would be a no-op"
        log(f"  {what}: {n}/{len(texts)} samples differ")

    def check_same(what, a, b):
        n = differ(a, b)
        assert n == 0, f"{what}: {n} samples differ"
        log(f"  {what}: all {len(texts)} samples equal")

    def load(name, cls):
        tok = AutoTokenizer.from_pretrained(os.path.join(args.out_dir, name))
        assert type(tok).__name__ == cls, f"{name}: AutoTokenizer gave {type(tok).__name__}, want {cls}"
        return tok

    def write(name, tokenizer_json, config, *, model_config=None, special_map=None, cls=LLAMA):
        """Writes OUT_DIR/name and loads it; returns (AutoTokenizer, its ids)."""
        path = os.path.join(args.out_dir, name)
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
        with open(os.path.join(path, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tokenizer_json, f, ensure_ascii=False, indent=2)
        with open(os.path.join(path, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=2)
        template = os.path.join(t5_dir, "chat_template.jinja")
        if os.path.exists(template):
            shutil.copy(template, path)
        if model_config is not None:
            with open(os.path.join(path, "config.json"), "w") as f:
                json.dump(model_config, f)
        if special_map is not None:
            shutil.copy(special_map, path)
        names.append(name)
        tok = load(name, cls)
        result = ids(tok)
        if cls == FAST:
            check_same(f"{name}: AutoTokenizer vs tokenizers on the file", result, raw_ids(tokenizer_json))
        return tok, result

    def with_config(config, **changes):
        config = dict(config)
        for key, value in changes.items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        return config

    # ---- t5_saved: what transformers 5 writes
    base = AutoTokenizer.from_pretrained(args.base_dir)
    base_ids = ids(base)
    t5_dir = os.path.join(args.out_dir, "t5_saved")
    shutil.rmtree(t5_dir, ignore_errors=True)
    base.save_pretrained(t5_dir)
    assert not os.path.exists(os.path.join(t5_dir, "tokenizer.model")), "save_pretrained wrote a tokenizer.model"
    names.append("t5_saved")
    log("t5_saved")
    t5_ids = ids(load("t5_saved", LLAMA))
    check_same("t5_saved vs BASE (tokenizer.model)", t5_ids, base_ids)
    with open(os.path.join(t5_dir, "tokenizer.json"), encoding="utf-8") as f:
        t5_json = json.load(f)
    with open(os.path.join(t5_dir, "tokenizer_config.json"), encoding="utf-8") as f:
        t5_config = json.load(f)
    assert "added_tokens_decoder" not in t5_config, "transformers now saves added_tokens_decoder"
    assert t5_json["model"]["type"] == "BPE" and t5_json["normalizer"] is None

    def flag_variants(prefix, tokenizer_json, reference_ids):
        log(f"{prefix}_legacy")
        _, legacy = write(f"{prefix}_legacy", tokenizer_json, with_config(t5_config, legacy=True))
        check_differs(f"{prefix}_legacy vs {prefix}", legacy, reference_ids)
        log(f"{prefix}_no_prefix")
        tok, no_prefix = write(f"{prefix}_no_prefix", tokenizer_json, with_config(t5_config, add_prefix_space=False))
        check_differs(f"{prefix}_no_prefix vs {prefix}", no_prefix, reference_ids)
        assert tok.backend_tokenizer.pre_tokenizer.prepend_scheme == "never"

    flag_variants("t5_saved", t5_json, t5_ids)

    # ---- t4_style: the transformers-4 LlamaTokenizerFast file
    tok = Tokenizer.from_str(json.dumps(t5_json))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = None
    tok.model.unk_token = "<unk>"
    t4_json = json.loads(tok.to_str())
    # tokenizers < 0.20 wrote merges as "a b" and had no ignore_merges.
    assert all(" " not in part for merge in t4_json["model"]["merges"] for part in merge)
    t4_json["model"]["merges"] = [" ".join(merge) for merge in t4_json["model"]["merges"]]
    del t4_json["model"]["ignore_merges"]
    with open(os.path.join(args.base_dir, "tokenizer_config.json"), encoding="utf-8") as f:
        t4_config = json.load(f)
    assert "added_tokens_decoder" in t4_config
    special_map = os.path.join(args.base_dir, "special_tokens_map.json")
    log("t4_style")
    _, t4_ids = write("t4_style", t4_json, with_config(t4_config, tokenizer_class="PreTrainedTokenizerFast"),
                      special_map=special_map, cls=FAST)
    check_differs("t4_style vs t5_saved", t4_ids, t5_ids)
    log("t4_style_llama_class")
    _, same = write("t4_style_llama_class", t4_json, with_config(t4_config, tokenizer_class="LlamaTokenizerFast"),
                    special_map=special_map)
    check_same("t4_style_llama_class vs t5_saved", same, t5_ids)
    log("t4_style_no_class")
    _, same = write("t4_style_no_class", t4_json, with_config(t4_config, tokenizer_class=None),
                    model_config={"model_type": "llama"}, special_map=special_map, cls=FAST)
    check_same("t4_style_no_class vs t4_style", same, t4_ids)

    # ---- json_only_added: added tokens only tokenizer.json has
    def add_tokens(tokenizer_json):
        tok = Tokenizer.from_str(json.dumps(tokenizer_json))
        tok.add_tokens([AddedToken(content, **flags) for content, flags in ADDED])
        tok.add_special_tokens([AddedToken(content, special=True) for content in ADDED_SPECIAL])
        return json.loads(tok.to_str())

    def check_flags(name, tokenizer_json, flips):
        """Flipping each (content, flag) of `flips` changes the ids."""
        reference = raw_ids(tokenizer_json)
        for content, flag in flips:
            flipped = copy.deepcopy(tokenizer_json)
            (token,) = [t for t in flipped["added_tokens"] if t["content"] == content]
            token[flag] = not token[flag]
            check_differs(f"{name}: {flag} of {token['content']!r} flipped", raw_ids(flipped), reference)

    added_json = add_tokens(t5_json)
    added = {t["content"]: t for t in added_json["added_tokens"]}
    vocab = t5_json["model"]["vocab"]
    log("json_only_added: " + ", ".join(f"{c!r}={added[c]['id']}" + (" (vocab)" if c in vocab else "")
                                         for c, _ in ADDED + [(s, 0) for s in ADDED_SPECIAL]))
    assert any(added[c]["id"] >= len(vocab) for c, _ in ADDED), "no added token with a new id"
    _, added_ids = write("json_only_added", added_json, t5_config)
    occurring = {i for row in added_ids for i in row}
    missing = [c for c, _ in ADDED + [(s, 0) for s in ADDED_SPECIAL] if added[c]["id"] not in occurring]
    assert not missing, f"json_only_added: added tokens {missing} occur in no sample"
    check_differs("json_only_added vs t5_saved", added_ids, t5_ids)
    check_flags("json_only_added", added_json, [("the", "lstrip"), ("ción", "rstrip"), ("and", "single_word")])
    flag_variants("json_only_added", added_json, added_ids)

    log("json_only_added_t4")
    added_t4_json = add_tokens(t4_json)
    # add_tokens re-serializes: back to the transformers-4 form.
    added_t4_json["model"]["merges"] = [" ".join(merge) for merge in added_t4_json["model"]["merges"]]
    del added_t4_json["model"]["ignore_merges"]
    _, added_t4_ids = write("json_only_added_t4", added_t4_json,
                            with_config(t5_config, tokenizer_class="PreTrainedTokenizerFast"), cls=FAST)
    check_differs("json_only_added_t4 vs t4_style", added_t4_ids, t4_ids)
    check_flags("json_only_added_t4", added_t4_json,
                [(" de", "normalized"), ("the", "normalized"), ("«", "normalized"), ("the", "lstrip"),
                 ("and", "single_word")])

    # ---- other_merges: merges not derivable from the vocab
    merges = [tuple(m) for m in t5_json["model"]["merges"]]
    kept = [m for i, m in enumerate(merges) if i % 5 != 4]
    other = [m for block in range(0, len(kept), 50) for m in reversed(kept[block : block + 50])]

    def with_model(tokenizer_json, **options):
        tok = Tokenizer.from_str(json.dumps(tokenizer_json))
        model = dict(vocab=vocab, merges=other, fuse_unk=True, byte_fallback=True)
        model.update(options)
        tok.model = models.BPE(**model)
        return tok

    other_json = json.loads(with_model(t5_json).to_str())
    assert other_json["model"]["vocab"] == vocab and other_json["added_tokens"] == t5_json["added_tokens"]
    assert [tuple(m) for m in other_json["model"]["merges"]] == other
    log("other_merges")
    _, other_ids = write("other_merges", other_json, t5_config)
    check_differs("other_merges vs BASE (tokenizer.model)", other_ids, base_ids)

    # ---- full_pipeline: the generic path's options
    tok = with_model(t5_json, unk_token="<unk>", ignore_merges=True)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    full_json = json.loads(tok.to_str())
    log("full_pipeline")
    _, full_ids = write("full_pipeline", full_json, with_config(t5_config, tokenizer_class="PreTrainedTokenizerFast"),
                        cls=FAST)
    check_differs("full_pipeline vs other_merges", full_ids, other_ids)
    for what, change in [("split", ("pre_tokenizer", "split", False)),
                         ("prepend_scheme first", ("pre_tokenizer", "prepend_scheme", "first")),
                         ("ignore_merges", ("model", "ignore_merges", False))]:
        flipped = copy.deepcopy(full_json)
        flipped[change[0]][change[1]] = change[2]
        check_differs(f"full_pipeline: {what}", raw_ids(flipped), full_ids)

    log("full_pipeline_unk")
    unk_json = copy.deepcopy(full_json)
    unk_json["model"]["byte_fallback"] = False
    _, unk_ids = write("full_pipeline_unk", unk_json, with_config(t5_config, tokenizer_class="TokenizersBackend"),
                       cls=FAST)
    unk_id = vocab["<unk>"]
    assert any(unk_id in row for row in unk_ids), "full_pipeline_unk: no <unk> in any sample"
    flipped = copy.deepcopy(unk_json)
    flipped["model"]["fuse_unk"] = False
    check_differs("full_pipeline_unk: fuse_unk", raw_ids(flipped), unk_ids)

    for name in names:
        assert not os.path.exists(os.path.join(args.out_dir, name, "tokenizer.model"))
        print(name)
    log(f"{len(names)} variants of {args.base_dir} ({len(vocab)} pieces) on {len(texts)} samples "
        f"in {time.time() - start:.1f} s")


if __name__ == "__main__":
    main()
