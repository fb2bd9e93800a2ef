// st::Tokenizer: transformers' LlamaTokenizer pipeline, re-implemented.
//
// What transformers 5.x builds from tokenizer.model + tokenizer_config.json
// (LlamaTokenizer.__init__, TokenizersBackend._convert_from_sentencepiece,
// generate_merges), stage by stage, and what we do for each:
//  1. Added tokens are cut out of the raw text first, leftmost-longest
//     (Aho-Corasick), non-normalized ones before normalized ones. Unlike
//     sentencepiece this also matches "<s>", "</s>", "<unk>", "<pad>" and the
//     reserved tokens typed in the text.
//  2. No normaliser at all: the normalizer_spec of tokenizer.model (NFKC,
//     whitespace collapsing, ...) is ignored.
//  3. Metaspace: each plain stretch gets ' ' -> '▁' and a '▁' prepended unless
//     it already starts with '▁' (sentencepiece always prepends, so " a" is
//     "▁▁a" there but "▁a" here). legacy=false prepends only to the stretch
//     at offset 0; legacy=true to every stretch; add_prefix_space=false never.
//  4. BPE with merges derived from the vocabulary: every split (l, r) of a
//     piece with both halves in the vocab is a merge, ranked by the merged
//     piece's id, then by the length of l. Merging is the tokenizers
//     algorithm (lowest rank first, then leftmost), not sentencepiece's
//     score order, which differs for whitespace runs ("\n\n\n\n" is
//     "\n\n"+"\n\n" here, "\n\n\n"+"\n" in sentencepiece).
//     A character missing from the vocab becomes its UTF-8 byte pieces
//     <0xHH>; if one is missing too, the character is dropped (HF builds the
//     BPE with no unk token).
//  5. BOS/EOS by add_bos_token/add_eos_token (both false when absent).
//  6. Decode: pieces, '▁' -> ' ', runs of byte pieces joined as UTF-8 (one
//     U+FFFD per byte if the run is not valid UTF-8), concatenated, and one
//     leading space stripped when add_prefix_space.
// Which pieces are added tokens follows TokenizersBackend too: the config's
// added_tokens_decoder and named special tokens always; the model's control
// and user-defined pieces only when the config has no
// additional_special_tokens / extra_special_tokens key.
#include "model/tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <queue>

#include "common/atomic_file.h"
#include "common/error.h"

namespace st {
namespace {

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581

// --- protobuf reading --------------------------------------------------------

struct ProtoReader {
  std::string_view buf;
  size_t pos = 0;
  const std::string& file;

  [[noreturn]] void corrupt() const {
    fail(file, ": corrupt SentencePiece model (bad protobuf at byte ", pos, ")");
  }
  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= buf.size()) corrupt();
      uint8_t byte = static_cast<uint8_t>(buf[pos++]);
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return value;
    }
    corrupt();
  }
  std::string_view bytes() {
    uint64_t n = varint();
    if (n > buf.size() - pos) corrupt();
    std::string_view out = buf.substr(pos, n);
    pos += n;
    return out;
  }
  uint32_t fixed32() {
    if (buf.size() - pos < 4) corrupt();
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(buf[pos + i])) << (8 * i);
    pos += 4;
    return v;
  }
  void skip(int wire) {
    switch (wire) {
      case 0: varint(); return;
      case 1: if (buf.size() - pos < 8) corrupt(); pos += 8; return;
      case 2: bytes(); return;
      case 5: fixed32(); return;
      default: corrupt();
    }
  }
};

// --- UTF-8 -------------------------------------------------------------------

