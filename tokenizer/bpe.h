// The BPE model of `tokenizers` (models::bpe::BPE) on one pre-tokenized word.
//
// Merging is the tokenizers algorithm: repeatedly apply the lowest-ranked
// merge present, leftmost first (not sentencepiece's score order, which
// differs for whitespace runs). Every symbol remembers which bytes of the
// original text it came from, so tokens carry offsets.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/pipeline.h"

namespace st::tokenization {

/// A byte range [begin, end) of the text given to encode().
struct Span {
  uint32_t begin = 0, end = 0;
};

class Bpe {
 public:
  /// Builds the model; throws st::Error naming `origin` for a merge whose
  /// parts or result are not pieces.
  Bpe(const std::vector<std::string>& pieces,
      const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
      const std::string& origin);

  /// Appends the tokens of `word` (UTF-8; origin[k]: the source span of
  /// byte k) to ids and, if spans is not null, their source spans.
  void tokenize(std::string_view word, const Span* origin, std::vector<int32_t>& ids,
                std::vector<Span>* spans) const;

  /// Id of a piece, or -1.
  int32_t piece_id(std::string_view piece) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  struct Symbol {
    int32_t id;
    int32_t prev, next;    // neighbours within the symbol's chunk, -1 at its ends
    uint32_t len;          // bytes of the word; 0 once merged into its left neighbour
    uint32_t begin, end;   // source span
  };
  void merge(std::vector<Symbol>& symbols, size_t begin, size_t end) const;
  // Merges keyed by (left id << 32 | right id): open addressing with linear
  // probing, since the lookup is the hot loop of BPE (std::unordered_map
  // spent half of `prepare` chasing its buckets).
  class MergeTable {
   public:
    void reserve(size_t count);
    /// Inserts or replaces: of duplicate pairs the last one wins, as in tokenizers.
    void insert(uint64_t key, Merge merge);
    const Merge* find(uint64_t key) const;

   private:
    static constexpr uint64_t kEmpty = ~uint64_t(0);
    size_t slot(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift_); }
    std::vector<uint64_t> keys_;
    std::vector<Merge> values_;
    int shift_ = 64;
    size_t size_ = 0;
  };

  std::unordered_map<std::string, int32_t> vocab_;
  MergeTable merges_;
  // Pairs of code points (first << 32 | second) that some piece holds side
  // by side (values unused), and whether chunking by them is sound.
  MergeTable adjacent_;
  bool chunkable_ = true;
  BpeOptions options_;
  // Ids of single-character pieces (ASCII by table, others by code point)
  // and of <0xHH> byte pieces (-1: absent), so the initial split builds no
  // string per character.
  int32_t ascii_ids_[128];
  std::unordered_map<uint32_t, int32_t> char_ids_;
  int32_t byte_ids_[256];
};

}  // namespace st::tokenization
