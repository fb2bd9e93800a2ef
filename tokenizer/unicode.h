// UTF-8 and the few Unicode properties the tokenizer pipeline needs.
//
// tokenizers (Rust) classifies characters with Unicode tables: its added
// tokens' single_word test is the regex \w, lstrip/rstrip the regex \s, and
// its NFC/NFKC normalizers are Unicode's. We take those from ICU rather than
// approximating them with the C locale.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace st::tokenization {

/// Length of the valid UTF-8 sequence at text[i], or 0 if it is not valid.
size_t utf8_length(std::string_view text, size_t i);
/// True if text is valid UTF-8; else *bad_at (if given) is the first bad byte.
bool valid_utf8(std::string_view text, size_t* bad_at = nullptr);
/// The code point of the valid UTF-8 sequence of `length` bytes at text[i].
uint32_t code_point(std::string_view text, size_t i, size_t length);
/// Start of the character that ends at byte `end` (text[..end] valid UTF-8).
size_t previous_char_start(std::string_view text, size_t end);

/// Rust regex \w: Alphabetic, marks, decimal numbers, connector punctuation, join controls.
bool is_word_char(uint32_t cp);
/// Rust regex \s: the White_Space property.
bool is_white_space(uint32_t cp);

enum class NormalForm { kNFC, kNFKC };
/// `text` in the normal form, cut into chunks that normalize independently:
/// on_chunk(input_begin, input_end, normalized) for each, in order (so
/// callers can align the output with the input chunk by chunk).
template <typename OnChunk>
void normalize_chunks(std::string_view text, NormalForm form, OnChunk&& on_chunk);

namespace detail {
// Normalization boundary before the code point (ICU hasBoundaryBefore).
bool has_boundary_before(NormalForm form, uint32_t cp);
std::string normalize(NormalForm form, std::string_view text);
}  // namespace detail

template <typename OnChunk>
void normalize_chunks(std::string_view text, NormalForm form, OnChunk&& on_chunk) {
  size_t chunk = 0;
  for (size_t i = 0; i < text.size();) {
    size_t n = utf8_length(text, i);
    if (i > chunk && detail::has_boundary_before(form, code_point(text, i, n))) {
      on_chunk(chunk, i, detail::normalize(form, text.substr(chunk, i - chunk)));
      chunk = i;
    }
    i += n;
  }
  if (chunk < text.size()) on_chunk(chunk, text.size(), detail::normalize(form, text.substr(chunk)));
}

}  // namespace st::tokenization
