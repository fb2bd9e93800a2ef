// JSON in and out: template context from nlohmann JSON, and Python's
// json.dumps for HF's `tojson` filter.
#pragma once

#include <string>

#include "datasets/jinja/value.h"

namespace st::jinja {

struct JsonDumpOptions {
  bool ensure_ascii = false;
  bool pretty = false;          // indent given (even 0 or ""): newlines between items
  std::string indent;           // one level of indentation
  std::string item_separator;   // defaults follow Python: ", " or "," when indenting
  std::string key_separator = ": ";
  bool sort_keys = false;
};

/// json.dumps(value, ...) with Python's formatting (float repr, escapes, layout).
std::string dump_json(const Value& value, const JsonDumpOptions& options);

}  // namespace st::jinja
