// One rendering of a parsed template: variable scopes, output buffers and
// the evaluation of statements and expressions. A Renderer lives for one
// render() call, so concurrent renders of one Template share nothing mutable.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "datasets/jinja/ast.h"
#include "datasets/jinja/value.h"

namespace st::jinja {

/// An error that already carries its template position; outer levels pass it on unchanged.
class LocatedError : public Error {
 public:
  using Error::Error;
};

/// A variable scope. jinja2 gives each for-loop iteration and each macro call
/// its own scope; `if` and `set` blocks do not create one.
struct Frame {
  std::unordered_map<std::string, Value> vars;
  Frame* parent = nullptr;
};

class Renderer {
 public:
  Renderer(std::string name, const nlohmann::ordered_json& context,
           std::vector<std::pair<size_t, size_t>>* generation_spans);

  /// Renders a template body and returns the output.
  std::string render(const Body& body);

  /// Calls any callable value (macro, builtin, bound method).
  Value call(const Value& callee, CallArgs& args);
  /// Calls a macro defined in this render.
  Value call_macro(const Macro& macro, Frame* defining_scope, CallArgs& args);

 private:
  enum class Flow { Normal, Break, Continue };

  std::string name_;
  std::vector<std::pair<size_t, size_t>>* spans_;
  std::deque<Frame> frames_;  // stable addresses: macros keep a pointer to the scope they were defined in
  Frame* scope_ = nullptr;
  std::vector<std::string> buffers_;  // [0] is the output; captures ({% set %}, macros, filters) push more
  Value placeholder_;                 // the block body a `{% filter %}` or set-block filter chain applies to
  int call_depth_ = 0;

  Frame* push_scope(Frame* parent);
  Value lookup(const std::string& name) const;
  void assign(const Target& target, Value value);
  void write(const std::string& text);

  Flow exec(const Body& body);
  Flow exec_node(const Node& node);
  Flow exec_for(const Node& node);
  std::string capture(const Body& body);

  Value eval(const ExprPtr& expr);
  Value eval_inner(const Expr& expr);
  CallArgs eval_args(const Expr& expr, size_t first);
  Value eval_compare(const Expr& expr);
  [[noreturn]] void rethrow_located(const std::exception& e, SourcePos pos) const;
};

/// Converts JSON input to template values (objects keep their key order).
Value from_json(const nlohmann::ordered_json& json);

}  // namespace st::jinja
