#include "datasets/jinja/lexer.h"

#include <cstring>

#include "common/error.h"
#include "datasets/jinja/utf8.h"

namespace st::jinja {

std::string located(const std::string& message, const std::string& name, SourcePos pos) {
  return cat(message, " at ", name, ":", pos.line, ":", pos.column);
}

namespace {

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Python's str.rstrip() (Unicode whitespace), on UTF-8.
std::string_view rstrip_unicode(std::string_view s) {
  std::u32string cps = utf8::decode(s);
  size_t keep = cps.size();
  while (keep > 0 && utf8::is_space(cps[keep - 1])) --keep;
  return s.substr(0, utf8::encode(std::u32string_view(cps).substr(0, keep)).size());
}

// Length of the run of Python whitespace (\s) starting at `pos`.
size_t skip_space(std::string_view s, size_t pos) {
  size_t i = pos;
  while (i < s.size()) {
    if (is_ascii_space(s[i]) || (s[i] >= 0x1c && s[i] <= 0x1f)) {
      ++i;
      continue;
    }
    if (static_cast<unsigned char>(s[i]) < 0x80) break;
    size_t n = 1;
    while (i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xC0) == 0x80) ++n;
    std::u32string c = utf8::decode(s.substr(i, n));
    if (c.size() != 1 || !utf8::is_space(c[0])) break;
    i += n;
  }
  return i - pos;
}

bool all_space(std::string_view s) { return !s.empty() && skip_space(s, 0) == s.size(); }

class Lexer {
 public:
  Lexer(std::string_view source, const std::string& name) : name_(name) {
    // jinja2 normalises \r\n and \r to \n and drops one trailing newline up front.
    src_.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        src_ += '\n';
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      } else {
        src_ += source[i];
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
  }

  std::vector<Token> run() {
    while (pos_ < src_.size()) lex_root();
    tokens_.push_back({Token::Type::End, "", here()});
    return std::move(tokens_);
  }

 private:
  std::string src_;
  const std::string& name_;
  size_t pos_ = 0;
  std::vector<Token> tokens_;
  bool line_starting_ = true;  // the last match ended with a newline (lstrip_blocks at line start)

  SourcePos pos_of(size_t offset) const {
    SourcePos p;
    for (size_t i = 0; i < offset && i < src_.size(); ++i) {
      if (src_[i] == '\n') {
        ++p.line;
        p.column = 1;
      } else if ((static_cast<unsigned char>(src_[i]) & 0xC0) != 0x80) {
        ++p.column;
      }
    }
    return p;
  }
  SourcePos here() const { return pos_of(pos_); }

  [[noreturn]] void error(const std::string& message, size_t offset) const {
    throw Error(located(message, name_, pos_of(offset)));
  }

  void emit_data(std::string_view text, size_t offset) {
    if (!text.empty()) tokens_.push_back({Token::Type::Data, std::string(text), pos_of(offset)});
  }

  // Applies the whitespace control of a tag opening with `sign` ('-', '+' or 0)
  // to the text before it, as jinja2's OptionalLStrip rule does.
  std::string_view strip_before(std::string_view text, char sign, bool is_variable) const {
    if (sign == '-') return rstrip_unicode(text);
    if (sign != '+' && !is_variable) {  // lstrip_blocks
      size_t line_begin = text.rfind('\n');
      line_begin = line_begin == std::string_view::npos ? 0 : line_begin + 1;
      if ((line_begin > 0 || line_starting_) && all_space(text.substr(line_begin))) return text.substr(0, line_begin);
    }
    return text;
  }

  // After "%}": trim_blocks eats one newline; "-%}" eats all whitespace; "+%}" nothing.
  // Returns the end of the closing delimiter including what it consumes.
  size_t close_block(size_t at, size_t delim_len) {
    char sign = src_[at];
    size_t end;
    if (sign == '-') {
      end = at + 1 + delim_len;
      end += skip_space(src_, end);
    } else if (sign == '+') {
      end = at + 1 + delim_len;
    } else {
      end = at + delim_len;
      if (end < src_.size() && src_[end] == '\n') ++end;
    }
    line_starting_ = end > 0 && src_[end - 1] == '\n';
    return end;
  }

  void lex_root() {
    size_t tag = src_.size();
    for (const char* open : {"{{", "{%", "{#"}) tag = std::min(tag, src_.find(open, pos_));
    if (tag == std::string::npos || tag >= src_.size()) {
      emit_data(std::string_view(src_).substr(pos_), pos_);
      pos_ = src_.size();
      return;
    }
    char kind = src_[tag + 1];
    size_t after = tag + 2;
    char sign = after < src_.size() && (src_[after] == '-' || src_[after] == '+') ? src_[after] : 0;
    if (sign) ++after;
    std::string_view text = std::string_view(src_).substr(pos_, tag - pos_);

    if (kind == '%' && lex_raw(text, tag, after, sign)) return;
    emit_data(strip_before(text, sign, kind == '{'), pos_);
    line_starting_ = false;
    if (kind == '#') {
      lex_comment(after, tag);
    } else {
      tokens_.push_back({kind == '{' ? Token::Type::VarBegin : Token::Type::BlockBegin, "", pos_of(tag)});
      lex_tag(after, kind == '%');
    }
  }

