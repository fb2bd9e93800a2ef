// Python's operators on template values: arithmetic with Python's int/float
// rules (floor division and modulo round toward -inf), `in`, slicing and
// printf-style `%` formatting of strings.
#pragma once

#include <optional>
#include <string>

#include "datasets/jinja/value.h"

namespace st::jinja {

/// a op b for op in + - * / // % ** (Python semantics; int overflow is an error, not a wrap).
Value binary_op(const std::string& op, const Value& a, const Value& b);
/// -a or +a.
Value unary_op(const std::string& op, const Value& a);
/// Python `item in container`.
bool contains(const Value& container, const Value& item);
/// obj[start:stop:step] on str, list, tuple (Python slice semantics).
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
/// Python str.__mod__: "%s %d" % args.
std::string percent_format(const std::string& format, const Value& args);
/// Python's round(x, ndigits) (round-half-even on the exact binary value).
Value python_round(const Value& x, int64_t ndigits);

/// Largest string/list an operation may build: bounds `'x' * n` and the output.
constexpr size_t kMaxBuiltSize = 64u << 20;

}  // namespace st::jinja
