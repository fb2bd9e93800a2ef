// A Jinja2 template interpreter that renders Hugging Face chat templates
// exactly as transformers' apply_chat_template does: jinja2's
// ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the
// loopcontrols extension, HF's {% generation %} tag, `tojson` filter and
// raise_exception / strftime_now globals, and the default Undefined.
//
// What a template cannot do here it cannot do silently: unknown or
// unsupported filters, tests, statements and methods are errors naming them.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace st::jinja {

using Json = nlohmann::ordered_json;  // ordered like Python dicts

struct Node;

class Template {
 public:
  /// Parses; throws st::Error naming `name`, line and column for syntax errors
  /// and for any construct we do not support ("unsupported filter 'xmlattr' at chat_template:1:57").
  static Template parse(std::string_view source, std::string name = "chat_template");

  /// Renders with `context` (a JSON object: messages, tools, add_generation_prompt,
  /// bos_token, ... any extra variables). Errors (raise_exception, operations on
  /// undefined values that jinja2 refuses, type errors) throw st::Error naming
  /// name:line:column. If generation_spans is non-null it receives the [begin, end)
  /// byte offsets in the output of every {% generation %} block (HF's AssistantTracker).
  /// Thread-safe: concurrent renders share only the immutable syntax tree.
  std::string render(const Json& context, std::vector<std::pair<size_t, size_t>>* generation_spans = nullptr) const;

  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::shared_ptr<const std::vector<std::shared_ptr<const Node>>> body_;
};

}  // namespace st::jinja