  // `{% raw %}...{% endraw %}`: emits the inner text verbatim. Returns false if not raw.
  bool lex_raw(std::string_view text, size_t tag, size_t after, char sign) {
    size_t p = after + skip_space(src_, after);
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    p += skip_space(src_, p);
    size_t body;
    if (src_.compare(p, 3, "-%}") == 0) {
      body = p + 3 + skip_space(src_, p + 3);
    } else if (src_.compare(p, 2, "%}") == 0) {
      body = p + 2;  // jinja2 applies no trim_blocks after raw's opening tag
    } else {
      return false;
    }
    emit_data(strip_before(text, sign, false), pos_);
    line_starting_ = src_[body - 1] == '\n';
    // Find "{%[-+]? endraw %}".
    for (size_t q = src_.find("{%", body); q != std::string::npos; q = src_.find("{%", q + 2)) {
      size_t r = q + 2;
      char end_sign = r < src_.size() && (src_[r] == '-' || src_[r] == '+') ? src_[r] : 0;
      if (end_sign) ++r;
      r += skip_space(src_, r);
      if (src_.compare(r, 6, "endraw") != 0) continue;
      r += 6;
      r += skip_space(src_, r);
      if (src_.compare(r, 3, "+%}") != 0 && src_.compare(r, 3, "-%}") != 0 && src_.compare(r, 2, "%}") != 0) continue;
      emit_data(strip_before(std::string_view(src_).substr(body, q - body), end_sign, false), body);
      pos_ = close_block(r, 2);
      return true;
    }
    error("missing end of raw directive", tag);
  }

  void lex_comment(size_t from, size_t tag) {
    for (size_t q = src_.find("#}", from); q != std::string::npos; q = src_.find("#}", q + 1)) {
      size_t sign_at = q > from && (src_[q - 1] == '-' || src_[q - 1] == '+') ? q - 1 : q;
      pos_ = close_block(sign_at, 2);
      return;
    }
    error("missing end of comment tag", tag);
  }

  void lex_tag(size_t p, bool block) {
    std::vector<char> balance;  // jinja2 only ends a tag when brackets are balanced
    while (true) {
      p += skip_space(src_, p);
      if (p >= src_.size()) error(block ? "unexpected end of template, expected '%}'" : "unexpected end of template, expected '}}'", p);
      if (balance.empty()) {
        if (block && (src_.compare(p, 2, "%}") == 0 || ((src_[p] == '-' || src_[p] == '+') && src_.compare(p + 1, 2, "%}") == 0))) {
          tokens_.push_back({Token::Type::BlockEnd, "", pos_of(p)});
          pos_ = close_block(p, 2);
          return;
        }
        if (!block && (src_.compare(p, 2, "}}") == 0 || src_.compare(p, 3, "-}}") == 0)) {
          tokens_.push_back({Token::Type::VarEnd, "", pos_of(p)});
          size_t end = p + (src_[p] == '-' ? 3 : 2);
          if (src_[p] == '-') end += skip_space(src_, end);
          line_starting_ = src_[end - 1] == '\n';
          pos_ = end;
          return;
        }
      }
      p = lex_token(p, balance);
    }
  }

