// Recursive-descent parser following jinja2's grammar and operator
// precedence (jinja2/parser.py). Unknown filters, tests and statements are
// rejected here, as jinja2 rejects them when compiling.
#pragma once

#include <string>
#include <string_view>

#include "datasets/jinja/ast.h"

namespace st::jinja {

/// Parses a whole template into its top-level body.
Body parse_template(std::string_view source, const std::string& name);

}  // namespace st::jinja
