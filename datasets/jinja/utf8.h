// UTF-8 <-> code points, and the few Unicode character classes Python's str
// methods depend on. Templates index, slice and measure strings in code points
// (Python semantics), while we store them as UTF-8 bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace st::jinja::utf8 {

/// Decodes UTF-8; malformed bytes decode as U+FFFD (input JSON is already valid UTF-8).
std::u32string decode(std::string_view s);
/// Encodes code points as UTF-8.
std::string encode(std::u32string_view s);
void append(std::string& out, char32_t c);
/// Number of code points.
size_t length(std::string_view s);

/// Python str.isspace() (Unicode White_Space plus the ASCII separators 0x1c-0x1f).
bool is_space(char32_t c);
/// Python str.isprintable() for one character, approximated without the full
/// Unicode tables: controls, separators other than ' ', format and private-use
/// characters are non-printable.
bool is_printable(char32_t c);
/// Python str.isalnum()/isalpha()/isdigit() approximations: ASCII exact, others via the C library.
bool is_alpha(char32_t c);
bool is_digit(char32_t c);
/// Simple (one-to-one) case mappings; Python's few one-to-many mappings (ß -> SS) are not modelled.
char32_t to_upper(char32_t c);
char32_t to_lower(char32_t c);
/// A character with a case distinction (Python's "cased").
bool is_cased(char32_t c);

}  // namespace st::jinja::utf8