// Length of the valid UTF-8 sequence at text[i], or 0 if it is not valid.
size_t utf8_length(std::string_view text, size_t i) {
  auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  uint8_t b0 = byte(i);
  size_t n;
  uint32_t cp;
  if (b0 < 0x80) return 1;
  if (b0 >= 0xC2 && b0 <= 0xDF) { n = 2; cp = b0 & 0x1F; }
  else if (b0 >= 0xE0 && b0 <= 0xEF) { n = 3; cp = b0 & 0x0F; }
  else if (b0 >= 0xF0 && b0 <= 0xF4) { n = 4; cp = b0 & 0x07; }
  else return 0;
  if (i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}

bool valid_utf8(std::string_view text, size_t* bad_at = nullptr) {
  for (size_t i = 0; i < text.size();) {
    size_t n = utf8_length(text, i);
    if (n == 0) {
      if (bad_at) *bad_at = i;
      return false;
    }
    i += n;
  }
  return true;
}

// The byte value of a "<0xHH>" token as tokenizers' ByteFallback decoder
// reads it (Rust u8::from_str_radix, which also takes a leading '+').
std::optional<uint8_t> byte_token_value(std::string_view token) {
  if (token.size() != 6 || !token.starts_with("<0x") || token.back() != '>') return std::nullopt;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  int hi = hex(token[3]), lo = hex(token[4]);
  if (token[3] == '+' && lo >= 0) return static_cast<uint8_t>(lo);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<uint8_t>(hi * 16 + lo);
}

// --- config reading ----------------------------------------------------------

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

bool get_bool(const nlohmann::json& config, const std::string& path, const char* key,
              bool fallback) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail(path, " key ", key, ": expected true or false, got ", it->dump());
  return it->get<bool>();
}

// A token given as "text" or as an AddedToken object {"content": "text", ...}.
std::optional<std::string> token_text(const nlohmann::json& value, const std::string& path,
                                      const std::string& key) {
  if (value.is_null()) return std::nullopt;
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string())
    return value["content"].get<std::string>();
  fail(path, " key ", key, ": expected a token string or {\"content\": ...}, got ", value.dump());
}

void reject_unsupported_flags(const nlohmann::json& entry, const std::string& path,
                              const std::string& key) {
  if (!entry.is_object()) return;
  for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
    auto it = entry.find(flag);
    if (it != entry.end() && !it->is_null() && (!it->is_boolean() || it->get<bool>()))
      fail(path, " key ", key, ": ", flag, "=", it->dump(),
           " is not supported (only false, as in Salamandra's tokenizer)");
  }
}

}  // namespace

SpmModel parse_spm_model(std::string_view bytes, const std::string& file) {
  sentencepiece::SentencePieceProcessor processor;
  auto status = processor.LoadFromSerializedProto(bytes);
  if (!status.ok())
    fail(file, ": not a valid SentencePiece model (", status.ToString(), ")");
  SpmModel model;
  ProtoReader top{bytes, 0, file};
  while (top.pos < bytes.size()) {
    uint64_t tag = top.varint();
    int field = static_cast<int>(tag >> 3), wire = static_cast<int>(tag & 7);
    if (field == 1 && wire == 2) {  // repeated SentencePiece pieces
      ProtoReader sub{top.bytes(), 0, file};
      SpmPiece piece;
      while (sub.pos < sub.buf.size()) {
        uint64_t t = sub.varint();
        int f = static_cast<int>(t >> 3), w = static_cast<int>(t & 7);
        if (f == 1 && w == 2) {
          piece.piece = std::string(sub.bytes());
        } else if (f == 2 && w == 5) {
          uint32_t raw = sub.fixed32();
          std::memcpy(&piece.score, &raw, 4);
        } else if (f == 3 && w == 0) {
          piece.type = static_cast<SpmPieceType>(sub.varint());
        } else {
          sub.skip(w);
        }
      }
      model.pieces.push_back(std::move(piece));
    } else if (field == 2 && wire == 2) {  // TrainerSpec
      ProtoReader sub{top.bytes(), 0, file};
      while (sub.pos < sub.buf.size()) {
        uint64_t t = sub.varint();
        int f = static_cast<int>(t >> 3), w = static_cast<int>(t & 7);
        if (f == 3 && w == 0) model.model_type = static_cast<int>(sub.varint());
        else sub.skip(w);
      }
    } else {
      top.skip(wire);
    }
  }
  if (static_cast<int>(model.pieces.size()) != processor.GetPieceSize())
    fail(file, ": corrupt SentencePiece model (", model.pieces.size(), " pieces read, ",
         processor.GetPieceSize(), " expected)");
  return model;
}

