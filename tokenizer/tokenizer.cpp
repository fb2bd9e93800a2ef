// Tokenizer: runs a tokenization::Pipeline the way `tokenizers` does.
//
// encode: added tokens (non-normalized) are cut out of the raw text; each
// plain stretch is normalized and cut again at normalized added tokens; each
// remaining piece is pre-tokenized into words and each word goes through
// BPE; the post-processor's ids go around the result. Every byte keeps the
// span of the input it came from (normalized_text.h), so each token reports
// the input bytes it covers.
// decode: ids to token strings (special ones skipped on request), the
// decoder steps over the list of strings, then transformers'
// clean_up_tokenization when the config asks for it.
#include "tokenizer/tokenizer.h"

#include <algorithm>

#include "common/error.h"
#include "tokenizer/normalized_text.h"

namespace st {

using tokenization::NormalizedText;
using tokenization::Span;

Tokenizer::Tokenizer(tokenization::Pipeline pipeline, nlohmann::json config, std::string source_file)
    : pipeline_(std::move(pipeline)),
      bpe_(pipeline_.pieces, pipeline_.merges, pipeline_.bpe, source_file),
      added_vocabulary_(pipeline_.added, pipeline_.normalizer),
      pieces_(std::move(pipeline_.pieces)),
      config_(std::move(config)),
      source_file_(std::move(source_file)) {
  // The Bpe and pieces_ hold the vocabulary and merges now.
  pipeline_.pieces = {};
  pipeline_.merges = {};
  for (const AddedToken& token : pipeline_.added) {
    ST_CHECK(token.id >= 0 && token.id <= static_cast<int32_t>(pieces_.size()), "added token ids have gaps");
    if (token.id == static_cast<int32_t>(pieces_.size())) pieces_.emplace_back();
    // tokenizers keeps a normalized token as its normalized text, and that
    // is what decoding shows ("and" under a Prepend("▁") normalizer decodes
    // as " and"), even where the id is a model piece.
    pieces_[token.id] =
        token.normalized ? tokenization::normalize_string(pipeline_.normalizer, token.content) : token.content;
    added_ids_[token.content] = token.id;
  }
  special_.assign(pieces_.size(), 0);
  for (const AddedToken& token : pipeline_.added)
    if (token.special) special_[token.id] = 1;
  for (const auto* ids : {&pipeline_.prefix_ids, &pipeline_.suffix_ids})
    for (int32_t id : *ids)
      if (id < 0 || id >= vocab_size())
        fail(source_file_, ": the post-processor adds token id ", id, ", outside the vocabulary (0..",
             vocab_size() - 1, ")");
}

bool Tokenizer::add_bos_token() const {
  return bos_id_ >= 0 && !pipeline_.prefix_ids.empty() && pipeline_.prefix_ids.front() == bos_id_;
}

bool Tokenizer::add_eos_token() const {
  return eos_id_ >= 0 && !pipeline_.suffix_ids.empty() && pipeline_.suffix_ids.back() == eos_id_;
}

int32_t Tokenizer::token_to_id(std::string_view token) const {
  if (auto it = added_ids_.find(std::string(token)); it != added_ids_.end()) return it->second;
  return bpe_.piece_id(token);
}

const std::string& Tokenizer::id_to_piece(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    fail("token id ", id, " is outside the vocabulary (0..", vocab_size() - 1, ")");
  return pieces_[id];
}

bool Tokenizer::is_special(int32_t id) const { return id >= 0 && id < vocab_size() && special_[id]; }

std::vector<int64_t> Tokenizer::end_of_turn_ids() const {
  std::vector<int64_t> ids;
  if (eos_id_ >= 0) ids.push_back(eos_id_);
  // Instruct models end a turn with <|im_end|> rather than EOS.
  if (int32_t im_end = token_to_id("<|im_end|>"); im_end >= 0 && im_end != eos_id_) ids.push_back(im_end);
  return ids;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  encode_into(text, add_special_tokens, ids, nullptr);
  return ids;
}

Encoding Tokenizer::encode_with_offsets(std::string_view text, bool add_special_tokens) const {
  Encoding out;
  encode_into(text, add_special_tokens, out.ids, &out.spans);
  return out;
}

void Tokenizer::encode_into(std::string_view text, bool add_special_tokens, std::vector<int32_t>& ids,
                            std::vector<Span>* spans) const {
  size_t bad_at = 0;
  if (!tokenization::valid_utf8(text, &bad_at))
    fail("cannot tokenize text: invalid UTF-8 at byte ", bad_at, " of ", text.size());
  auto emit = [&](int32_t id, Span span) {
    ids.push_back(id);
    if (spans) spans->push_back(span);
  };
  if (add_special_tokens)
    for (int32_t id : pipeline_.prefix_ids) emit(id, {0, 0});
  for (const auto& raw : added_vocabulary_.split(text, false, split_special_tokens_)) {
    if (raw.id >= 0) {
      emit(raw.id, {static_cast<uint32_t>(raw.begin), static_cast<uint32_t>(raw.end)});
      continue;
    }
    NormalizedText piece = NormalizedText::identity(text.substr(raw.begin, raw.end - raw.begin),
                                                    static_cast<uint32_t>(raw.begin));
    tokenization::normalize(pipeline_.normalizer, piece);
    const auto cuts = added_vocabulary_.split(piece.text, true, split_special_tokens_);
    for (const auto& cut : cuts) {
      if (cut.id >= 0) {
        emit(cut.id, piece.source(cut.begin, cut.end));
        continue;
      }
      // The usual case, no normalized added token in the piece: no copy of it.
      NormalizedText plain = cuts.size() == 1 ? std::move(piece) : piece.slice(cut.begin, cut.end);
      for (const NormalizedText& word : tokenization::pre_tokenize(pipeline_.pre_tokenizer, std::move(plain)))
        bpe_.tokenize(word.text, word.origin.data(), ids, spans);
    }
  }
  if (add_special_tokens) {
    const uint32_t end = static_cast<uint32_t>(text.size());
    for (int32_t id : pipeline_.suffix_ids) emit(id, {end, end});
  }
}

namespace {

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

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string out;
  size_t i = 0;
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, i)) {
    out.append(s, i, at - i).append(to);
    i = at + from.size();
  }
  if (i == 0) return;
  out.append(s, i);
  s = std::move(out);
}

