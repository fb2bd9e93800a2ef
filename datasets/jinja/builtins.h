// The filters, tests, methods and globals templates can call. Each family
// lives in its own file (filters.cpp, tests.cpp, methods.cpp, globals.cpp);
// the parser asks here which names exist so unknown ones fail at parse time.
#pragma once

#include <optional>
#include <string>

#include "datasets/jinja/value.h"

namespace st::jinja {

/// Names jinja2 (or HF) provides but we do not implement: an error names them as unsupported.
bool is_unsupported_filter(const std::string& name);
bool is_unsupported_test(const std::string& name);

bool has_filter(const std::string& name);
bool has_test(const std::string& name);

/// value | name(args).
Value apply_filter(Renderer& r, const std::string& name, const Value& value, CallArgs& args);
/// value is name(args).
bool apply_test(Renderer& r, const std::string& name, const Value& value, CallArgs& args);

/// Attribute lookup with jinja2's sandboxed getattr: Python attributes first
/// (methods of str/dict/list, bound to `obj`), then items. Undefined if neither.
Value get_attribute(const Value& obj, const std::string& name);
/// obj[key] with jinja2's sandboxed getitem: items first, then attributes.
Value get_item(const Value& obj, const Value& key);

/// The globals HF's environment defines (range, dict, namespace,
/// raise_exception, strftime_now); nullopt when `name` is none of them.
std::optional<Value> global(const std::string& name);

/// Binds call arguments to a Python-style signature: returns one value per
/// parameter (Undefined where not given); throws on extra or unknown arguments.
std::vector<Value> bind_args(const std::string& function, CallArgs& args, const std::vector<std::string>& params,
                             size_t required = 0);

}  // namespace st::jinja