Tokenizer Tokenizer::load(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string model_path = (fs::path(dir) / "tokenizer.model").string();
  const std::string config_path = (fs::path(dir) / "tokenizer_config.json").string();
  const std::string map_path = (fs::path(dir) / "special_tokens_map.json").string();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir, ": not a directory (expected a tokenizer/model dir)");
  if (!fs::exists(model_path, ec))
    fail(model_path, ": missing; the tokenizer needs the SentencePiece model tokenizer.model");
  if (!fs::exists(config_path, ec))
    fail(config_path, ": missing; the tokenizer needs tokenizer_config.json");

  Tokenizer tok;
  SpmModel spm = parse_spm_model(read_file(model_path), model_path);
  if (spm.model_type != 2)
    fail(model_path, ": model_type ", spm.model_type,
         " is not BPE (2); transformers' LlamaTokenizer only reproduces BPE models");
  tok.config_ = parse_json_file(config_path);
  const nlohmann::json& config = tok.config_;
  nlohmann::json token_map = nlohmann::json::object();
  if (fs::exists(map_path, ec)) token_map = parse_json_file(map_path);

  if (auto it = config.find("tokenizer_class"); it != config.end() && !it->is_null()) {
    if (!it->is_string() || (*it != "LlamaTokenizer" && *it != "LlamaTokenizerFast"))
      fail(config_path, " key tokenizer_class: ", it->dump(),
           " is not supported; only LlamaTokenizer (Salamandra's) is reproduced");
  }

  // Vocabulary and the merges HF derives from it (generate_merges).
  tok.pieces_.reserve(spm.pieces.size());
  for (size_t id = 0; id < spm.pieces.size(); ++id) {
    tok.pieces_.push_back(spm.pieces[id].piece);
    tok.vocab_[spm.pieces[id].piece] = static_cast<int32_t>(id);
  }
  int32_t rank = 0;
  tok.merges_.reserve(tok.pieces_.size() * 4);
  for (size_t id = 0; id < tok.pieces_.size(); ++id) {
    std::string_view piece = tok.pieces_[id];
    for (size_t cut = 1; cut < piece.size(); ++cut) {
      if ((static_cast<uint8_t>(piece[cut]) & 0xC0) == 0x80) continue;  // inside a char
      auto left = tok.vocab_.find(std::string(piece.substr(0, cut)));
      if (left == tok.vocab_.end()) continue;
      auto right = tok.vocab_.find(std::string(piece.substr(cut)));
      if (right == tok.vocab_.end()) continue;
      uint64_t key = (static_cast<uint64_t>(left->second) << 32) | static_cast<uint32_t>(right->second);
      tok.merges_.insert(key, Merge{rank++, static_cast<int32_t>(id)});
    }
  }
  for (int c = 0; c < 128; ++c) {
    auto it = tok.vocab_.find(std::string(1, static_cast<char>(c)));
    tok.ascii_ids_[c] = it == tok.vocab_.end() ? -1 : it->second;
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    tok.byte_ids_[b] = tok.token_to_id(name);
  }

  // Pre-tokenisation and post-processing switches.
  const bool legacy = get_bool(config, config_path, "legacy", false);
  const bool prefix_space = get_bool(config, config_path, "add_prefix_space", true);
  tok.prepend_ = !prefix_space ? Prepend::kNever : legacy ? Prepend::kAlways : Prepend::kFirst;
  tok.strip_decoded_space_ = prefix_space;
  tok.add_bos_ = get_bool(config, config_path, "add_bos_token", false);
  tok.add_eos_ = get_bool(config, config_path, "add_eos_token", false);
  tok.split_special_tokens_ = get_bool(config, config_path, "split_special_tokens", false);

  // Added tokens, keyed by content; later steps override earlier flags.
  std::map<std::string, AddedToken> added;
  auto require_piece = [&](const std::string& content, const std::string& where) {
    int32_t id = tok.token_to_id(content);
    if (id < 0)
      fail(config_path, " key ", where, ": token \"", content,
           "\" is not a piece of tokenizer.model (adding new tokens is not supported)");
    return id;
  };
  const bool lists_extra = config.contains("additional_special_tokens") ||
                           config.contains("extra_special_tokens");
  if (!lists_extra) {
    for (size_t id = 0; id < spm.pieces.size(); ++id) {
      SpmPieceType type = spm.pieces[id].type;
      if (type == SpmPieceType::kControl || type == SpmPieceType::kUserDefined)
        added[spm.pieces[id].piece] = {spm.pieces[id].piece, static_cast<int32_t>(id),
                                       type == SpmPieceType::kControl, false};
    }
  }
  if (auto it = config.find("added_tokens_decoder"); it != config.end() && !it->is_null()) {
    if (!it->is_object())
      fail(config_path, " key added_tokens_decoder: expected an object {\"id\": {...}}");
    for (const auto& [key, entry] : it->items()) {
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
      reject_unsupported_flags(entry, config_path, where);
      if (id >= tok.vocab_size())
        fail(config_path, " key ", where, ": id ", id, " is beyond tokenizer.model's ",
             tok.vocab_size(), " pieces (adding new tokens is not supported)");
      if (tok.pieces_[id] != *content)
        fail(config_path, " key ", where, ": id ", id, " is \"", tok.pieces_[id],
             "\" in tokenizer.model, not \"", *content, "\"");
      bool special = entry.is_object() && entry.value("special", false);
      bool normalized = entry.is_object() && entry.contains("normalized") &&
                                entry["normalized"].is_boolean()
                            ? entry["normalized"].get<bool>()
                            : !special;
      added[*content] = {*content, static_cast<int32_t>(id), special, normalized};
    }
  }
  // Named special tokens: config first, then special_tokens_map.json, then
  // LlamaTokenizer's defaults.
  auto named = [&](const char* key, const char* fallback) -> int32_t {
    std::optional<std::string> content;
    std::string source = config_path;
    if (config.contains(key)) {
      content = token_text(config[key], config_path, key);
    } else if (token_map.contains(key)) {
      content = token_text(token_map[key], map_path, key);
      source = map_path;
    } else if (fallback) {
      content = fallback;
    }
    if (!content) return -1;
    int32_t id = tok.token_to_id(*content);
    if (id < 0)
      fail(source, " key ", key, ": token \"", *content, "\" is not a piece of tokenizer.model");
    if (!added.contains(*content)) added[*content] = {*content, id, true, false};
    return id;
  };
  tok.bos_id_ = named("bos_token", "<s>");
  tok.eos_id_ = named("eos_token", "</s>");
  tok.unk_id_ = named("unk_token", "<unk>");
  tok.pad_id_ = named("pad_token", nullptr);
  for (const char* key : {"sep_token", "cls_token", "mask_token"}) named(key, nullptr);
  for (const char* key : {"additional_special_tokens", "extra_special_tokens"}) {
    auto it = config.find(key);
    if (it == config.end() || it->is_null()) continue;
    std::vector<nlohmann::json> entries;
    if (it->is_array()) entries.assign(it->begin(), it->end());
    else if (it->is_object()) for (const auto& [k, v] : it->items()) entries.push_back(v);
    else fail(config_path, " key ", key, ": expected a list of tokens");
    for (const auto& entry : entries) {
      auto content = token_text(entry, config_path, key);
      if (!content) continue;
      reject_unsupported_flags(entry, config_path, key);
      int32_t id = require_piece(*content, key);
      bool normalized = entry.is_object() && entry.value("normalized", false);
      if (!added.contains(*content)) added[*content] = {*content, id, true, normalized};
    }
  }
  tok.special_.assign(tok.pieces_.size(), 0);
  for (auto& [content, token] : added) {
    if (content.empty()) continue;  // an empty token can never match
    if (token.special) tok.special_[token.id] = 1;
    tok.added_.push_back(token);
  }
  for (size_t i = 0; i < tok.added_.size(); ++i)
    tok.added_by_byte_[static_cast<uint8_t>(tok.added_[i].content[0])].push_back(static_cast<int32_t>(i));
  for (auto& list : tok.added_by_byte_)
    std::stable_sort(list.begin(), list.end(), [&](int32_t a, int32_t b) {
      return tok.added_[a].content.size() > tok.added_[b].content.size();
    });

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

