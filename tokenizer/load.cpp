// Tokenizer::load: which files of a model dir define the tokenizer, and how
// transformers 5 (5.24, verified against it) combines them.
//
// The class named by tokenizer_config.json decides:
//  - LlamaTokenizer / LlamaTokenizerFast (or no class and no tokenizer.json):
//    the pipeline is LlamaTokenizer's own -- no
//    normalizer, Metaspace with prepend_scheme from legacy/add_prefix_space
//    ("first" unless legacy; "never" without add_prefix_space), BPE with
//    byte fallback and fused unknowns but no unk token, the Replace /
//    ByteFallback / Fuse / Strip decoder. With tokenizer.json present only its
//    vocab, merges, post-processor and added tokens are taken; without it
//    tokenizer.model is converted (merges derived from the vocabulary).
//  - PreTrainedTokenizerFast / TokenizersBackend, or no class at all (even
//    with config.json's model_type "llama"): tokenizer.json as it is.
// With tokenizer.json, BOS/EOS are its post-processor's (add_bos_token /
// add_eos_token in the config are then ignored); without it, the config's.
// Added tokens: tokenizer_config.json's added_tokens_decoder when it has one,
// else tokenizer.json's added_tokens (the generic class reads both); then the
// named special tokens (bos/eos/unk/pad/...) and additional/extra special
// tokens, each added as special if not present yet.
#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>

#include "common/atomic_file.h"
#include "common/error.h"
#include "tokenizer/json_source.h"
#include "tokenizer/spm_model.h"
#include "tokenizer/tokenizer.h"

