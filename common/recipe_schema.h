// What a recipe may contain: one KeySpec per key, declared next to the code
// that reads the key. A command's schema is the union of the schemas of the
// parts it runs (data + training + ...), so each part declares its keys once
// and the same declaration serves the TOML file, the command-line overrides,
// the resolved recipe printed at start, and the --help listing.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace st {

/// The type a recipe key holds. Paths are strings that are resolved to
/// absolute, normalised paths when the recipe is loaded.
enum class KeyType { kBool, kInt, kFloat, kString, kPath, kStringList, kPathList, kStringMap, kNumberMap, kNumberList };

/// A key's value: bool (kBool), int64_t (kInt), double (kFloat), string
/// (kString, kPath), vector (kStringList, kPathList), map (kStringMap; kNumberMap,
/// whose numbers are held as text that reads back exactly: "16", "0.5"),
/// vector (kNumberList, its numbers held as text the same way).
/// A schema default for a kFloat key may also be written as an integer.
using RecipeValue = std::variant<bool, int64_t, double, std::string, std::vector<std::string>,
                                 std::map<std::string, std::string>>;

/// What a key's value changes, from which the digests are derived (never
/// from hand-written key lists): kCache keys change the tokens (the token
/// cache's key), kResults keys change the numbers a run produces (a resumed
/// run must agree on them), kNothing keys change where files go, threads,
/// logging. Each level includes the ones after it.
enum class KeyEffect { kNothing, kResults, kCache };

/// One recipe key. Designated initialisers read best:
///   {.key = "data.max_length", .type = KeyType::kInt, .default_value = 2048,
///    .min = 1, .help = "tokens per training sequence"}
struct KeySpec {
  // Every member has an initialiser so designated initialisers may skip
  // any of them without -Wmissing-field-initializers noise.
  std::string key{};                         // "section.name"; deeper sections ("model.lora.rank") work too
  KeyType type{};
  std::optional<RecipeValue> default_value{};  // nullopt: required unless `optional`
  bool optional = false;                     // may be absent with no default; Recipe::has() tells
  std::optional<double> min{}, max{};        // kInt/kFloat only, inclusive
  std::vector<std::string> choices{};        // kString only: the allowed values
  bool must_exist = false;                   // kPath/kPathList: must exist when the recipe is loaded
  KeyEffect affects = KeyEffect::kNothing;   // which digests the value enters
  // A kResults key whose change does not rewrite the past: --resume may
  // change it (training.max_steps extends a finished run). It is left out
  // of the digest a resumed run must match.
  bool resumable = false;
  std::string help{};                        // one line: a comment in the resolved recipe, and --help
};

using RecipeSchema = std::vector<KeySpec>;

/// The union of several schemas, in order; st::Error on a key declared twice.
RecipeSchema merge_schemas(const std::vector<RecipeSchema>& schemas);

/// Checks a schema's own consistency (key syntax, defaults of the right type,
/// in range and among the choices, no key that is also a section). A bad
/// schema is our bug, so this fails with ST_CHECK.
void check_schema(const RecipeSchema& schema);

/// Human-readable type, as in "must be <an integer>".
std::string_view describe_type(KeyType type);

/// A --help listing: one block per key with its type, constraints, default
/// and help line, in schema order.
std::string describe_schema(const RecipeSchema& schema);

}  // namespace st
