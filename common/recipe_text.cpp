#include "common/recipe_text.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "common/error.h"

namespace st::recipe_text {
namespace {

bool is_bare_key(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string format_float(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buffer[64];
  // Shortest text that parses back to the same double.
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), x);
  ST_CHECK(ec == std::errc());
  std::string text(buffer, end);
  // TOML needs a '.' or an exponent to read a float; to_chars may give
  // neither ("2") and writes exponents as "1e-05", which TOML accepts.
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

// Items of a kNumberList are numbers: written unquoted.
std::string list(const std::vector<std::string>& items, bool numbers = false) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += numbers ? items[i] : quote(items[i]);
  }
  return out + "]";
}

// Entries of a kNumberMap are numbers: written unquoted.
std::string table(const std::map<std::string, std::string>& entries, bool numbers) {
  if (entries.empty()) return "{}";
  std::string out = "{ ";
  bool first = true;
  for (const auto& [name, text] : entries) {
    if (!first) out += ", ";
    first = false;
    out += key(name) + " = " + (numbers ? text : quote(text));
  }
  return out + " }";
}

}  // namespace

std::string quote(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char escape[8];
          std::snprintf(escape, sizeof(escape), "\\u%04X", c);
          out += escape;
        } else {
          out += static_cast<char>(c);  // UTF-8 passes through unchanged
        }
    }
  }
  return out + "\"";
}

std::string key(std::string_view name) { return is_bare_key(name) ? std::string(name) : quote(name); }

std::string value(const RecipeValue& v, KeyType type) {
  switch (type) {
    case KeyType::kBool: return std::get<bool>(v) ? "true" : "false";
    case KeyType::kInt: return std::to_string(std::get<int64_t>(v));
    case KeyType::kFloat:
      // Schema defaults may be written as integers (.default_value = 1).
      if (auto* i = std::get_if<int64_t>(&v)) return format_float(static_cast<double>(*i));
      return format_float(std::get<double>(v));
    case KeyType::kString:
    case KeyType::kPath: return quote(std::get<std::string>(v));
    case KeyType::kStringList:
    case KeyType::kPathList: return list(std::get<std::vector<std::string>>(v));
    case KeyType::kStringMap: return table(std::get<std::map<std::string, std::string>>(v), false);
    case KeyType::kNumberMap: return table(std::get<std::map<std::string, std::string>>(v), true);
    case KeyType::kNumberList: return list(std::get<std::vector<std::string>>(v), true);
  }
  ST_CHECK(false, "unknown KeyType");
  return {};
}

}  // namespace st::recipe_text