namespace st {
namespace {

namespace fs = std::filesystem;
using tokenization::DecoderStep;
using tokenization::Metaspace;
using tokenization::Pipeline;

nlohmann::json parse_json_file(const std::string& path) {
  std::string text = read_file(path);
  try {
    nlohmann::json j = nlohmann::json::parse(text);
    if (!j.is_object()) fail(path, ": expected a JSON object at the top level");
    return j;
  } catch (const nlohmann::json::parse_error& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
}

bool get_bool(const nlohmann::json& config, const std::string& path, const char* key, bool fallback) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail(path, " key ", key, ": expected true or false, got ", it->dump());
  return it->get<bool>();
}

// A token given as "text" or as an AddedToken object {"content": "text", ...}.
std::optional<std::string> token_text(const nlohmann::json& value, const std::string& path, const std::string& key) {
  if (value.is_null()) return std::nullopt;
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string())
    return value["content"].get<std::string>();
  fail(path, " key ", key, ": expected a token string or {\"content\": ...}, got ", value.dump());
}

bool flag(const nlohmann::json& entry, const std::string& path, const std::string& key, const char* name,
          bool fallback) {
  if (!entry.is_object()) return fallback;
  auto it = entry.find(name);
  if (it == entry.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail(path, " key ", key, ".", name, ": expected true or false, got ", it->dump());
  return it->get<bool>();
}

enum class TokenizerClass { kLlama, kGeneric };

TokenizerClass tokenizer_class(const std::string& dir, const nlohmann::json& config, const std::string& config_path,
                               bool has_json) {
  auto it = config.find("tokenizer_class");
  if (it != config.end() && !it->is_null()) {
    if (*it == "LlamaTokenizer" || *it == "LlamaTokenizerFast") return TokenizerClass::kLlama;
    if (*it == "PreTrainedTokenizerFast" || *it == "TokenizersBackend") {
      if (!has_json)
        fail(config_path, " key tokenizer_class: ", it->dump(), " needs tokenizer.json, which ", dir, " lacks");
      return TokenizerClass::kGeneric;
    }
    fail(config_path, " key tokenizer_class: ", it->dump(),
         " is not supported (LlamaTokenizer, LlamaTokenizerFast, PreTrainedTokenizerFast, TokenizersBackend are)");
  }
  // No class named: transformers 5 runs tokenizer.json as it is
  // (TokenizersBackend), whatever config.json's model_type; a dir with only
  // tokenizer.model is converted as LlamaTokenizer converts it.
  return has_json ? TokenizerClass::kGeneric : TokenizerClass::kLlama;
}

// LlamaTokenizer's own pre-tokenizer and decoder for the config's switches.
void llama_pipeline(Pipeline& p, const nlohmann::json& config, const std::string& config_path) {
  const bool legacy = get_bool(config, config_path, "legacy", false);
  const bool prefix_space = get_bool(config, config_path, "add_prefix_space", true);
  p.normalizer.clear();
  Metaspace m;
  m.prepend = !prefix_space ? Metaspace::Prepend::kNever : legacy ? Metaspace::Prepend::kAlways
                                                                 : Metaspace::Prepend::kFirst;
  m.split = false;
  p.pre_tokenizer = m;
  p.bpe = {.byte_fallback = true, .fuse_unk = true, .ignore_merges = false, .unk_id = -1};
  p.decoder.clear();
  DecoderStep replace{};
  replace.kind = DecoderStep::Kind::kReplace;
  replace.pattern = m.replacement;
  replace.content = " ";
  p.decoder.push_back(replace);
  p.decoder.push_back({.kind = DecoderStep::Kind::kByteFallback});
  p.decoder.push_back({.kind = DecoderStep::Kind::kFuse});
  if (prefix_space) {
    DecoderStep strip{};
    strip.kind = DecoderStep::Kind::kStrip;
    strip.content = " ";
    strip.start = 1;
    p.decoder.push_back(strip);
  }
}

// The model's pieces by text, built once per load for the steps below
// (views into Pipeline::pieces, which outlives it).
using PieceIndex = std::unordered_map<std::string_view, int32_t>;

PieceIndex index_pieces(const std::vector<std::string>& pieces) {
  PieceIndex index;
  index.reserve(pieces.size());
  for (size_t id = 0; id < pieces.size(); ++id) index.emplace(pieces[id], static_cast<int32_t>(id));
  return index;
}

// transformers' generate_merges for a vocabulary without merges: every split
// (l, r) of a piece with both halves in the vocab, ranked by the merged
// piece's id, then by the length of l.
std::vector<std::pair<std::string, std::string>> merges_from_vocab(const std::vector<std::string>& pieces,
                                                                   const PieceIndex& vocab) {
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(pieces.size() * 4);
  for (const std::string& piece : pieces) {
    std::string_view view = piece;
    for (size_t cut = 1; cut < piece.size(); ++cut) {
      if ((static_cast<uint8_t>(piece[cut]) & 0xC0) == 0x80) continue;  // inside a char
      if (vocab.contains(view.substr(0, cut)) && vocab.contains(view.substr(cut)))
        merges.emplace_back(piece.substr(0, cut), piece.substr(cut));
    }
  }
  return merges;
}

// The added tokens, by content, as transformers assembles them.
class AddedTokens {
 public:
  AddedTokens(const std::vector<std::string>& pieces, const PieceIndex& vocab, std::string model_file)
      : pieces_(pieces), vocab_(vocab), model_file_(std::move(model_file)) {}
  // The model's id of content, or an added token's, or -1.
  int32_t id_of(const std::string& content) const {
    if (auto it = by_content_.find(content); it != by_content_.end()) return it->second.id;
    auto it = vocab_.find(content);
    return it == vocab_.end() ? -1 : it->second;
  }
  bool contains(const std::string& content) const { return by_content_.contains(content); }
  bool is_model_piece(const std::string& content) const { return vocab_.contains(content); }
  // Adds or replaces (later sources override earlier flags).
  void put(tokenization::AddedToken token, const std::string& where) {
    if (token.content.empty()) return;  // an empty token can never match
    auto in_vocab = vocab_.find(token.content);
    if (in_vocab != vocab_.end() && in_vocab->second != token.id)
      fail(where, ": token \"", token.content, "\" has id ", token.id, " but is piece ", in_vocab->second, " of ",
           model_file_);
    if (in_vocab == vocab_.end() && token.id >= 0 && token.id < static_cast<int32_t>(pieces_.size()))
      fail(where, ": id ", token.id, " is \"", pieces_[token.id], "\" in ", model_file_, ", not \"", token.content,
           "\"");
    where_[token.content] = where;
    by_content_[token.content] = std::move(token);
  }
  // All of them; new tokens (beyond the model's pieces) must number on from
  // it without gaps, as transformers would renumber them otherwise.
  std::vector<tokenization::AddedToken> finish(const std::string& origin) const {
    std::vector<tokenization::AddedToken> out;
    for (const auto& [content, token] : by_content_) out.push_back(token);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    int32_t next = static_cast<int32_t>(pieces_.size());
    for (size_t i = 0; i < out.size(); ++i) {
      if (i > 0 && out[i].id == out[i - 1].id)
        fail(origin, ": tokens \"", out[i - 1].content, "\" and \"", out[i].content, "\" share id ", out[i].id);
      if (out[i].id < static_cast<int32_t>(pieces_.size())) continue;
      if (out[i].id != next)
        fail(where_.at(out[i].content), ": added token \"", out[i].content, "\" has id ", out[i].id, " where ", next,
             " was expected (new tokens number on from the vocabulary's ", pieces_.size(), " pieces without gaps)");
      ++next;
    }
    return out;
  }

 private:
  const std::vector<std::string>& pieces_;
  const PieceIndex& vocab_;
  std::string model_file_;
  std::map<std::string, tokenization::AddedToken> by_content_;
  std::map<std::string, std::string> where_;  // the file (and key) each token came from
};

}  // namespace

Tokenizer Tokenizer::load(const std::string& dir) {
  const std::string json_path = (fs::path(dir) / "tokenizer.json").string();
  const std::string model_path = (fs::path(dir) / "tokenizer.model").string();
  const std::string config_path = (fs::path(dir) / "tokenizer_config.json").string();
  const std::string map_path = (fs::path(dir) / "special_tokens_map.json").string();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir, ": not a directory (expected a tokenizer/model dir)");
  const bool has_json = fs::exists(json_path, ec);
  if (!has_json && !fs::exists(model_path, ec))
    fail(dir, ": has neither tokenizer.json nor tokenizer.model; a model dir needs one of them to tokenize");
  if (!fs::exists(config_path, ec)) fail(config_path, ": missing; the tokenizer needs tokenizer_config.json");
  nlohmann::json config = parse_json_file(config_path);
  nlohmann::json token_map = nlohmann::json::object();
  if (fs::exists(map_path, ec)) token_map = parse_json_file(map_path);
  const TokenizerClass cls = tokenizer_class(dir, config, config_path, has_json);

