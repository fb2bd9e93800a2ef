#include "tokenizer/added_vocabulary.h"

#include <algorithm>

#include "tokenizer/normalized_text.h"
#include "tokenizer/unicode.h"

namespace st::tokenization {

AddedVocabulary::AddedVocabulary(const std::vector<AddedToken>& tokens,
                                 const std::vector<NormalizerStep>& normalizer)
    : tokens_(tokens) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& token = tokens_[i];
    if (token.content.empty()) continue;  // an empty token never matches
    std::string text = token.normalized ? normalize_string(normalizer, token.content) : token.content;
    if (text.empty()) continue;
    by_byte_[token.normalized][static_cast<uint8_t>(text[0])].push_back({std::move(text), i});
    pass_empty_[token.normalized] = false;
  }
  for (auto& pass : by_byte_)
    for (auto& list : pass)
      std::stable_sort(list.begin(), list.end(),
                       [](const Pattern& a, const Pattern& b) { return a.text.size() > b.text.size(); });
}

namespace {

bool word_char_before(std::string_view text, size_t at) {
  if (at == 0) return false;
  size_t start = previous_char_start(text, at);
  return is_word_char(code_point(text, start, at - start));
}

bool word_char_at(std::string_view text, size_t at) {
  if (at >= text.size()) return false;
  return is_word_char(code_point(text, at, utf8_length(text, at)));
}

// Start of the whitespace run that ends at `at`.
size_t whitespace_start(std::string_view text, size_t at, size_t floor) {
  while (at > floor) {
    size_t start = previous_char_start(text, at);
    if (!is_white_space(code_point(text, start, at - start))) break;
    at = start;
  }
  return at;
}

// End of the whitespace run that starts at `at`.
size_t whitespace_end(std::string_view text, size_t at) {
  while (at < text.size()) {
    size_t n = utf8_length(text, at);
    if (!is_white_space(code_point(text, at, n))) break;
    at += n;
  }
  return at;
}

}  // namespace

std::vector<AddedVocabulary::Split> AddedVocabulary::split(std::string_view text, bool normalized_pass,
                                                           bool split_special) const {
  std::vector<Split> out;
  if (pass_empty_[normalized_pass]) {
    if (!text.empty()) out.push_back({0, text.size(), -1});
    return out;
  }
  const auto& table = by_byte_[normalized_pass];
  size_t plain_start = 0;  // where the current plain stretch begins
  size_t i = 0;
  while (i < text.size()) {
    const Pattern* match = nullptr;
    for (const Pattern& p : table[static_cast<uint8_t>(text[i])])
      if (p.text.size() <= text.size() - i && text.compare(i, p.text.size(), p.text) == 0) {
        match = &p;
        break;  // longest first
      }
    if (!match) {
      ++i;
      continue;
    }
    size_t start = i, stop = i + match->text.size();
    // Scanning resumes after the match as found, kept or not, and even when
    // rstrip widens it: a next token may then overlap the swallowed
    // whitespace, and tokenizers keeps both.
    i = stop;
    const AddedToken& token = tokens_[match->token];
    if (token.single_word && (word_char_before(text, start) || word_char_at(text, stop))) continue;
    // split_special_tokens: the match is consumed but stays plain text.
    if (split_special && token.special) continue;
    if (token.lstrip) start = whitespace_start(text, start, plain_start);
    if (token.rstrip) stop = whitespace_end(text, stop);
    if (start > plain_start) out.push_back({plain_start, start, -1});
    out.push_back({start, stop, token.id});
    plain_start = stop;
  }
  if (text.size() > plain_start) out.push_back({plain_start, text.size(), -1});
  return out;
}

}  // namespace st::tokenization