using tokenization::DecoderStep;

void byte_fallback(std::vector<std::string>& tokens) {
  std::vector<std::string> out;
  std::string run;
  size_t run_count = 0;
  auto flush = [&] {
    if (run_count == 0) return;
    if (tokenization::valid_utf8(run)) out.push_back(run);
    else for (size_t k = 0; k < run_count; ++k) out.emplace_back("\xEF\xBF\xBD");  // U+FFFD per byte
    run.clear();
    run_count = 0;
  };
  for (std::string& token : tokens) {
    if (auto byte = byte_token_value(token)) {
      run += static_cast<char>(*byte);
      ++run_count;
      continue;
    }
    flush();
    out.push_back(std::move(token));
  }
  flush();
  tokens = std::move(out);
}

// Strip: up to `start` leading and `stop` trailing copies of one character, per token.
void strip(std::vector<std::string>& tokens, const DecoderStep& step) {
  const std::string& c = step.content;
  for (std::string& token : tokens) {
    size_t begin = 0, end = token.size();
    for (size_t k = 0; k < step.start && begin + c.size() <= end && token.compare(begin, c.size(), c) == 0; ++k)
      begin += c.size();
    for (size_t k = 0; k < step.stop && end >= begin + c.size() && token.compare(end - c.size(), c.size(), c) == 0; ++k)
      end -= c.size();
    token = token.substr(begin, end - begin);
  }
}

// Metaspace decoder: the replacement becomes ' ', except that the first
// token loses every replacement when a prefix was prepended (tokenizers does
// exactly this: all of them in token 0, not only a leading one).
void metaspace(std::vector<std::string>& tokens, const tokenization::Metaspace& m) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    const bool drop = i == 0 && m.prepend != tokenization::Metaspace::Prepend::kNever;
    replace_all(tokens[i], m.replacement, drop ? "" : " ");
  }
}

void clean_up_tokenization(std::string& text) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
      {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) replace_all(text, from, to);
}

}  // namespace

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size())
      fail("cannot decode token id ", id, ": outside the vocabulary (0..", vocab_size() - 1, ")");
    if (skip_special_tokens && special_[id]) continue;
    tokens.push_back(pieces_[id]);
  }
  for (const DecoderStep& step : pipeline_.decoder) {
    switch (step.kind) {
      case DecoderStep::Kind::kReplace:
        for (std::string& t : tokens) replace_all(t, step.pattern, step.content);
        break;
      case DecoderStep::Kind::kByteFallback: byte_fallback(tokens); break;
      case DecoderStep::Kind::kFuse: {
        std::string all;
        for (const std::string& t : tokens) all += t;
        tokens.assign(1, std::move(all));
        break;
      }
      case DecoderStep::Kind::kStrip: strip(tokens, step); break;
      case DecoderStep::Kind::kMetaspace: metaspace(tokens, step.metaspace); break;
    }
  }
  std::string text;
  for (const std::string& t : tokens) text += t;
  if (clean_up_spaces_) clean_up_tokenization(text);
  return text;
}

}  // namespace st