  Pipeline p;
  std::vector<tokenization::AddedToken> json_added;
  std::optional<SpmModel> spm;
  const std::string source = has_json ? json_path : model_path;
  if (has_json) {
    tokenization::TokenizerJson file = tokenization::read_tokenizer_json(json_path);
    p = std::move(file.pipeline);
    json_added = std::move(file.added);
    if (cls == TokenizerClass::kLlama) llama_pipeline(p, config, config_path);
  } else {
    spm = parse_spm_model(read_file(model_path), model_path);
    if (spm->model_type != 2)
      fail(model_path, ": model_type ", spm->model_type,
           " is not BPE (2); transformers' LlamaTokenizer only reproduces BPE models");
    p.pieces.reserve(spm->pieces.size());
    for (const SpmPiece& piece : spm->pieces) p.pieces.push_back(piece.piece);
    llama_pipeline(p, config, config_path);
  }
  const PieceIndex index = index_pieces(p.pieces);
  if (spm) p.merges = merges_from_vocab(p.pieces, index);

  AddedTokens added(p.pieces, index, source);
  const bool has_decoder_list = config.contains("added_tokens_decoder") && !config["added_tokens_decoder"].is_null();
  const bool lists_extra = config.contains("additional_special_tokens") || config.contains("extra_special_tokens");
  if (spm && !lists_extra) {
    // The conversion of tokenizer.model makes control and user-defined pieces added tokens.
    for (size_t id = 0; id < spm->pieces.size(); ++id) {
      SpmPieceType type = spm->pieces[id].type;
      if (type == SpmPieceType::kControl || type == SpmPieceType::kUserDefined)
        added.put({.content = spm->pieces[id].piece, .id = static_cast<int32_t>(id),
                   .special = type == SpmPieceType::kControl},
                  model_path);
    }
  }
  if (has_json && (cls == TokenizerClass::kGeneric || !has_decoder_list)) {
    // tokenizers numbers new tokens (not model pieces) in file order from the
    // vocabulary's size, whatever ids the file states: refuse a file whose
    // stated ids would be silently changed.
    int32_t next_new = static_cast<int32_t>(p.pieces.size());
    for (size_t i = 0; i < json_added.size(); ++i) {
      const std::string where = cat(json_path, ": added_tokens[", i, "]");
      if (!added.is_model_piece(json_added[i].content)) {
        if (json_added[i].id != next_new)
          fail(where, ": token \"", json_added[i].content, "\" states id ", json_added[i].id,
               " but tokenizers gives it ", next_new, " (new tokens are numbered in file order)");
        ++next_new;
      }
      added.put(json_added[i], where);
    }
  }
  if (has_decoder_list) {
    const nlohmann::json& list = config["added_tokens_decoder"];
    if (!list.is_object()) fail(config_path, " key added_tokens_decoder: expected an object {\"id\": {...}}");
    for (const auto& [key, entry] : list.items()) {
      const std::string where = "added_tokens_decoder.\"" + key + "\"";
      int64_t id = -1;
      try {
        size_t used = 0;
        id = std::stoll(key, &used);
        if (used != key.size()) id = -1;
      } catch (const std::exception&) {
      }
      if (id < 0) fail(config_path, " key ", where, ": the key must be a token id");
      auto content = token_text(entry, config_path, where);
      if (!content) fail(config_path, " key ", where, ": missing content");
      tokenization::AddedToken token{.content = *content, .id = static_cast<int32_t>(id)};
      token.special = flag(entry, config_path, where, "special", false);
      token.normalized = flag(entry, config_path, where, "normalized", !token.special);
      token.lstrip = flag(entry, config_path, where, "lstrip", false);
      token.rstrip = flag(entry, config_path, where, "rstrip", false);
      token.single_word = flag(entry, config_path, where, "single_word", false);
      added.put(token, config_path + " key " + where);
    }
  }
  // Named special tokens: config first, then special_tokens_map.json, then
  // LlamaTokenizer's defaults. transformers reads special_tokens_map.json
  // only when the config has no added_tokens_decoder.
  if (has_decoder_list) token_map = nlohmann::json::object();
  const bool llama = cls == TokenizerClass::kLlama;
  auto named = [&](const char* key, const char* fallback) -> int32_t {
    std::optional<std::string> content;
    std::string from = config_path;
    if (config.contains(key)) {
      content = token_text(config[key], config_path, key);
    } else if (token_map.contains(key)) {
      content = token_text(token_map[key], map_path, key);
      from = map_path;
    } else if (fallback) {
      content = fallback;
    }
    if (!content) return -1;
    int32_t id = added.id_of(*content);
    if (id < 0) fail(from, " key ", key, ": token \"", *content, "\" is not in the vocabulary of ", source);
    if (!added.contains(*content)) added.put({.content = *content, .id = id, .special = true}, from + " key " + key);
    return id;
  };
  const int32_t bos = named("bos_token", llama ? "<s>" : nullptr);
  const int32_t eos = named("eos_token", llama ? "</s>" : nullptr);
  const int32_t unk = named("unk_token", llama ? "<unk>" : nullptr);
  const int32_t pad = named("pad_token", nullptr);
  for (const char* key : {"sep_token", "cls_token", "mask_token"}) named(key, nullptr);
  for (const char* key : {"additional_special_tokens", "extra_special_tokens"}) {
    const nlohmann::json& from = config.contains(key) ? config : token_map;
    const std::string& from_path = config.contains(key) ? config_path : map_path;
    auto it = from.find(key);
    if (it == from.end() || it->is_null()) continue;
    std::vector<nlohmann::json> entries;
    if (it->is_array()) entries.assign(it->begin(), it->end());
    else if (it->is_object()) for (const auto& [k, v] : it->items()) entries.push_back(v);
    else fail(from_path, " key ", key, ": expected a list of tokens");
    for (const auto& entry : entries) {
      auto content = token_text(entry, from_path, key);
      if (!content || added.contains(*content)) continue;
      int32_t id = added.id_of(*content);
      if (id < 0) fail(from_path, " key ", key, ": token \"", *content, "\" is not in the vocabulary of ", source);
      tokenization::AddedToken token{.content = *content, .id = id, .special = true};
      token.normalized = flag(entry, from_path, key, "normalized", false);
      token.lstrip = flag(entry, from_path, key, "lstrip", false);
      token.rstrip = flag(entry, from_path, key, "rstrip", false);
      token.single_word = flag(entry, from_path, key, "single_word", false);
      added.put(token, from_path + " key " + key);
    }
  }
  p.added = added.finish(source);
  if (spm) {  // no tokenizer.json post-processor: BOS/EOS as the config says
    if (get_bool(config, config_path, "add_bos_token", false) && bos >= 0) p.prefix_ids = {bos};
    if (get_bool(config, config_path, "add_eos_token", false) && eos >= 0) p.suffix_ids = {eos};
  }

  Tokenizer tok(std::move(p), config, source);
  tok.bos_id_ = bos;
  tok.eos_id_ = eos;
  tok.pad_id_ = pad;
  tok.unk_id_ = unk;
  tok.split_special_tokens_ = get_bool(config, config_path, "split_special_tokens", false);
  tok.clean_up_spaces_ = get_bool(config, config_path, "clean_up_tokenization_spaces", false);

  // Newer transformers save the template next to the config; it wins there.
  const std::string jinja_path = (fs::path(dir) / "chat_template.jinja").string();
  if (fs::exists(jinja_path, ec)) {
    tok.chat_template_ = read_file(jinja_path);
  } else if (auto it = config.find("chat_template"); it != config.end() && !it->is_null()) {
    if (it->is_string()) {
      tok.chat_template_ = it->get<std::string>();
    } else if (it->is_array()) {  // [{"name": ..., "template": ...}]: the default one
      for (const auto& entry : *it)
        if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template"))
          tok.chat_template_ = entry["template"].get<std::string>();
    } else {
      fail(config_path, " key chat_template: expected a string");
    }
  }
  return tok;
}

}  // namespace st
