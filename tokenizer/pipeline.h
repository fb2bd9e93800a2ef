// What a tokenizer does, stage by stage, as the `tokenizers` library runs it:
// the description both sources fill (tokenizer.json directly; tokenizer.model
// through transformers' LlamaTokenizer conversion) and Tokenizer executes.
//
//   raw text -> added tokens (non-normalized) -> normalizer -> added tokens
//   (normalized) -> pre-tokenizer -> BPE -> post-processor (BOS/EOS)
//   ids -> tokens -> decoder steps -> text
// Only what Llama-family tokenizers use is described; a loader refuses any
// other component, naming its place in the file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/unicode.h"

namespace st::tokenization {

/// A token matched in the text before the model runs (tokenizers AddedToken).
struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;      // skipped by decode(skip_special_tokens=true)
  bool normalized = false;   // matched in the normalized text, after the others
  bool lstrip = false;       // swallows the whitespace before it
  bool rstrip = false;       // swallows the whitespace after it
  bool single_word = false;  // matches only with no word character on either side
};

/// One normalizer step (a Sequence is a list of them).
struct NormalizerStep {
  enum class Kind { kPrepend, kReplace, kNFC, kNFKC };
  Kind kind;
  std::string pattern;  // kReplace: the literal string replaced
  std::string content;  // kPrepend: what is prepended; kReplace: the replacement
};

/// Metaspace pre-tokenizer: ' ' -> replacement, optionally prepended, optionally split.
struct Metaspace {
  enum class Prepend { kAlways, kFirst, kNever };
  std::string replacement = "\xE2\x96\x81";  // U+2581
  Prepend prepend = Prepend::kFirst;
  bool split = false;  // split before each replacement (tokenizers MergedWithNext)
};

/// BPE model options (tokenizers models::bpe::BPE).
struct BpeOptions {
  bool byte_fallback = false;  // unknown characters become <0xHH> pieces
  bool fuse_unk = false;       // consecutive unknowns become one unk
  bool ignore_merges = false;  // a word that is a piece is that piece
  int32_t unk_id = -1;         // -1: unknown characters are dropped
};

/// One decoder step (a Sequence is a list of them).
struct DecoderStep {
  enum class Kind { kReplace, kByteFallback, kFuse, kStrip, kMetaspace };
  Kind kind;
  std::string pattern, content;  // kReplace: pattern -> content; kStrip: the char stripped
  size_t start = 0, stop = 0;    // kStrip: how many at the start / end of each token
  Metaspace metaspace;           // kMetaspace
};

/// Everything a Tokenizer runs; filled by a loader.
struct Pipeline {
  std::vector<std::string> pieces;  // model vocabulary by id
  std::vector<std::pair<std::string, std::string>> merges;  // by rank (tokenizer.model's are derived by its loader)
  BpeOptions bpe;
  std::vector<AddedToken> added;
  std::vector<NormalizerStep> normalizer;
  std::optional<Metaspace> pre_tokenizer;  // none: the normalized text is one word
  std::vector<DecoderStep> decoder;
  // Post-processor: what encode(add_special_tokens=true) puts around the text.
  std::vector<int32_t> prefix_ids, suffix_ids;
};

}  // namespace st::tokenization
