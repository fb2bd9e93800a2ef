// Recipes: the TOML files every command runs from, plus the command line's
// `section.key=value` overrides, checked against the command's schema.
//
// Everything a user can get wrong is caught here, at load time, with an
// st::Error naming the file and line (or the override) and the key: syntax
// errors, unknown sections and keys (with a did-you-mean suggestion), wrong
// types, values out of range or outside the allowed choices, missing required
// keys, paths that must exist but do not. After load() the values are
// trusted, so the getters are plain lookups; asking for a key the schema does
// not declare, or with the wrong getter, is our bug (ST_CHECK).
//
// Paths: relative paths written in the recipe file resolve against the
// file's directory (a recipe means the same from any working directory);
// relative paths in overrides and in schema defaults resolve against the
// current directory (where the user typed them). `~` is not expanded: a path
// starting with "~/" is an error that says so, rather than a directory
// silently named "~". An empty path stays empty.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/recipe_schema.h"

namespace st {

/// A loaded, validated recipe: every schema key has its value (or is an
/// optional key left out), paths are absolute and normalised.
class Recipe {
 public:
  /// Parses `path`, applies `overrides` ("section.key=value", the value read
  /// as a TOML value; text that is not valid TOML is taken as a string, so
  /// data.format=sharegpt works), validates against `schema`, fills defaults.
  /// A key inside a string table is set with section.table.key=value.
  static Recipe load(const std::string& path, const RecipeSchema& schema,
                     const std::vector<std::string>& overrides = {});
  /// Like load() for recipe text already in memory: `name` stands for the
  /// file in messages, `base_dir` is where its relative paths start.
  static Recipe from_string(std::string_view toml, const std::string& name, const std::string& base_dir,
                            const RecipeSchema& schema, const std::vector<std::string>& overrides = {});

  /// False only for an optional key that was left out.
  bool has(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;
  /// kString and kPath (absolute, normalised).
  const std::string& get_string(std::string_view key) const;
  /// kStringList and kPathList.
  const std::vector<std::string>& get_list(std::string_view key) const;
  /// kNumberList.
  std::vector<double> get_numbers(std::string_view key) const;
  const std::map<std::string, std::string>& get_map(std::string_view key) const;

  /// Where a key's value came from, for errors that callers find later
  /// ("training.batch_size must divide ..."): "recipe.toml:7",
  /// "override training.batch_size=3" or "default".
  const std::string& where(std::string_view key) const;

  /// The whole resolved recipe as TOML, sections in schema order, each key
  /// preceded by its help as a comment. Loading it again with the same
  /// schema gives an equal recipe.
  std::string resolved_toml() const;
  /// Canonical text of the values of the keys under `prefixes` (a prefix
  /// matches whole dotted parts: "data" matches "data.x", not "dataset.x"),
  /// sorted by key, for hashing into cache keys. Independent of schema order,
  /// comments, formatting and where values came from.
  std::string canonical(const std::vector<std::string>& prefixes) const;
  /// canonical() of every key whose KeySpec::affects is at least `effect`:
  /// the text a digest hashes (kCache: the token cache's key; kResults: what
  /// a resumed run must share).
  std::string canonical(KeyEffect effect) const;
  /// canonical() of the keys a resumed run must share with the run it
  /// continues: kResults and above, except the KeySpec::resumable ones.
  std::string resume_identity() const;
  /// The recipe file as given to load() (the name given to from_string()).
  const std::string& source() const { return source_; }
  const RecipeSchema& schema() const { return schema_; }

  /// Same schema keys and same values (sources and origins are not compared).
  bool operator==(const Recipe& other) const;

 private:
  Recipe() = default;
  // Index of `key` in schema_; ST_CHECK when the schema has no such key.
  size_t index(std::string_view key) const;
  // canonical() of the schema keys `selected` picks.
  std::string canonical_where(const std::function<bool(const KeySpec&)>& selected) const;
  // The value of a present key read as type T, after checking its KeyType.
  template <typename T>
  const T& typed(std::string_view key, KeyType a, KeyType b) const;

  friend class RecipeLoader;

  std::string source_;
  RecipeSchema schema_;
  std::map<std::string, size_t, std::less<>> index_;  // key -> position in schema_
  std::vector<std::optional<RecipeValue>> values_;    // per schema_ entry; nullopt: optional, absent
  std::vector<std::string> where_;                    // per schema_ entry
};

}  // namespace st
