// The Salamandra tokenizer: loads a Hugging Face model dir (tokenizer.model +
// tokenizer_config.json [+ special_tokens_map.json]) and encodes/decodes
// exactly as transformers' AutoTokenizer does for that dir.
//
// transformers 5 never runs sentencepiece for Llama tokenizers: its
// LlamaTokenizer converts tokenizer.model into a `tokenizers` BPE (merges
// ranked by the id of the merged piece), with no normaliser, a Metaspace
// pre-tokeniser, added tokens split out of the raw text first, and a
// Replace/ByteFallback/Fuse/Strip decoder. This class re-implements that
// pipeline, so it matches HF where HF and plain sentencepiece disagree (text
// starting with a space, runs of whitespace, special tokens typed in the
// text, "<s>" etc.); see tokenizer.cpp for each such case.
// If the dir also holds a tokenizer.json, transformers takes vocab, merges
// and added tokens from it instead; we always read tokenizer.model.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace st {

/// Piece types of a SentencePiece model (ModelProto.SentencePiece.Type).
enum class SpmPieceType : int {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

/// One vocabulary entry of a SentencePiece model.
struct SpmPiece {
  std::string piece;
  float score = 0;
  SpmPieceType type = SpmPieceType::kNormal;
};

/// What we read from a serialized sentencepiece ModelProto.
struct SpmModel {
  std::vector<SpmPiece> pieces;
  /// TrainerSpec.model_type: 1 unigram, 2 BPE, 3 word, 4 char.
  int model_type = 1;
};

/// Parses a serialized ModelProto (validated by sentencepiece itself);
/// throws st::Error naming `file` if it is not a loadable model.
SpmModel parse_spm_model(std::string_view bytes, const std::string& file);

/// A token matched in raw text before BPE (HF "added token").
struct AddedToken {
  std::string content;
  int32_t id = -1;
  /// Skipped by decode(skip_special_tokens=true).
  bool special = false;
  /// Matched in a second pass, after the non-normalized tokens.
  bool normalized = false;
};

/// Encoder/decoder identical to transformers' LlamaTokenizer for a model dir.
class Tokenizer {
 public:
  /// Loads dir/tokenizer.model and dir/tokenizer_config.json (required) and
  /// dir/special_tokens_map.json (optional). Throws st::Error naming the file
  /// (and key) for a missing or corrupt file, a non-BPE model, or an added
  /// token whose id or content disagrees with tokenizer.model.
  static Tokenizer load(const std::string& dir);

  /// Text to ids, as HF `tokenizer(text, add_special_tokens=...)`: added and
  /// special tokens written in the text become their ids; BOS/EOS are added
  /// per add_bos_token/add_eos_token when add_special_tokens is true.
  /// Throws st::Error if text is not valid UTF-8.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;

  /// Encodes text that continues a document after text encoded earlier, so
  /// that encode(a + b) == encode(a) + encode_continuation(b) whenever the
  /// tokens don't merge across the cut: no BOS/EOS, and no "▁" prepended to
  /// a leading plain stretch (HF prepends only at offset 0 of the string).
  std::vector<int32_t> encode_continuation(std::string_view text) const;

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
  /// Whether encode(..., true) prepends BOS / appends EOS.
  bool add_bos_token() const { return add_bos_; }
  bool add_eos_token() const { return add_eos_; }

  /// Number of ids (all pieces of tokenizer.model).
  int32_t vocab_size() const { return static_cast<int32_t>(pieces_.size()); }
  /// Id of a piece or added token given by its exact text ("▁the",
  /// "<|im_end|>"), or -1 if there is none.
  int32_t token_to_id(std::string_view token) const;
  /// The piece text of an id (spaces shown as "▁"); throws if out of range.
  const std::string& id_to_piece(int32_t id) const;
  /// True for ids that decode(skip_special_tokens=true) drops.
  bool is_special(int32_t id) const;
  /// The tokens split out of raw text before BPE.
  const std::vector<AddedToken>& added_tokens() const { return added_; }

  /// The Jinja chat template of tokenizer_config.json ("" if none).
  const std::string& chat_template() const { return chat_template_; }
  /// tokenizer_config.json as loaded.
  const nlohmann::json& config() const { return config_; }

 private:
  enum class Prepend { kAlways, kFirst, kNever };
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  // A stretch of the input: either an added token (id >= 0) or plain text.
  struct Segment {
    size_t begin, end;
    int32_t id;
  };

  std::vector<int32_t> encode_impl(std::string_view text, bool add_special_tokens, bool document_start) const;
  void split_added(std::string_view text, bool normalized_pass,
                   std::vector<Segment>& segments) const;
  void bpe(std::string_view word, std::vector<int32_t>& out) const;

  std::vector<std::string> pieces_;
  std::unordered_map<std::string, int32_t> vocab_;
  // Merges keyed by (left id << 32 | right id): open addressing with linear
  // probing, since the lookup is the hot loop of BPE (std::unordered_map
  // spent half of `prepare` chasing its buckets).
  class MergeTable {
   public:
    void reserve(size_t count);
    /// Inserts unless the key is present (the first merge of a pair wins).
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
  MergeTable merges_;
  // Ids of single-byte ASCII pieces (-1: not in the vocabulary), so BPE's
  // initial split does not build a string per character.
  int32_t ascii_ids_[128];
  int32_t byte_ids_[256];
  std::vector<AddedToken> added_;
  // Indexes into added_ by first byte, longest content first.
  std::vector<int32_t> added_by_byte_[256];
  std::vector<uint8_t> special_;
  bool split_special_tokens_ = false;
  Prepend prepend_ = Prepend::kFirst;
  bool strip_decoded_space_ = true;
  bool add_bos_ = false, add_eos_ = false;
  int32_t bos_id_ = -1, eos_id_ = -1, pad_id_ = -1, unk_id_ = -1;
  std::string chat_template_;
  nlohmann::json config_;
};

}  // namespace st
