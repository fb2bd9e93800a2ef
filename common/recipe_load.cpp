// Loading a recipe: TOML file -> overrides -> defaults -> existence checks.
//
// The file is walked node by node against the schema, so every value is
// checked where it was written and its error can name that line. Overrides
// come next and replace file values; defaults fill what is still unset; paths
// that must exist are checked last, on the final values, so an override can
// repair a file's bad path.
#include <cstdio>
#include <cstdlib>
#include <toml++/toml.h>  // Debian ships toml.h, not toml.hpp

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/recipe.h"
#include "common/recipe_text.h"

namespace st {
namespace {

namespace fs = std::filesystem;

// Optimal-string-alignment distance: Levenshtein plus adjacent swaps, so the
// commonest typo ("lenght") costs 1 rather than 2.
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

std::string_view last_part(std::string_view name) {
  size_t dot = name.rfind('.');
  return dot == std::string_view::npos ? name : name.substr(dot + 1);
}

// The candidate the user most likely meant, or "" when none is close: a near
// spelling of the whole name first, else the same name in another section
// ("training.max_length" when only "data.max_length" exists).
std::string closest(std::string_view name, const std::vector<std::string>& candidates) {
  size_t limit = std::max<size_t>(2, last_part(name).size() / 3);
  size_t best_distance = limit + 1;
  std::string best;
  for (const auto& c : candidates) {
    size_t d = edit_distance(name, c);
    if (d < best_distance) best_distance = d, best = c;
  }
  if (!best.empty()) return best;
  for (const auto& c : candidates)
    if (last_part(c) == last_part(name)) return c;
  return {};
}

std::string did_you_mean(std::string_view name, const std::vector<std::string>& candidates) {
  std::string best = closest(name, candidates);
  return best.empty() ? std::string() : "; did you mean \"" + best + "\"?";
}

bool is_key_part(std::string_view part) {
  if (part.empty()) return false;
  return std::all_of(part.begin(), part.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::string shorten(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

// What the user wrote, for "got ..." in type errors.
std::string describe_node(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "string " + shorten(recipe_text::quote(node.as_string()->get()));
    case toml::node_type::integer: return "integer " + std::to_string(node.as_integer()->get());
    case toml::node_type::floating_point:
      return "float " + recipe_text::value(node.as_floating_point()->get(), KeyType::kFloat);
    case toml::node_type::boolean: return node.as_boolean()->get() ? "boolean true" : "boolean false";
    case toml::node_type::array: {
      std::ostringstream out;
      out << *node.as_array();
      return "array " + shorten(out.str());
    }
    case toml::node_type::table: return "a table";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

// An entry of a kNumberMap: the number as text that reads back exactly
// (integers as written, floats in the fewest digits that read back).
std::string number_text(const toml::node& node, const std::string& name, const std::string& where) {
  if (node.is_integer()) return std::to_string(node.as_integer()->get());
  if (node.is_floating_point()) {
    const double value = node.as_floating_point()->get();
    char buf[32];
    for (int digits = 15; digits <= 17; ++digits) {
      std::snprintf(buf, sizeof buf, "%.*g", digits, value);
      if (std::strtod(buf, nullptr) == value) break;
    }
    return buf;
  }
  fail(name, " must be a number, got ", describe_node(node), " (", where, ")");
}

std::string format_number(double x, KeyType type) {
  if (type == KeyType::kInt && std::abs(x) < 9e15) return std::to_string(static_cast<int64_t>(x));
  return recipe_text::value(x, KeyType::kFloat);
}

// Every proper dotted prefix of a schema key: the sections a recipe may open.
std::set<std::string, std::less<>> sections_of(const RecipeSchema& schema) {
  std::set<std::string, std::less<>> sections;
  for (const auto& spec : schema)
    for (size_t dot = spec.key.find('.'); dot != std::string::npos; dot = spec.key.find('.', dot + 1))
      sections.insert(spec.key.substr(0, dot));
  return sections;
}

std::string trim(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return {};
  size_t end = text.find_last_not_of(" \t");
  return std::string(text.substr(begin, end - begin + 1));
}

}  // namespace

// Builds a Recipe step by step; a friend of Recipe so it can fill it in.
class RecipeLoader {
 public:
  RecipeLoader(const RecipeSchema& schema, const std::string& name) : sections_(sections_of(schema)) {
    check_schema(schema);
    recipe_.source_ = name;
    recipe_.schema_ = schema;
    for (size_t i = 0; i < schema.size(); ++i) {
      recipe_.index_.emplace(schema[i].key, i);
      keys_.push_back(schema[i].key);
    }
    recipe_.values_.resize(schema.size());
    recipe_.where_.resize(schema.size());
  }

  void read_toml(std::string_view text, const fs::path& base_dir) {
    toml::table root;
    try {
      root = toml::parse(text, std::string_view(recipe_.source_));
    } catch (const toml::parse_error& e) {
      fail(recipe_.source_, ":", e.source().begin.line, ":", e.source().begin.column,
           ": TOML syntax error: ", e.description());
    }
    walk(root, "", base_dir);
  }

  void apply_override(const std::string& text, const fs::path& cwd) {
    size_t eq = text.find('=');
    std::string name = trim(std::string_view(text).substr(0, eq));
    bool well_formed = eq != std::string::npos && name.find('.') != std::string::npos;
    for (size_t start = 0, end; well_formed && start <= name.size(); start = end + 1) {
      end = std::min(name.find('.', start), name.size());
      well_formed = is_key_part(std::string_view(name).substr(start, end - start));
    }
    // A malformed override is a command-line mistake (exit 2), unlike a
    // well-formed one naming an unknown key or a bad value (bad input, exit 1).
    if (!well_formed) throw UsageError(cat("override \"", text, "\" needs the form section.key=value"));
    std::string raw = trim(std::string_view(text).substr(eq + 1));
    std::string where = "override " + text;

    // The key itself, or an entry of a string table ("data.fields.prompt").
    const KeySpec* spec = find(name);
    std::string entry;
    if (!spec) {
      for (size_t dot = name.rfind('.'); dot != std::string::npos && !spec; dot = name.rfind('.', dot - 1)) {
        const KeySpec* table = find(name.substr(0, dot));
        if (table && (table->type == KeyType::kStringMap || table->type == KeyType::kNumberMap))
          spec = table, entry = name.substr(dot + 1);
      }
    }
    if (!spec) unknown(name, /*is_table=*/false, where);

    toml::table parsed = parse_override_value(raw, text);
    const toml::node* node = parsed.get("v");
    // A string key takes the text as typed: run_name=2024 is "2024", not 2024.
    toml::value<std::string> as_text(raw);
    bool wants_text = (!entry.empty() && spec->type == KeyType::kStringMap) || spec->type == KeyType::kString ||
                      spec->type == KeyType::kPath;
    if (!node || (wants_text && !node->is_string() && !node->is_array() && !node->is_table())) node = &as_text;

    size_t i = recipe_.index_.find(spec->key)->second;
    if (!entry.empty()) {
      auto map = current_map(i);
      if (spec->type == KeyType::kNumberMap) {
        map[entry] = number_text(*node, name, where);
      } else {
        if (!node->is_string()) fail(name, " must be a string, got ", describe_node(*node), " (", where, ")");
        map[entry] = node->as_string()->get();
      }
      set(i, std::move(map), where);
      return;
    }
    std::string hint;
    if ((spec->type == KeyType::kStringList || spec->type == KeyType::kPathList) && node->is_string())
      hint = cat("; write it as a TOML list: '", name, "=[\"", raw, "\"]'");
    set(i, convert(*node, *spec, spec->key, where, cwd, hint), where);
  }

  Recipe finish() {
    std::string missing;
    for (size_t i = 0; i < recipe_.schema_.size(); ++i) {
      const KeySpec& spec = recipe_.schema_[i];
      if (recipe_.values_[i]) continue;
      if (spec.default_value) {
        set(i, normalise_default(spec), "default");
      } else if (spec.optional) {
        recipe_.where_[i] = "not set";
      } else {
        size_t dot = spec.key.rfind('.');
        missing += cat("\n  ", spec.key, ": add ", spec.key.substr(dot + 1), " = ... under [",
                       spec.key.substr(0, dot), "]", spec.help.empty() ? "" : " (" + spec.help + ")");
      }
    }
    if (!missing.empty()) fail(recipe_.source_, ": missing required recipe keys:", missing);
    for (size_t i = 0; i < recipe_.schema_.size(); ++i) check_exists(i);
    return std::move(recipe_);
  }

 private:
  const KeySpec* find(std::string_view key) const {
    auto it = recipe_.index_.find(key);
    return it == recipe_.index_.end() ? nullptr : &recipe_.schema_[it->second];
  }

  void set(size_t i, RecipeValue value, std::string where) {
    recipe_.values_[i] = std::move(value);
    recipe_.where_[i] = std::move(where);
  }

  std::string location(const toml::key& key, const toml::node& node) const {
    uint32_t line = key.source().begin.line ? key.source().begin.line : node.source().begin.line;
    return line ? cat(recipe_.source_, ":", line) : recipe_.source_;
  }

  void walk(const toml::table& table, const std::string& prefix, const fs::path& base_dir) {
    for (auto&& [key, node] : table) {
      std::string name = prefix.empty() ? std::string(key.str()) : prefix + "." + std::string(key.str());
      std::string where = location(key, node);
      // A quoted key with a dot ("data.x" = 1) is not the key data.x.
      bool plain = is_key_part(key.str());
      if (const KeySpec* spec = plain ? find(name) : nullptr) {
        set(recipe_.index_.find(name)->second, convert(node, *spec, name, where, base_dir, ""), where);
      } else if (plain && sections_.count(name)) {
        if (!node.is_table()) fail(name, " must be a table (the section [", name, "]), got ", describe_node(node), " (", where, ")");
        walk(*node.as_table(), name, base_dir);
      } else if (!plain && find(name)) {
        fail("key \"", key.str(), "\" is quoted, so its dots are part of one name (", where,
             "); write it without quotes");
      } else {
        unknown(name, node.is_table(), where);
      }
    }
  }

  [[noreturn]] void unknown(const std::string& name, bool is_table, const std::string& where) const {
    if (is_table) {
      std::vector<std::string> candidates(sections_.begin(), sections_.end());
      fail("unknown section \"", name, "\" (", where, ")", did_you_mean(name, candidates));
    }
    std::string suggestion = did_you_mean(name, keys_);
    if (suggestion.empty()) {
      // No near name: list what the section does have.
      size_t dot = name.rfind('.');
      std::string section = dot == std::string::npos ? "" : name.substr(0, dot);
      std::string known;
      for (const auto& k : keys_)
        if (k.size() > section.size() && k.compare(0, section.size() + 1, section + ".") == 0 &&
            k.find('.', section.size() + 1) == std::string::npos)
          known += (known.empty() ? "" : ", ") + k.substr(section.size() + 1);
      if (!known.empty()) suggestion = cat("; [", section, "] has: ", known);
    }
    fail("unknown key \"", name, "\" (", where, ")", suggestion);
  }

  // The override's value as TOML, in a table under "v"; an empty table when
  // the text is not TOML and so is taken as a plain string.
  static toml::table parse_override_value(const std::string& raw, const std::string& text) {
    try {
      std::string doc = "v = " + raw + "\n";
      toml::table parsed = toml::parse(std::string_view(doc), std::string_view("override"));
      // Text like `1\nother = 2` parses, but it is not one value.
      if (parsed.size() == 1 && parsed.contains("v")) return parsed;
    } catch (const toml::parse_error& e) {
      // Text that starts like a quoted string, list or table was meant as
      // TOML; taking it as a string would hide the typo.
      if (!raw.empty() && std::string_view("\"'[{").find(raw[0]) != std::string_view::npos)
        fail("override \"", text, "\": the value is not valid TOML: ", e.description());
    }
    return {};
  }

  std::map<std::string, std::string> current_map(size_t i) const {
    if (recipe_.values_[i]) return std::get<std::map<std::string, std::string>>(*recipe_.values_[i]);
    const KeySpec& spec = recipe_.schema_[i];
    if (spec.default_value) return std::get<std::map<std::string, std::string>>(*spec.default_value);
    return {};
  }

  // Checks one value against its spec and converts it. `hint` is appended to
  // a type error (how to write a list on the command line).
  RecipeValue convert(const toml::node& node, const KeySpec& spec, const std::string& name,
                      const std::string& where, const fs::path& base_dir, const std::string& hint) const {
    auto wrong_type = [&](const toml::node& got, const std::string& what, std::string_view expected) {
      fail(what, " must be ", expected, ", got ", describe_node(got), " (", where, ")", hint);
    };
    switch (spec.type) {
      case KeyType::kBool:
        if (!node.is_boolean()) wrong_type(node, name, describe_type(spec.type));
        return node.as_boolean()->get();
      case KeyType::kInt: {
        if (!node.is_integer()) wrong_type(node, name, describe_type(spec.type));
        int64_t x = node.as_integer()->get();
        check_range(static_cast<double>(x), spec, name, where);
        return x;
      }
      case KeyType::kFloat: {
        if (!node.is_number()) wrong_type(node, name, describe_type(spec.type));
        double x = node.is_integer() ? static_cast<double>(node.as_integer()->get()) : node.as_floating_point()->get();
        if (std::isnan(x)) fail(name, " must be a number, got nan (", where, ")");
        check_range(x, spec, name, where);
        return x;
      }
      case KeyType::kString: {
        if (!node.is_string()) wrong_type(node, name, describe_type(spec.type));
        const std::string& text = node.as_string()->get();
        check_choice(text, spec, name, where);
        return text;
      }
      case KeyType::kPath:
        if (!node.is_string()) wrong_type(node, name, describe_type(spec.type));
        return resolve(node.as_string()->get(), base_dir, name, where);
      case KeyType::kStringList:
      case KeyType::kPathList: {
        if (!node.is_array()) wrong_type(node, name, describe_type(spec.type));
        const toml::array& array = *node.as_array();
        std::vector<std::string> items;
        for (size_t j = 0; j < array.size(); ++j) {
          std::string item_name = cat(name, "[", j, "]");
          if (!array[j].is_string()) wrong_type(array[j], item_name, "a string");
          const std::string& text = array[j].as_string()->get();
          items.push_back(spec.type == KeyType::kPathList ? resolve(text, base_dir, item_name, where) : text);
        }
        return items;
      }
      case KeyType::kNumberList: {
        if (!node.is_array()) wrong_type(node, name, describe_type(spec.type));
        const toml::array& array = *node.as_array();
        std::vector<std::string> items;
        for (size_t j = 0; j < array.size(); ++j) items.push_back(number_text(array[j], cat(name, "[", j, "]"), where));
        return items;
      }
      case KeyType::kStringMap: {
        if (!node.is_table()) wrong_type(node, name, describe_type(spec.type));
        std::map<std::string, std::string> entries;
        for (auto&& [key, value] : *node.as_table()) {
          std::string entry_name = name + "." + std::string(key.str());
          if (!value.is_string()) wrong_type(value, entry_name, "a string");
          entries.emplace(key.str(), value.as_string()->get());
        }
        return entries;
      }
      case KeyType::kNumberMap: {
        if (!node.is_table()) wrong_type(node, name, describe_type(spec.type));
        std::map<std::string, std::string> entries;
        for (auto&& [key, value] : *node.as_table())
          entries.emplace(key.str(), number_text(value, name + "." + std::string(key.str()), where));
        return entries;
      }
    }
    ST_CHECK(false, "unknown KeyType");
    return {};
  }

  static void check_range(double x, const KeySpec& spec, const std::string& name, const std::string& where) {
    bool low = spec.min && x < *spec.min, high = spec.max && x > *spec.max;
    if (!low && !high) return;
    std::string value = format_number(x, spec.type);
    if (spec.min && spec.max)
      fail(name, " must be between ", format_number(*spec.min, spec.type), " and ", format_number(*spec.max, spec.type),
           ", got ", value, " (", where, ")");
    if (low) fail(name, " must be at least ", format_number(*spec.min, spec.type), ", got ", value, " (", where, ")");
    fail(name, " must be at most ", format_number(*spec.max, spec.type), ", got ", value, " (", where, ")");
  }

  static void check_choice(const std::string& text, const KeySpec& spec, const std::string& name,
                           const std::string& where) {
    if (spec.choices.empty() || std::find(spec.choices.begin(), spec.choices.end(), text) != spec.choices.end())
      return;
    std::string list;
    for (const auto& c : spec.choices) list += (list.empty() ? "" : ", ") + recipe_text::quote(c);
    fail(name, " must be one of ", list, ", got ", recipe_text::quote(text), " (", where, ")",
         did_you_mean(text, spec.choices));
  }

  // Absolute and normalised, relative paths taken from `base_dir`.
  static std::string resolve(const std::string& text, const fs::path& base_dir, const std::string& name,
                             const std::string& where) {
    if (text.empty()) return text;
    if (text == "~" || text.starts_with("~/"))
      fail(name, " is ", recipe_text::quote(text), ", but ~ is not expanded in recipes; write the full path (",
           where, ")");
    fs::path path(text);
    if (path.is_relative()) path = base_dir / path;
    std::string normal = path.lexically_normal().string();
    if (normal.size() > 1 && normal.back() == '/') normal.pop_back();
    return normal;
  }

  // A schema default in its stored form: kFloat as double, paths resolved
  // against the current directory.
  static RecipeValue normalise_default(const KeySpec& spec) {
    const RecipeValue& d = *spec.default_value;
    if (spec.type == KeyType::kFloat && std::holds_alternative<int64_t>(d))
      return static_cast<double>(std::get<int64_t>(d));
    fs::path cwd = fs::current_path();
    if (spec.type == KeyType::kPath) return resolve(std::get<std::string>(d), cwd, spec.key, "default");
    if (spec.type == KeyType::kPathList) {
      std::vector<std::string> items;
      for (const auto& item : std::get<std::vector<std::string>>(d))
        items.push_back(resolve(item, cwd, spec.key, "default"));
      return items;
    }
    return d;
  }

  void check_exists(size_t i) const {
    const KeySpec& spec = recipe_.schema_[i];
    if (!spec.must_exist || !recipe_.values_[i]) return;
    const std::string& where = recipe_.where_[i];
    auto check = [&](const std::string& path, const std::string& name) {
      if (path.empty()) fail(name, " is empty, but must name an existing file or directory (", where, ")");
      std::error_code ec;
      if (!fs::exists(path, ec)) fail(name, ": ", recipe_text::quote(path), " does not exist (", where, ")");
    };
    if (spec.type == KeyType::kPath) {
      check(std::get<std::string>(*recipe_.values_[i]), spec.key);
    } else {
      const auto& items = std::get<std::vector<std::string>>(*recipe_.values_[i]);
      for (size_t j = 0; j < items.size(); ++j) check(items[j], cat(spec.key, "[", j, "]"));
    }
  }

  Recipe recipe_;
  std::set<std::string, std::less<>> sections_;
  std::vector<std::string> keys_;  // schema order, for suggestions
};

Recipe Recipe::from_string(std::string_view toml, const std::string& name, const std::string& base_dir,
                           const RecipeSchema& schema, const std::vector<std::string>& overrides) {
  RecipeLoader loader(schema, name);
  loader.read_toml(toml, fs::absolute(base_dir));
  fs::path cwd = fs::current_path();
  for (const auto& text : overrides) loader.apply_override(text, cwd);
  return loader.finish();
}

Recipe Recipe::load(const std::string& path, const RecipeSchema& schema, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) fail("recipe ", path, " is a directory; give the path of a .toml file");
  if (!fs::exists(path, ec)) fail("recipe ", path, " does not exist");
  std::string text = read_file(path);
  return from_string(text, path, fs::absolute(path).parent_path().string(), schema, overrides);
}

}  // namespace st