  size_t lex_token(size_t p, std::vector<char>& balance) {
    SourcePos at = pos_of(p);
    char c = src_[p];
    auto is_digit = [&](size_t i) { return i < src_.size() && src_[i] >= '0' && src_[i] <= '9'; };
    auto is_name_char = [&](size_t i) {
      return i < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[i])) || src_[i] == '_');
    };
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t e = p;
      while (is_name_char(e)) ++e;
      tokens_.push_back({Token::Type::Name, src_.substr(p, e - p), at});
      return e;
    }
    if (is_digit(p)) return lex_number(p, at);
    if (c == '\'' || c == '"') return lex_string(p, at);
    static const char* const kOperators[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[",
                                             "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"};
    for (const char* op : kOperators) {
      size_t n = std::strlen(op);
      if (src_.compare(p, n, op) != 0) continue;
      if (n == 1 && std::strchr("([{", c)) balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
      if (n == 1 && std::strchr(")]}", c)) {
        if (balance.empty()) error(cat("unexpected '", c, "'"), p);
        if (balance.back() != c) error(cat("unexpected '", c, "', expected '", balance.back(), "'"), p);
        balance.pop_back();
      }
      tokens_.push_back({Token::Type::Operator, op, at});
      return p + n;
    }
    error(cat("unexpected char '", c, "'"), p);
  }

  // Decimal integers and floats (with '_' separators); jinja2's 0x/0o/0b forms too.
  size_t lex_number(size_t p, SourcePos at) {
    auto digits = [&](size_t i) {
      size_t s = i;
      while (i < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[i])) ||
                                 (src_[i] == '_' && i > s && i + 1 < src_.size() && std::isdigit(static_cast<unsigned char>(src_[i + 1])))))
        ++i;
      return i;
    };
    auto clean = [&](size_t b, size_t e) {
      std::string s;
      for (size_t i = b; i < e; ++i)
        if (src_[i] != '_') s += src_[i];
      return s;
    };
    if (src_[p] == '0' && p + 1 < src_.size() && std::strchr("xXoObB", src_[p + 1])) {
      int base = std::strchr("xX", src_[p + 1]) ? 16 : std::strchr("oO", src_[p + 1]) ? 8 : 2;
      size_t e = p + 2;
      while (e < src_.size() && (std::isxdigit(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
      std::string text = clean(p + 2, e);
      try {
        tokens_.push_back({Token::Type::Integer, std::to_string(std::stoll(text, nullptr, base)), at});
      } catch (const std::exception&) {
        error("invalid or too large integer literal", p);
      }
      return e;
    }
    size_t e = digits(p);
    bool is_float = false;
    // jinja2's float rule has a (?<!\.) look-behind: in `x.0.1` the digits are
    // item indices, not a float.
    bool after_dot = p > 0 && src_[p - 1] == '.';
    if (after_dot) {
      tokens_.push_back({Token::Type::Integer, clean(p, e), at});
      return e;
    }
    if (e + 1 < src_.size() && src_[e] == '.' && std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
      e = digits(e + 1);
      is_float = true;
    }
    if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      size_t x = e + 1;
      if (x < src_.size() && (src_[x] == '+' || src_[x] == '-')) ++x;
      if (x < src_.size() && std::isdigit(static_cast<unsigned char>(src_[x]))) {
        e = digits(x);
        is_float = true;
      }
    }
    tokens_.push_back({is_float ? Token::Type::Float : Token::Type::Integer, clean(p, e), at});
    return e;
  }

  // Python string literal escapes, as jinja2 decodes them ("unicode-escape").
  size_t lex_string(size_t p, SourcePos at) {
    char quote = src_[p];
    std::string value;
    size_t i = p + 1;
    auto hex = [&](size_t from, int n) -> char32_t {
      if (from + n > src_.size()) error("truncated escape in string literal", from);
      char32_t v = 0;
      for (int k = 0; k < n; ++k) {
        char h = src_[from + k];
        if (!std::isxdigit(static_cast<unsigned char>(h))) error("truncated escape in string literal", from);
        v = v * 16 + static_cast<char32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
      }
      return v;
    };
    while (true) {
      if (i >= src_.size()) error("unterminated string literal", p);
      char c = src_[i];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) error("unterminated string literal", p);
      char e = src_[i + 1];
      i += 2;
      switch (e) {
        case '\n': break;  // line continuation
        case '\\': value += '\\'; break;
        case '\'': value += '\''; break;
        case '"': value += '"'; break;
        case 'a': value += '\a'; break;
        case 'b': value += '\b'; break;
        case 'f': value += '\f'; break;
        case 'n': value += '\n'; break;
        case 'r': value += '\r'; break;
        case 't': value += '\t'; break;
        case 'v': value += '\v'; break;
        case 'x': utf8::append(value, hex(i, 2)); i += 2; break;
        case 'u': utf8::append(value, hex(i, 4)); i += 4; break;
        case 'U': {
          char32_t cp = hex(i, 8);
          if (cp > 0x10FFFF) error("illegal Unicode character in string literal", i);
          utf8::append(value, cp);
          i += 8;
          break;
        }
        case 'N': error("unsupported \\N{...} escape in string literal", i - 2);
        default:
          if (e >= '0' && e <= '7') {  // octal: up to three digits
            char32_t v = static_cast<char32_t>(e - '0');
            for (int k = 0; k < 2 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7'; ++k) v = v * 8 + (src_[i++] - '0');
            utf8::append(value, v);
          } else {  // unknown escapes keep their backslash, as in Python
            value += '\\';
            value += e;
          }
      }
    }
    tokens_.push_back({Token::Type::String, std::move(value), at});
    return i + 1;
  }
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const std::string& name) { return Lexer(source, name).run(); }

}  // namespace st::jinja
