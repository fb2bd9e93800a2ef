// Added tokens cut out of the text before the model runs, as tokenizers'
// AddedVocabulary does: leftmost-longest matches, non-normalized tokens on
// the raw text first, normalized ones on each normalized piece after; a
// match that fails single_word is discarded (not retried shorter), lstrip /
// rstrip widen a match over adjacent whitespace.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/pipeline.h"

namespace st::tokenization {

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  /// normalizer: what normalized tokens' contents go through before matching.
  AddedVocabulary(const std::vector<AddedToken>& tokens, const std::vector<NormalizerStep>& normalizer);

  /// A stretch of a text: an added token (id >= 0) or plain text (id -1).
  struct Split {
    size_t begin, end;
    int32_t id;
  };
  /// Cuts text into splits with the tokens of one pass; `split_special`
  /// leaves special tokens as plain text (transformers' split_special_tokens).
  std::vector<Split> split(std::string_view text, bool normalized_pass, bool split_special) const;

 private:
  struct Pattern {
    std::string text;  // content, normalized for the normalized pass
    size_t token;      // index into tokens_ (an index survives copying the vocabulary)
  };
  // Per pass, per first byte, longest pattern first.
  std::vector<Pattern> by_byte_[2][256];
  bool pass_empty_[2] = {true, true};  // a pass without patterns leaves the text whole
  std::vector<AddedToken> tokens_;
};

}  // namespace st::tokenization
