// Splits a template into tokens exactly as jinja2's lexer does for
// Hugging Face's environment (trim_blocks, lstrip_blocks, default delimiters,
// keep_trailing_newline off): whitespace control is resolved here, so the
// parser only sees final text data.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace st::jinja {

struct SourcePos {
  int line = 1;
  int column = 1;
};

struct Token {
  enum class Type { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, End };
  Type type;
  std::string text;  // Data: the text; String: the unescaped value; others: the source spelling
  SourcePos pos;
};

/// Tokenizes `source`; throws st::Error naming `name`:line:column on lexical errors.
std::vector<Token> tokenize(std::string_view source, const std::string& name);

/// "<message> at <name>:<line>:<column>", the form of every positioned error.
std::string located(const std::string& message, const std::string& name, SourcePos pos);

}  // namespace st::jinja