int32_t Tokenizer::token_to_id(std::string_view token) const {
  auto it = vocab_.find(std::string(token));
  return it == vocab_.end() ? -1 : it->second;
}

const std::string& Tokenizer::id_to_piece(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    fail("token id ", id, " is outside the vocabulary (0..", vocab_size() - 1, ")");
  return pieces_[id];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && special_[id];
}

// Splits the plain segments of `segments` further at added tokens of the
// given pass, leftmost-longest, like tokenizers' AddedVocabulary.
void Tokenizer::split_added(std::string_view text, bool normalized_pass,
                            std::vector<Segment>& segments) const {
  std::vector<Segment> out;
  for (const Segment& seg : segments) {
    if (seg.id >= 0) {
      out.push_back(seg);
      continue;
    }
    size_t plain_start = seg.begin;
    size_t i = seg.begin;
    while (i < seg.end) {
      const AddedToken* match = nullptr;
      for (int32_t index : added_by_byte_[static_cast<uint8_t>(text[i])]) {
        const AddedToken& t = added_[index];
        if (t.normalized != normalized_pass) continue;
        if (t.content.size() <= seg.end - i && text.compare(i, t.content.size(), t.content) == 0) {
          match = &t;
          break;  // longest first
        }
      }
      if (!match) {
        ++i;
        continue;
      }
      size_t stop = i + match->content.size();
      // split_special_tokens: the match is consumed but stays plain text.
      if (!(split_special_tokens_ && match->special)) {
        if (i > plain_start) out.push_back({plain_start, i, -1});
        out.push_back({i, stop, match->id});
        plain_start = stop;
      }
      i = stop;
    }
    if (seg.end > plain_start) out.push_back({plain_start, seg.end, -1});
  }
  segments.swap(out);
}

