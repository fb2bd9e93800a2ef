// Splits a byte stream into JSON records: one per line for JSONL, one per
// element for a top-level JSON array (chosen by the first non-blank byte:
// '[' means an array). Both are streamed: an array is scanned element by
// element, so neither layout is ever held whole in memory.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "datasets/byte_stream.h"
#include "datasets/records.h"

namespace st::datasets {

struct RawRecord {
  Json value;          // the record (an object) when `error_reason` is empty
  size_t line = 0;     // 1-based line where the record starts
  std::string origin;  // "name:line" (JSONL) or "name: record N (line L)" (array, N from 0)
  /// A problem with this record alone (malformed JSONL line, invalid UTF-8,
  /// not an object, nested too deep); the reader may skip it.
  std::string error_reason;
  std::string error_message;
};

/// Calls `visit` for every record in order. Problems that make the rest of
/// the file unreadable (a JSON array that does not parse) throw st::Error.
void for_each_record(ByteStream& in, const std::string& name,
                     const std::function<void(RawRecord&)>& visit);

/// Records nested deeper than this are refused: no chat sample needs it, and
/// it keeps copies and comparisons of hostile input off deep recursion.
inline constexpr size_t kMaxJsonDepth = 128;

/// Follows JSON text byte by byte, telling brackets that are structure from
/// brackets inside string literals (escapes included).
class JsonStringTracker {
 public:
  /// Consumes byte c; true when c is outside any string literal (quotes
  /// opening or closing a string count as inside).
  bool outside_string(int c);

 private:
  bool in_string_ = false, escaped_ = false;
};

/// Deepest bracket nesting of JSON text, outside strings.
size_t json_depth(std::string_view text);

}  // namespace st::datasets
