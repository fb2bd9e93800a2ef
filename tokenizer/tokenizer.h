// The Salamandra tokenizer: loads a Hugging Face model dir and encodes and
// decodes exactly as transformers' AutoTokenizer does for that dir.
//
// Which files define it follows transformers 5 (see tokenizer_sources.h):
// tokenizer.json when present, else tokenizer.model through LlamaTokenizer's
// conversion; tokenizer_config.json (+ special_tokens_map.json) for the
// special tokens and switches. Both become one tokenization::Pipeline that
// this class runs; encode_with_offsets also says which bytes of the text
// each token covers, which is where loss masks come from.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pipeline.h"

namespace st {

using tokenization::AddedToken;

/// The files of a model dir that define its tokenizer (and its chat
/// template): what a token cache depends on and what every model dir we
/// write carries over unchanged.
inline constexpr std::array<const char*, 6> kTokenizerFiles = {
    "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "chat_template.jinja"};

/// Token ids with the bytes of the text each one covers; tokens the
/// post-processor adds (BOS/EOS) cover nothing (begin == end).
struct Encoding {
  std::vector<int32_t> ids;
  std::vector<tokenization::Span> spans;
};

class Tokenizer {
 public:
  /// Loads the tokenizer of a model dir. Throws st::Error naming the file
  /// (and key or JSON path) for a missing or corrupt file, a dir with
  /// neither tokenizer.json nor tokenizer.model, or a component we do not
  /// reproduce.
  static Tokenizer load(const std::string& dir);

  /// Text to ids, as HF `tokenizer(text, add_special_tokens=...)`: added and
  /// special tokens written in the text become their ids; the post-processor
  /// adds BOS/EOS when add_special_tokens is true.
  /// Throws st::Error if text is not valid UTF-8.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;
  /// The same ids, each with the bytes of `text` it covers.
  Encoding encode_with_offsets(std::string_view text, bool add_special_tokens = true) const;

  /// Ids to text, as HF `tokenizer.decode(ids, skip_special_tokens=...)`.
  /// Throws st::Error for an id outside the vocabulary (HF drops it silently).
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  /// Special token ids; -1 when the config names no such token.
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  int32_t pad_id() const { return pad_id_; }
  int32_t unk_id() const { return unk_id_; }
  /// The ids a chat reply ends with, where generation stops: EOS and, for
  /// instruct (ChatML) vocabularies, <|im_end|>.
  std::vector<int64_t> end_of_turn_ids() const;
  /// Whether encode(..., true) starts with BOS / ends with EOS.
  bool add_bos_token() const;
  bool add_eos_token() const;

  /// Number of ids (model pieces and added tokens).
  int32_t vocab_size() const { return static_cast<int32_t>(pieces_.size()); }
  /// Id of a piece or added token given by its exact text ("▁the",
  /// "<|im_end|>"), or -1 if there is none.
  int32_t token_to_id(std::string_view token) const;
  /// The piece text of an id (spaces shown as "▁"); throws if out of range.
  const std::string& id_to_piece(int32_t id) const;
  /// True for ids that decode(skip_special_tokens=true) drops.
  bool is_special(int32_t id) const;
  /// The tokens split out of raw text before BPE.
  const std::vector<AddedToken>& added_tokens() const { return pipeline_.added; }

  /// The Jinja chat template ("" if none).
  const std::string& chat_template() const { return chat_template_; }
  /// tokenizer_config.json as loaded.
  const nlohmann::json& config() const { return config_; }
  /// The file the vocabulary came from (tokenizer.json or tokenizer.model).
  const std::string& source_file() const { return source_file_; }

 private:
  // Runs `pipeline` (the loaders' output); load() sets the rest from the config.
  Tokenizer(tokenization::Pipeline pipeline, nlohmann::json config, std::string source_file);
  void encode_into(std::string_view text, bool add_special_tokens, std::vector<int32_t>& ids,
                   std::vector<tokenization::Span>* spans) const;

  tokenization::Pipeline pipeline_;
  tokenization::Bpe bpe_;
  tokenization::AddedVocabulary added_vocabulary_;
  std::vector<std::string> pieces_;  // by id: model pieces, then added tokens beyond them
  std::unordered_map<std::string, int32_t> added_ids_;
  std::vector<uint8_t> special_;
  bool split_special_tokens_ = false;
  bool clean_up_spaces_ = false;
  int32_t bos_id_ = -1, eos_id_ = -1, pad_id_ = -1, unk_id_ = -1;
  std::string chat_template_;
  nlohmann::json config_;
  std::string source_file_;
};

}  // namespace st
