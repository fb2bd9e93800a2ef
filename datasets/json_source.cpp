// JSONL lines and JSON array elements -> RawRecord, with file:line origins.
#include "datasets/json_source.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/error.h"

namespace st::datasets {
namespace {

// Buffered byte access with one byte of look-ahead and a line counter.
class Reader {
 public:
  explicit Reader(ByteStream& in) : in_(in), buf_(1 << 18) {}

  int peek() {
    if (pos_ == end_ && !fill()) return -1;
    return static_cast<unsigned char>(buf_[pos_]);
  }
  int get() {
    int c = peek();
    if (c >= 0) {
      ++pos_;
      if (c == '\n') ++line_;
    }
    return c;
  }
  size_t line() const { return line_; }
  // A UTF-8 byte order mark says nothing JSON needs; drop it.
  void skip_bom() {
    if (peek() >= 0 && end_ - pos_ >= 3 && std::memcmp(buf_.data() + pos_, "\xEF\xBB\xBF", 3) == 0) pos_ += 3;
  }

  // Appends the rest of the current line (without '\n') to `out`; false at EOF
  // with nothing read. Uses memchr on whole buffers: lines can be megabytes.
  bool next_line(std::string& out) {
    out.clear();
    bool any = false;
    while (pos_ < end_ || fill()) {
      any = true;
      const char* start = buf_.data() + pos_;
      const void* nl = std::memchr(start, '\n', end_ - pos_);
      if (nl) {
        size_t len = static_cast<const char*>(nl) - start;
        out.append(start, len);
        pos_ += len + 1;
        ++line_;
        return true;
      }
      out.append(start, end_ - pos_);
      pos_ = end_;
    }
    return any;
  }

 private:
  bool fill() {
    pos_ = 0;
    end_ = in_.read(buf_.data(), buf_.size());
    return end_ > 0;
  }

