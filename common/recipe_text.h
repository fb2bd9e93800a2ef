// TOML text for recipe values. We write TOML ourselves rather than through
// TOML++'s printer because the resolved recipe must load back to exactly the
// same values: floats are printed in their shortest round-trip form and
// always look like floats, so 1.0 does not come back as the integer 1.
#pragma once

#include <string>
#include <string_view>

#include "common/recipe_schema.h"

namespace st::recipe_text {

/// A TOML basic string with escapes: "a \"b\"\n".
std::string quote(std::string_view text);

/// A key as TOML writes it: bare when it can be, quoted otherwise.
std::string key(std::string_view name);

/// A value as TOML text; kFloat values print as floats (2.0, 1e-05, inf).
std::string value(const RecipeValue& value, KeyType type);

}  // namespace st::recipe_text