// tokenizers' BPE::merge_word + Word::merge_all on one pre-token.
void Tokenizer::MergeTable::reserve(size_t count) {
  size_t capacity = 16;
  int bits = 4;
  while (capacity < 2 * count) capacity <<= 1, ++bits;  // load factor <= 1/2
  keys_.assign(capacity, kEmpty);
  values_.assign(capacity, Merge{});
  shift_ = 64 - bits;
  size_ = 0;
}

void Tokenizer::MergeTable::insert(uint64_t key, Merge merge) {
  if (2 * (size_ + 1) > keys_.size()) {
    // Grow: re-insert everything into a table twice the size.
    std::vector<uint64_t> old_keys = std::move(keys_);
    std::vector<Merge> old_values = std::move(values_);
    reserve(std::max<size_t>(16, old_keys.size()));
    for (size_t i = 0; i < old_keys.size(); ++i)
      if (old_keys[i] != kEmpty) insert(old_keys[i], old_values[i]);
  }
  const size_t mask = keys_.size() - 1;
  for (size_t i = slot(key);; i = (i + 1) & mask) {
    if (keys_[i] == key) return;
    if (keys_[i] == kEmpty) {
      keys_[i] = key;
      values_[i] = merge;
      ++size_;
      return;
    }
  }
}

const Tokenizer::Merge* Tokenizer::MergeTable::find(uint64_t key) const {
  if (keys_.empty()) return nullptr;
  const size_t mask = keys_.size() - 1;
  for (size_t i = slot(key);; i = (i + 1) & mask) {
    if (keys_[i] == key) return &values_[i];
    if (keys_[i] == kEmpty) return nullptr;
  }
}

