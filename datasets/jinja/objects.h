// The opaque objects templates see: macros, builtin functions, methods bound
// to a value, and the `loop` variable of a for loop.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "datasets/jinja/ast.h"
#include "datasets/jinja/renderer.h"
#include "datasets/jinja/value.h"

namespace st::jinja {

class MacroObject : public Object {
 public:
  MacroObject(std::shared_ptr<const Macro> macro, Frame* scope) : macro_(std::move(macro)), scope_(scope) {}
  std::string type_name() const override { return "Macro"; }
  Value call(Renderer& r, CallArgs& args) override { return r.call_macro(*macro_, scope_, args); }
  std::string repr() const override { return "<Macro '" + macro_->name + "'>"; }

 private:
  std::shared_ptr<const Macro> macro_;
  Frame* scope_;  // owned by the Renderer, which outlives every value of its render
};

/// A global function (range, namespace, ...) or a method bound to its receiver.
class Builtin : public Object {
 public:
  using Fn = std::function<Value(Renderer&, CallArgs&)>;
  Builtin(std::string type, Fn fn) : type_(std::move(type)), fn_(std::move(fn)) {}
  std::string type_name() const override { return type_; }
  Value call(Renderer& r, CallArgs& args) override { return fn_(r, args); }

 private:
  std::string type_;
  Fn fn_;
};

/// jinja2's LoopContext: index, first, last, length, previtem, cycle(), ...
class LoopObject : public Object {
 public:
  explicit LoopObject(std::vector<Value> items) : items_(std::move(items)) {}
  void advance(size_t index) { index_ = index; }
  std::string type_name() const override { return "LoopContext"; }
  Value call(Renderer&, CallArgs&) override;  // recursive loops are not supported
  std::optional<Value> attribute(const std::string& name) const override;
  std::string repr() const override;

 private:
  std::vector<Value> items_;
  size_t index_ = 0;
  mutable std::shared_ptr<Value> last_changed_;  // state of loop.changed()
};

}  // namespace st::jinja
