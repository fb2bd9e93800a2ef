#include "common/recipe_schema.h"

#include <cmath>
#include <set>

#include "common/error.h"
#include "common/recipe_text.h"

namespace st {
namespace {

bool is_key_part(std::string_view part) {
  if (part.empty()) return false;
  for (char c : part) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// The variant alternative a default of this key type must hold.
bool holds_type(const RecipeValue& v, KeyType type) {
  switch (type) {
    case KeyType::kBool: return std::holds_alternative<bool>(v);
    case KeyType::kInt: return std::holds_alternative<int64_t>(v);
    case KeyType::kFloat: return std::holds_alternative<double>(v) || std::holds_alternative<int64_t>(v);
    case KeyType::kString:
    case KeyType::kPath: return std::holds_alternative<std::string>(v);
    case KeyType::kStringList:
    case KeyType::kPathList:
    case KeyType::kNumberList: return std::holds_alternative<std::vector<std::string>>(v);
    case KeyType::kStringMap:
    case KeyType::kNumberMap: return std::holds_alternative<std::map<std::string, std::string>>(v);
  }
  return false;
}

std::string format_bound(double bound, KeyType type) {
  if (type == KeyType::kInt && std::abs(bound) < 9e15) return std::to_string(static_cast<int64_t>(bound));
  return recipe_text::value(bound, KeyType::kFloat);
}

}  // namespace

RecipeSchema merge_schemas(const std::vector<RecipeSchema>& schemas) {
  RecipeSchema merged;
  std::set<std::string, std::less<>> seen;
  for (const auto& schema : schemas) {
    for (const auto& spec : schema) {
      if (!seen.insert(spec.key).second) fail("recipe key \"", spec.key, "\" is declared by two merged schemas");
      merged.push_back(spec);
    }
  }
  return merged;
}

void check_schema(const RecipeSchema& schema) {
  std::set<std::string, std::less<>> keys;
  for (const auto& spec : schema) {
    const std::string& k = spec.key;
    ST_CHECK(keys.insert(k).second, "recipe key \"", k, "\" is declared twice");
    size_t dot = k.find('.');
    ST_CHECK(dot != std::string::npos, "recipe key \"", k, "\" needs a section: section.name");
    for (size_t start = 0, end; start <= k.size(); start = end + 1) {
      end = k.find('.', start);
      if (end == std::string::npos) end = k.size();
      ST_CHECK(is_key_part(std::string_view(k).substr(start, end - start)), "recipe key \"", k,
               "\": each part must be letters, digits, '_' or '-'");
    }
    bool numeric = spec.type == KeyType::kInt || spec.type == KeyType::kFloat;
    bool path = spec.type == KeyType::kPath || spec.type == KeyType::kPathList;
    ST_CHECK(numeric || (!spec.min && !spec.max), "recipe key \"", k, "\": min/max need a number type");
    ST_CHECK(spec.type == KeyType::kString || spec.choices.empty(), "recipe key \"", k, "\": choices need kString");
    ST_CHECK(path || !spec.must_exist, "recipe key \"", k, "\": must_exist needs a path type");
    ST_CHECK(!(spec.optional && spec.default_value), "recipe key \"", k, "\": optional keys have no default");
    if (spec.default_value) {
      const RecipeValue& d = *spec.default_value;
      ST_CHECK(holds_type(d, spec.type), "recipe key \"", k, "\": default has the wrong type");
      if (numeric) {
        double x = std::holds_alternative<double>(d) ? std::get<double>(d) : static_cast<double>(std::get<int64_t>(d));
        ST_CHECK(!spec.min || x >= *spec.min, "recipe key \"", k, "\": default below min");
        ST_CHECK(!spec.max || x <= *spec.max, "recipe key \"", k, "\": default above max");
      }
      if (!spec.choices.empty()) {
        bool found = false;
        for (const auto& c : spec.choices) found |= c == std::get<std::string>(d);
        ST_CHECK(found, "recipe key \"", k, "\": default is not among the choices");
      }
    }
  }
  // A name is either a key or a section, never both ("model.lora" = 1 and
  // "model.lora.rank" = 8 cannot both be written in TOML).
  for (const auto& spec : schema) {
    for (size_t dot = spec.key.find('.'); dot != std::string::npos; dot = spec.key.find('.', dot + 1))
      ST_CHECK(!keys.count(spec.key.substr(0, dot)), "recipe key \"", spec.key.substr(0, dot),
               "\" is also the section of \"", spec.key, "\"");
  }
}

std::string_view describe_type(KeyType type) {
  switch (type) {
    case KeyType::kBool: return "a boolean (true or false)";
    case KeyType::kInt: return "an integer";
    case KeyType::kFloat: return "a number";
    case KeyType::kString: return "a string";
    case KeyType::kPath: return "a path (string)";
    case KeyType::kStringList: return "a list of strings";
    case KeyType::kPathList: return "a list of paths (strings)";
    case KeyType::kStringMap: return "a table of strings";
    case KeyType::kNumberMap: return "a table of numbers";
    case KeyType::kNumberList: return "a list of numbers";
  }
  return "?";
}

std::string describe_schema(const RecipeSchema& schema) {
  std::string out;
  for (const auto& spec : schema) {
    out += spec.key + ": " + std::string(describe_type(spec.type));
    if (spec.min && spec.max)
      out += ", " + format_bound(*spec.min, spec.type) + " to " + format_bound(*spec.max, spec.type);
    else if (spec.min)
      out += ", at least " + format_bound(*spec.min, spec.type);
    else if (spec.max)
      out += ", at most " + format_bound(*spec.max, spec.type);
    if (!spec.choices.empty()) {
      out += ", one of";
      for (size_t i = 0; i < spec.choices.size(); ++i) out += (i ? ", " : " ") + spec.choices[i];
    }
    if (spec.must_exist) out += ", must exist";
    if (spec.default_value)
      out += "; default " + recipe_text::value(*spec.default_value, spec.type);
    else if (spec.optional)
      out += "; optional";
    else
      out += "; required";
    out += "\n";
    if (!spec.help.empty()) out += "    " + spec.help + "\n";
  }
  return out;
}

}  // namespace st
