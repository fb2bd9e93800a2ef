// Reading a loaded recipe: typed getters and the two text forms (the
// resolved TOML saved with a run, the canonical text hashed into cache keys).
// Loading and validation live in recipe_load.cpp.
#include "common/recipe.h"

#include <algorithm>
#include <cstdlib>
#include <functional>

#include "common/error.h"
#include "common/recipe_text.h"

namespace st {
namespace {

const char* type_name(KeyType type) {
  switch (type) {
    case KeyType::kBool: return "kBool";
    case KeyType::kInt: return "kInt";
    case KeyType::kFloat: return "kFloat";
    case KeyType::kString: return "kString";
    case KeyType::kPath: return "kPath";
    case KeyType::kStringList: return "kStringList";
    case KeyType::kPathList: return "kPathList";
    case KeyType::kStringMap: return "kStringMap";
    case KeyType::kNumberMap: return "kNumberMap";
    case KeyType::kNumberList: return "kNumberList";
  }
  return "?";
}

std::string section_of(const std::string& key) { return key.substr(0, key.rfind('.')); }

// "data" covers "data" and "data.x" but not "dataset.x"; a prefix ending in
// '.' is taken literally; "" covers everything.
bool covers(const std::string& prefix, const std::string& key) {
  if (prefix.empty()) return true;
  if (key.compare(0, prefix.size(), prefix) != 0) return false;
  return key.size() == prefix.size() || prefix.back() == '.' || key[prefix.size()] == '.';
}

}  // namespace

size_t Recipe::index(std::string_view key) const {
  auto it = index_.find(key);
  ST_CHECK(it != index_.end(), "recipe key \"", key, "\" is not in the schema");
  return it->second;
}

template <typename T>
const T& Recipe::typed(std::string_view key, KeyType a, KeyType b) const {
  size_t i = index(key);
  KeyType type = schema_[i].type;
  ST_CHECK(type == a || type == b, "recipe key \"", key, "\" is ", type_name(type), ", read with the getter for ",
           type_name(a));
  ST_CHECK(values_[i].has_value(), "recipe key \"", key, "\" is optional and not set: check has() first");
  return std::get<T>(*values_[i]);
}

bool Recipe::has(std::string_view key) const { return values_[index(key)].has_value(); }
bool Recipe::get_bool(std::string_view key) const { return typed<bool>(key, KeyType::kBool, KeyType::kBool); }
int64_t Recipe::get_int(std::string_view key) const { return typed<int64_t>(key, KeyType::kInt, KeyType::kInt); }
double Recipe::get_float(std::string_view key) const { return typed<double>(key, KeyType::kFloat, KeyType::kFloat); }

const std::string& Recipe::get_string(std::string_view key) const {
  return typed<std::string>(key, KeyType::kString, KeyType::kPath);
}

const std::vector<std::string>& Recipe::get_list(std::string_view key) const {
  return typed<std::vector<std::string>>(key, KeyType::kStringList, KeyType::kPathList);
}

std::vector<double> Recipe::get_numbers(std::string_view key) const {
  std::vector<double> numbers;
  // The texts were written by the loader from TOML numbers: they read back exactly.
  for (const std::string& text : typed<std::vector<std::string>>(key, KeyType::kNumberList, KeyType::kNumberList))
    numbers.push_back(std::strtod(text.c_str(), nullptr));
  return numbers;
}

const std::map<std::string, std::string>& Recipe::get_map(std::string_view key) const {
  return typed<std::map<std::string, std::string>>(key, KeyType::kStringMap, KeyType::kNumberMap);
}

const std::string& Recipe::where(std::string_view key) const { return where_[index(key)]; }

std::string Recipe::resolved_toml() const {
  std::string out = "# Resolved recipe: defaults filled, overrides applied, paths absolute.\n";
  out += "# Source: " + source_ + "\n";
  // Sections in the order the schema first names them.
  std::vector<std::string> sections;
  for (const auto& spec : schema_) {
    std::string section = section_of(spec.key);
    if (std::find(sections.begin(), sections.end(), section) == sections.end()) sections.push_back(section);
  }
  for (const auto& section : sections) {
    out += "\n[" + section + "]\n";
    for (size_t i = 0; i < schema_.size(); ++i) {
      const KeySpec& spec = schema_[i];
      if (section_of(spec.key) != section) continue;
      std::string name = spec.key.substr(section.size() + 1);
      if (!spec.help.empty()) out += "# " + spec.help + "\n";
      if (!values_[i]) {
        out += "# " + name + " is not set (optional)\n";
        continue;
      }
      out += recipe_text::key(name) + " = " + recipe_text::value(*values_[i], spec.type);
      // Which values the user changed from the recipe is worth seeing at a glance.
      if (where_[i] == "default")
        out += "  # default";
      else if (where_[i].starts_with("override "))
        out += "  # override";
      out += "\n";
    }
  }
  return out;
}

std::string Recipe::canonical_where(const std::function<bool(const KeySpec&)>& selected) const {
  std::vector<std::string> keys;
  for (const KeySpec& spec : schema_)
    if (selected(spec)) keys.push_back(spec.key);
  return keys.empty() ? std::string() : canonical(keys);
}

std::string Recipe::canonical(KeyEffect effect) const {
  return canonical_where([effect](const KeySpec& spec) { return spec.affects >= effect; });
}

std::string Recipe::resume_identity() const {
  return canonical_where([](const KeySpec& spec) { return spec.affects >= KeyEffect::kResults && !spec.resumable; });
}

std::string Recipe::canonical(const std::vector<std::string>& prefixes) const {
  std::map<std::string, size_t> selected;  // sorted by key, independent of schema order
  for (size_t i = 0; i < schema_.size(); ++i)
    for (const auto& prefix : prefixes)
      if (covers(prefix, schema_[i].key)) selected.emplace(schema_[i].key, i);
  std::string out;
  for (const auto& [key, i] : selected) {
    if (values_[i])
      out += key + " = " + recipe_text::value(*values_[i], schema_[i].type) + "\n";
    else
      out += key + " unset\n";
  }
  return out;
}

bool Recipe::operator==(const Recipe& other) const {
  if (schema_.size() != other.schema_.size()) return false;
  for (size_t i = 0; i < schema_.size(); ++i) {
    auto it = other.index_.find(schema_[i].key);
    if (it == other.index_.end() || other.schema_[it->second].type != schema_[i].type) return false;
    if (values_[i] != other.values_[it->second]) return false;
  }
  return true;
}

}  // namespace st