void Tokenizer::bpe(std::string_view word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    size_t len;
  };
  std::vector<Symbol> symbols;
  auto add = [&](int32_t id, size_t len) {
    int32_t n = static_cast<int32_t>(symbols.size());
    if (n > 0) symbols.back().next = n;
    symbols.push_back({id, n - 1, -1, len});
  };
  for (size_t i = 0; i < word.size();) {
    size_t n = utf8_length(word, i);
    ST_CHECK(n > 0, "invalid UTF-8 reached BPE");
    int32_t id = -1;
    if (n == 1 && static_cast<uint8_t>(word[i]) < 128) {
      id = ascii_ids_[static_cast<uint8_t>(word[i])];
    } else if (auto it = vocab_.find(std::string(word.substr(i, n))); it != vocab_.end()) {
      id = it->second;
    }
    if (id >= 0) {
      add(id, n);
    } else {
      bool all = true;
      for (size_t k = 0; k < n; ++k) all = all && byte_ids_[static_cast<uint8_t>(word[i + k])] >= 0;
      if (all)
        for (size_t k = 0; k < n; ++k) add(byte_ids_[static_cast<uint8_t>(word[i + k])], 1);
      // else: HF's BPE has no unk token, the character is dropped.
    }
    i += n;
  }
  struct Candidate {
    size_t pos;
    int32_t rank, new_id;
    // priority_queue pops the largest: make that the lowest rank, then pos.
    bool operator<(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  auto lookup = [&](int32_t a, int32_t b) -> const Merge* {
    return merges_.find((static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b));
  };
  std::priority_queue<Candidate> queue;
  for (size_t i = 0; i + 1 < symbols.size(); ++i)
    if (const Merge* m = lookup(symbols[i].id, symbols[i + 1].id)) queue.push({i, m->rank, m->new_id});
  while (!queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    Symbol& cur = symbols[top.pos];
    if (cur.len == 0 || cur.next == -1) continue;
    size_t next_pos = static_cast<size_t>(cur.next);
    Symbol right = symbols[next_pos];
    // An expired entry: the pair here no longer makes this merge's piece.
    const Merge* now = lookup(cur.id, right.id);
    if (!now || now->new_id != top.new_id) continue;
    cur.id = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    symbols[next_pos].len = 0;
    if (right.next >= 0) symbols[right.next].prev = static_cast<int32_t>(top.pos);
    if (cur.prev >= 0)
      if (const Merge* m = lookup(symbols[cur.prev].id, cur.id))
        queue.push({static_cast<size_t>(cur.prev), m->rank, m->new_id});
    if (cur.next >= 0)
      if (const Merge* m = lookup(cur.id, symbols[cur.next].id))
        queue.push({top.pos, m->rank, m->new_id});
  }
  for (const Symbol& s : symbols)
    if (s.len != 0) out.push_back(s.id);
}

std::vector<int64_t> Tokenizer::end_of_turn_ids() const {
  std::vector<int64_t> ids;
  if (eos_id_ >= 0) ids.push_back(eos_id_);
  // Instruct models end a turn with <|im_end|> rather than EOS.
  if (int32_t im_end = token_to_id("<|im_end|>"); im_end >= 0 && im_end != eos_id_) ids.push_back(im_end);
  return ids;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  return encode_impl(text, add_special_tokens, /*document_start=*/true);
}

std::vector<int32_t> Tokenizer::encode_continuation(std::string_view text) const {
  return encode_impl(text, /*add_special_tokens=*/false, /*document_start=*/false);
}

std::vector<int32_t> Tokenizer::encode_impl(std::string_view text, bool add_special_tokens,
                                            bool document_start) const {
  size_t bad_at = 0;
  if (!valid_utf8(text, &bad_at))
    fail("cannot tokenize text: invalid UTF-8 at byte ", bad_at, " of ", text.size());
  std::vector<int32_t> ids;
  if (add_special_tokens && add_bos_ && bos_id_ >= 0) ids.push_back(bos_id_);
  std::vector<Segment> segments;
  if (!text.empty()) segments.push_back({0, text.size(), -1});
  split_added(text, false, segments);
  split_added(text, true, segments);
  std::string word;
  for (const Segment& seg : segments) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    word.clear();
    for (size_t i = seg.begin; i < seg.end; ++i) {
      if (text[i] == ' ') word += kMetaspace;
      else word += text[i];
    }
    bool prepend = prepend_ == Prepend::kAlways || (prepend_ == Prepend::kFirst && document_start && seg.begin == 0);
    if (prepend && !word.starts_with(kMetaspace)) word.insert(0, kMetaspace);
    bpe(word, ids);
  }
  if (add_special_tokens && add_eos_ && eos_id_ >= 0) ids.push_back(eos_id_);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string out;
  std::string token;
  std::string pending;  // a run of byte pieces
  size_t pending_count = 0;
  auto flush = [&] {
    if (pending_count == 0) return;
    if (valid_utf8(pending)) {
      out += pending;
    } else {
      for (size_t k = 0; k < pending_count; ++k) out += "\xEF\xBF\xBD";  // U+FFFD
    }
    pending.clear();
    pending_count = 0;
  };
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size())
      fail("cannot decode token id ", id, ": outside the vocabulary (0..", vocab_size() - 1, ")");
    if (skip_special_tokens && special_[id]) continue;
    // Replace('▁', ' ') runs before ByteFallback looks at the token.
    const std::string& piece = pieces_[id];
    token.clear();
    for (size_t i = 0; i < piece.size();) {
      if (piece.compare(i, kMetaspace.size(), kMetaspace) == 0) {
        token += ' ';
        i += kMetaspace.size();
      } else {
        token += piece[i++];
      }
    }
    if (auto byte = byte_token_value(token)) {
      pending += static_cast<char>(*byte);
      ++pending_count;
      continue;
    }
    flush();
    out += token;
  }
  flush();
  if (strip_decoded_space_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

}  // namespace st
