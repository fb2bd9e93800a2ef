// tokenizer.json (the `tokenizers` serialization) read into a Pipeline.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "tokenizer/pipeline.h"

namespace st::tokenization {

/// What tokenizer.json holds, read with every component checked: a type we
/// do not reproduce is refused with its JSON path ("decoder.decoders[2]").
struct TokenizerJson {
  Pipeline pipeline;  // pieces, merges, bpe, normalizer, pre_tokenizer, decoder, prefix/suffix ids
  std::vector<AddedToken> added;  // its added_tokens, with their ids
  bool has_post_processor = false;
};

/// Reads and checks the file at `path`.
TokenizerJson read_tokenizer_json(const std::string& path);

}  // namespace st::tokenization