  ByteStream& in_;
  std::vector<char> buf_;
  size_t pos_ = 0, end_ = 0;
  size_t line_ = 1;
};

bool is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Offset of the first byte that is not well-formed UTF-8 (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF), or npos.
size_t first_invalid_utf8(std::string_view s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) { ++i; continue; }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) { len = 3; lo = 0xA0; }
    else if (c == 0xED) { len = 3; hi = 0x9F; }
    else if (c >= 0xE1 && c <= 0xEF) len = 3;
    else if (c == 0xF0) { len = 4; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) { len = 4; hi = 0x8F; }
    else return i;
    if (i + len > n) return i;
    unsigned char c1 = s[i + 1];
    if (c1 < lo || c1 > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      unsigned char ck = s[i + k];
      if (ck < 0x80 || ck > 0xBF) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

}  // namespace

bool JsonStringTracker::outside_string(int c) {
  if (in_string_) {
    if (escaped_) escaped_ = false;
    else if (c == '\\') escaped_ = true;
    else if (c == '"') in_string_ = false;
    return false;
  }
  if (c == '"') {
    in_string_ = true;
    return false;
  }
  return true;
}

size_t json_depth(std::string_view s) {
  size_t depth = 0, deepest = 0;
  JsonStringTracker strings;
  for (char c : s) {
    if (!strings.outside_string(c)) continue;
    if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

namespace {

size_t count_newlines(std::string_view s, size_t upto) {
  size_t n = 0;
  for (size_t i = 0; i < upto && i < s.size(); ++i) n += s[i] == '\n';
  return n;
}

// nlohmann's message without its "[json.exception...] parse error at line 1,
// column 5: " prefix, whose position is relative to the record, not the file.
std::string parse_error_detail(const std::string& what) {
  size_t col = what.find("column ");
  if (col != std::string::npos) {
    size_t colon = what.find(": ", col);
    if (colon != std::string::npos) return what.substr(colon + 2);
  }
  size_t bracket = what.find("] ");
  return bracket == std::string::npos ? what : what.substr(bracket + 2);
}

// Checks and parses one record's text. On a problem of this record alone,
// sets the record's error; a syntax error is returned through `syntax_error`
// (with the file line of the offending byte) for the caller to judge.
void parse_record(std::string_view text, RawRecord& rec, size_t* syntax_line, std::string* syntax_error) {
  size_t bad = first_invalid_utf8(text);
  if (bad != std::string_view::npos) {
    size_t line = rec.line + count_newlines(text, bad);
    rec.error_reason = "invalid UTF-8";
    rec.error_message = cat(rec.origin, ": invalid UTF-8 at line ", line, " (byte ", bad,
                            " of the record); the file must be UTF-8 encoded");
    return;
  }
  if (json_depth(text) > kMaxJsonDepth) {
    rec.error_reason = "too deeply nested";
    rec.error_message = cat(rec.origin, ": JSON nested deeper than ", kMaxJsonDepth, " levels");
    return;
  }
  try {
    rec.value = Json::parse(text);
  } catch (const Json::parse_error& e) {
    *syntax_line = rec.line + count_newlines(text, e.byte == 0 ? 0 : e.byte - 1);
    *syntax_error = parse_error_detail(e.what());
    return;
  } catch (const Json::exception& e) {  // e.g. out_of_range: a number too large for a double
    *syntax_line = rec.line;
    *syntax_error = parse_error_detail(e.what());
    return;
  }
  if (!rec.value.is_object()) {
    rec.error_reason = "wrong type";
    rec.error_message = cat(rec.origin, ": a record must be a JSON object, got ", rec.value.type_name());
  }
}

void read_jsonl(Reader& reader, const std::string& name, const std::function<void(RawRecord&)>& visit) {
  std::string line;
  while (true) {
    size_t line_no = reader.line();
    if (!reader.next_line(line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines
    RawRecord rec;
    rec.line = line_no;
    rec.origin = cat(name, ":", line_no);
    size_t err_line = 0;
    std::string err;
    parse_record(line, rec, &err_line, &err);
    if (!err.empty()) {
      rec.error_reason = "malformed JSON";
      rec.error_message = cat(rec.origin, ": malformed JSON: ", err);
    }
    visit(rec);
  }
}

// Scans one array element (up to the ',' or ']' that ends it, not consumed).
// Brackets outside strings are matched so that a mismatch ends the element
// right there and the JSON parser reports it at its line; the parser checks
// everything else.
std::string scan_element(Reader& reader, const std::string& name, size_t index, size_t start_line) {
  std::string text;
  std::string open;  // stack of unclosed '{' / '['
  JsonStringTracker strings;
  while (true) {
    int c = reader.peek();
    if (c < 0)
      fail(name, ": unexpected end of file in record ", index, " (line ", start_line,
           "): the JSON array is not closed");
    const bool structure = strings.outside_string(c);
    if (!structure) {
      // inside a string literal: no brackets or commas count
    } else if (c == '[' || c == '{') {
      open.push_back(static_cast<char>(c));
    } else if (c == ']' || c == '}') {
      if (open.empty()) return text;
      if (open.back() != (c == ']' ? '[' : '{')) {
        text.push_back(static_cast<char>(reader.get()));
        return text;
      }
      open.pop_back();
    } else if (c == ',' && open.empty()) {
      return text;
    }
    text.push_back(static_cast<char>(reader.get()));
  }
}

void skip_space(Reader& reader) {
  while (is_space(reader.peek())) reader.get();
}

void read_array(Reader& reader, const std::string& name, const std::function<void(RawRecord&)>& visit) {
  reader.get();  // '['
  skip_space(reader);
  if (reader.peek() == ']') {
    reader.get();
  } else {
    for (size_t index = 0;; ++index) {
      skip_space(reader);
      size_t start = reader.line();
      std::string text = scan_element(reader, name, index, start);
      RawRecord rec;
      rec.line = start;
      rec.origin = cat(name, ": record ", index, " (line ", start, ")");
      size_t err_line = 0;
      std::string err;
      if (text.find_first_not_of(" \t\r\n") == std::string::npos)
        fail(name, ":", start, ": malformed JSON array: a record is missing (stray ',')");
      parse_record(text, rec, &err_line, &err);
      // A syntax error inside an array leaves no reliable place to resume.
      if (!err.empty()) fail(name, ":", err_line, ": malformed JSON in record ", index, ": ", err);
      visit(rec);
      skip_space(reader);
      int c = reader.get();
      if (c == ']') break;
      if (c != ',')
        fail(name, ":", reader.line(), ": malformed JSON array: expected ',' or ']' after record ", index);
    }
  }
  skip_space(reader);
  if (reader.peek() >= 0)
    fail(name, ":", reader.line(), ": unexpected data after the end of the JSON array");
}

}  // namespace

void for_each_record(ByteStream& in, const std::string& name,
                     const std::function<void(RawRecord&)>& visit) {
  Reader reader(in);
  reader.skip_bom();
  // Leading blank space is consumed (lines still counted): it decides
  // nothing for JSONL, and an array is recognised by its first byte.
  skip_space(reader);
  if (reader.peek() == '[')
    read_array(reader, name, visit);
  else
    read_jsonl(reader, name, visit);
}

}  // namespace st::datasets
