#include "tokenizer/normalized_text.h"

#include "common/error.h"

namespace st::tokenization {

NormalizedText NormalizedText::identity(std::string_view raw, uint32_t offset) {
  NormalizedText out;
  out.text.assign(raw);
  out.origin.resize(raw.size());
  for (uint32_t k = 0; k < raw.size(); ++k) out.origin[k] = {offset + k, offset + k + 1};
  return out;
}

NormalizedText NormalizedText::slice(size_t begin, size_t end) const {
  NormalizedText out;
  out.text = text.substr(begin, end - begin);
  out.origin.assign(origin.begin() + begin, origin.begin() + end);
  return out;
}

Span NormalizedText::source(size_t begin, size_t end) const {
  Span span = origin[begin];
  for (size_t k = begin + 1; k < end; ++k) {
    span.begin = std::min(span.begin, origin[k].begin);
    span.end = std::max(span.end, origin[k].end);
  }
  return span;
}

namespace {

// Prepends `prefix`, aligned with the first character (tokenizers aligns
// prepended text with the character it precedes); nothing for empty text.
void prepend(NormalizedText& t, std::string_view prefix) {
  if (t.text.empty()) return;
  const Span first = t.source(0, utf8_length(t.text, 0));
  t.text.insert(0, prefix);
  t.origin.insert(t.origin.begin(), prefix.size(), first);
}

// Replaces every non-overlapping occurrence of `pattern`, left to right; the
// replacement comes from the bytes it replaces.
void replace(NormalizedText& t, std::string_view pattern, std::string_view content) {
  if (pattern.empty()) return;
  NormalizedText out;
  out.text.reserve(t.text.size());
  out.origin.reserve(t.text.size());
  size_t i = 0;
  while (i < t.text.size()) {
    size_t at = t.text.find(pattern, i);
    if (at == std::string::npos) break;
    out.text.append(t.text, i, at - i);
    out.origin.insert(out.origin.end(), t.origin.begin() + i, t.origin.begin() + at);
    const Span from = t.source(at, at + pattern.size());
    out.text.append(content);
    out.origin.insert(out.origin.end(), content.size(), from);
    i = at + pattern.size();
  }
  out.text.append(t.text, i);
  out.origin.insert(out.origin.end(), t.origin.begin() + i, t.origin.end());
  t = std::move(out);
}

// NFC/NFKC chunk by chunk; a chunk's output comes from the whole chunk.
void unicode_normalize(NormalizedText& t, NormalForm form) {
  NormalizedText out;
  normalize_chunks(t.text, form, [&](size_t begin, size_t end, const std::string& normalized) {
    if (normalized == std::string_view(t.text).substr(begin, end - begin)) {
      out.text.append(t.text, begin, end - begin);
      out.origin.insert(out.origin.end(), t.origin.begin() + begin, t.origin.begin() + end);
      return;
    }
    const Span from = t.source(begin, end);
    out.text += normalized;
    out.origin.insert(out.origin.end(), normalized.size(), from);
  });
  t = std::move(out);
}

}  // namespace

void normalize(const std::vector<NormalizerStep>& steps, NormalizedText& text) {
  for (const NormalizerStep& step : steps) {
    switch (step.kind) {
      case NormalizerStep::Kind::kPrepend: prepend(text, step.content); break;
      case NormalizerStep::Kind::kReplace: replace(text, step.pattern, step.content); break;
      case NormalizerStep::Kind::kNFC: unicode_normalize(text, NormalForm::kNFC); break;
      case NormalizerStep::Kind::kNFKC: unicode_normalize(text, NormalForm::kNFKC); break;
    }
  }
}

std::string normalize_string(const std::vector<NormalizerStep>& steps, std::string_view text) {
  NormalizedText t = NormalizedText::identity(text, 0);
  normalize(steps, t);
  return t.text;
}

std::vector<NormalizedText> pre_tokenize(const std::optional<Metaspace>& metaspace, NormalizedText piece) {
  std::vector<NormalizedText> words;
  if (!metaspace) {
    if (!piece.text.empty()) words.push_back(std::move(piece));
    return words;
  }
  const Metaspace& m = *metaspace;
  const bool starts_input = !piece.origin.empty() && piece.origin[0].begin == 0;
  replace(piece, " ", m.replacement);
  const bool prepend_here = m.prepend == Metaspace::Prepend::kAlways ||
                            (m.prepend == Metaspace::Prepend::kFirst && starts_input);
  if (prepend_here && !piece.text.starts_with(m.replacement)) prepend(piece, m.replacement);
  if (piece.text.empty()) return words;
  if (!m.split) {
    words.push_back(std::move(piece));
    return words;
  }
  // Split before each replacement, which starts the next word (MergedWithNext).
  size_t begin = 0;
  for (size_t at = piece.text.find(m.replacement, 1); at != std::string::npos;
       at = piece.text.find(m.replacement, at + m.replacement.size())) {
    if (at > begin) words.push_back(piece.slice(begin, at));
    begin = at;
  }
  words.push_back(piece.slice(begin, piece.text.size()));
  return words;
}

}  // namespace st::tokenization
