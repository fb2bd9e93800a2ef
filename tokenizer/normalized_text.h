// Text through the normalizer and pre-tokenizer, each byte remembering the
// bytes of the original input it came from (tokenizers' NormalizedString
// alignments), so that every token can say which characters it covers.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/pipeline.h"

namespace st::tokenization {

struct NormalizedText {
  std::string text;
  std::vector<Span> origin;  // origin[k]: the source bytes of text[k]

  /// raw as is; byte k comes from byte offset + k.
  static NormalizedText identity(std::string_view raw, uint32_t offset);
  NormalizedText slice(size_t begin, size_t end) const;
  /// The source span of text[begin, end) (non-empty).
  Span source(size_t begin, size_t end) const;
};

/// Runs the normalizer steps in order.
void normalize(const std::vector<NormalizerStep>& steps, NormalizedText& text);
/// The normalizer on a plain string (how normalized added tokens are matched).
std::string normalize_string(const std::vector<NormalizerStep>& steps, std::string_view text);

/// The words of a normalized piece: Metaspace's replacement of ' ', its
/// prepend (scheme kFirst: only to the piece starting the input) and split;
/// without a pre-tokenizer the piece is one word.
std::vector<NormalizedText> pre_tokenize(const std::optional<Metaspace>& metaspace, NormalizedText piece);

}  // namespace st::tokenization
