// Statement execution and expression evaluation.
#include <cstdio>

#include "common/error.h"
#include "datasets/jinja/builtins.h"
#include "datasets/jinja/objects.h"
#include "datasets/jinja/operators.h"
#include "datasets/jinja/renderer.h"

namespace st::jinja {

namespace {
// Python's default recursion limit stops runaway macro recursion near here too.
constexpr int kMaxCallDepth = 200;
}  // namespace

Value LoopObject::call(Renderer&, CallArgs&) { fail("unsupported: recursive loop call"); }

std::string LoopObject::repr() const {
  return "<LoopContext " + std::to_string(index_ + 1) + "/" + std::to_string(items_.size()) + ">";
}

std::optional<Value> LoopObject::attribute(const std::string& name) const {
  auto n = static_cast<int64_t>(items_.size());
  auto i = static_cast<int64_t>(index_);
  if (name == "index") return i + 1;
  if (name == "index0") return i;
  if (name == "revindex") return n - i;
  if (name == "revindex0") return n - i - 1;
  if (name == "first") return i == 0;
  if (name == "last") return i == n - 1;
  if (name == "length") return n;
  if (name == "depth") return 1;
  if (name == "depth0") return 0;
  if (name == "previtem")
    return i > 0 ? items_[index_ - 1] : Value(Undefined{"there is no previous item"});
  if (name == "nextitem")
    return i + 1 < n ? items_[index_ + 1] : Value(Undefined{"there is no next item"});
  if (name == "cycle") {
    size_t index = index_;
    return Value(std::make_shared<Builtin>("method", [index](Renderer&, CallArgs& args) -> Value {
      if (!args.keyword.empty()) fail("loop.cycle() takes no keyword arguments");
      if (args.positional.empty()) fail("no items for cycling given");
      return args.positional[index % args.positional.size()];
    }));
  }
  if (name == "changed") {
    auto state = last_changed_ ? last_changed_ : (last_changed_ = std::make_shared<Value>(Undefined{}));
    return Value(std::make_shared<Builtin>("method", [state](Renderer&, CallArgs& args) -> Value {
      Value now = Value::list(args.positional);
      if (!state->is_undefined() && equal(*state, now)) return false;
      *state = now;
      return true;
    }));
  }
  return std::nullopt;
}

Renderer::Renderer(std::string name, const nlohmann::ordered_json& context,
                   std::vector<std::pair<size_t, size_t>>* generation_spans)
    : name_(std::move(name)), spans_(generation_spans) {
  if (!context.is_object() && !context.is_null()) fail("template context must be a JSON object");
  Frame* root = push_scope(nullptr);
  if (context.is_object())
    for (const auto& [key, value] : context.items()) root->vars[key] = from_json(value);
}

Frame* Renderer::push_scope(Frame* parent) {
  frames_.emplace_back();
  frames_.back().parent = parent;
  return &frames_.back();
}

std::string Renderer::render(const Body& body) {
  buffers_.assign(1, std::string());
  scope_ = &frames_.front();
  exec(body);
  return std::move(buffers_[0]);
}

Value Renderer::lookup(const std::string& name) const {
  for (const Frame* f = scope_; f; f = f->parent) {
    auto it = f->vars.find(name);
    if (it != f->vars.end()) return it->second;
  }
  if (auto g = global(name)) return *g;
  return Undefined{"'" + name + "' is undefined"};
}

void Renderer::write(const std::string& text) {
  std::string& out = buffers_.back();
  if (out.size() + text.size() > kMaxBuiltSize) fail("template output exceeds ", kMaxBuiltSize >> 20, " MiB");
  out += text;
}

void Renderer::assign(const Target& target, Value value) {
  if (!target.attribute.empty()) {
    Value ns = lookup(target.names[0]);
    if (!ns.is_namespace()) fail("cannot assign attribute on non-namespace object");
    if (target.attribute[0] == '_')
      fail("chat templates cannot store underscore-prefixed attributes on a namespace, but got '", target.attribute, "'");
    ns.map().set(target.attribute, std::move(value));
    return;
  }
  if (!target.unpack) {
    scope_->vars[target.names[0]] = std::move(value);
    return;
  }
  std::vector<Value> items = iterate(value);
  if (items.size() > target.names.size()) fail("too many values to unpack (expected ", target.names.size(), ")");
  if (items.size() < target.names.size())
    fail("not enough values to unpack (expected ", target.names.size(), ", got ", items.size(), ")");
  for (size_t i = 0; i < items.size(); ++i) scope_->vars[target.names[i]] = std::move(items[i]);
}

std::string Renderer::capture(const Body& body) {
  buffers_.emplace_back();
  exec(body);
  std::string out = std::move(buffers_.back());
  buffers_.pop_back();
  return out;
}

void Renderer::rethrow_located(const std::exception& e, SourcePos pos) const {
  if (dynamic_cast<const LocatedError*>(&e)) throw;
  throw LocatedError(located(e.what(), name_, pos));
}

Renderer::Flow Renderer::exec(const Body& body) {
  for (const auto& node : body) {
    Flow flow;
    try {
      flow = exec_node(*node);
    } catch (const Error& e) {
      rethrow_located(e, node->pos);
    }
    if (flow != Flow::Normal) return flow;
  }
  return Flow::Normal;
}

Renderer::Flow Renderer::exec_node(const Node& node) {
  switch (node.kind) {
    case Node::Kind::Text: write(node.text); break;
    case Node::Kind::Output: write(to_str(eval(node.expr))); break;
    case Node::Kind::If:
      for (const auto& [cond, body] : node.branches)
        if (!cond || truthy(eval(cond))) return exec(body);
      break;
    case Node::Kind::For: return exec_for(node);
    case Node::Kind::Set: assign(node.target, eval(node.expr)); break;
    case Node::Kind::SetBlock:
    case Node::Kind::FilterBlock: {
      Value body = capture(node.body);
      if (node.expr) {
        Value saved = std::exchange(placeholder_, body);
        body = eval(node.expr);
        placeholder_ = std::move(saved);
      }
      if (node.kind == Node::Kind::SetBlock) assign(node.target, std::move(body));
      else write(to_str(body));
      break;
    }
    case Node::Kind::MacroDef:
      scope_->vars[node.macro->name] = Value(std::make_shared<MacroObject>(node.macro, scope_));
      break;
    case Node::Kind::Generation: {
      std::string body = capture(node.body);
      // HF's AssistantTracker counts what the template has yielded so far,
      // i.e. the top-level output, even when the block sits inside a capture.
      if (spans_) spans_->emplace_back(buffers_[0].size(), buffers_[0].size() + body.size());
      write(body);
      break;
    }
    case Node::Kind::Break: return Flow::Break;
    case Node::Kind::Continue: return Flow::Continue;
  }
  return Flow::Normal;
}

Renderer::Flow Renderer::exec_for(const Node& node) {
  Value iterable = eval(node.expr);
  std::vector<Value> items = iterate(iterable);
  Frame* outer = scope_;
  if (node.filter) {  // `for x in xs if cond`: the loop only sees the items that pass
    std::vector<Value> kept;
    for (auto& item : items) {
      scope_ = push_scope(outer);
      assign(node.target, item);
      bool keep = truthy(eval(node.filter));
      scope_ = outer;
      if (keep) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    scope_ = push_scope(outer);
    exec(node.else_body);
    scope_ = outer;
    return Flow::Normal;
  }
  auto loop = std::make_shared<LoopObject>(items);
  for (size_t i = 0; i < items.size(); ++i) {
    scope_ = push_scope(outer);  // a fresh scope per iteration: sets do not leak between iterations
    loop->advance(i);
    scope_->vars["loop"] = Value(ObjectPtr(loop));
    assign(node.target, items[i]);
    Flow flow = exec(node.body);
    scope_ = outer;
    if (flow == Flow::Break) break;
  }
  return Flow::Normal;
}

Value Renderer::call_macro(const Macro& macro, Frame* defining_scope, CallArgs& args) {
  if (call_depth_ >= kMaxCallDepth) fail("maximum macro recursion depth exceeded");
  Frame* saved_scope = scope_;
  scope_ = push_scope(defining_scope);
  ++call_depth_;
  struct Restore {
    Renderer& r;
    Frame* scope;
    ~Restore() {
      r.scope_ = scope;
      --r.call_depth_;
    }
  } restore{*this, saved_scope};

  const auto& params = macro.params;
  if (args.positional.size() > params.size() && !macro.catch_varargs)
    fail("macro '", macro.name, "' takes not more than ", params.size(), " argument(s)");
  std::vector<Value> extra;
  for (size_t i = 0; i < args.positional.size(); ++i) {
    if (i < params.size()) scope_->vars[params[i]] = args.positional[i];
    else extra.push_back(args.positional[i]);
  }
  Value kwargs = Value::dict();
  for (auto& [key, value] : args.keyword) {
    auto it = std::find(params.begin(), params.end(), key);
    if (it == params.end()) {
      if (!macro.catch_kwargs) fail("macro '", macro.name, "' takes no keyword argument '", key, "'");
      kwargs.map().set(key, value);
    } else if (static_cast<size_t>(it - params.begin()) < args.positional.size()) {
      fail("macro '", macro.name, "' got multiple values for argument '", key, "'");
    } else {
      scope_->vars[key] = value;
    }
  }
  for (size_t i = 0; i < params.size(); ++i) {
    if (scope_->vars.count(params[i])) continue;
    // Defaults are evaluated at call time and may refer to earlier parameters.
    scope_->vars[params[i]] = macro.defaults[i] ? eval(macro.defaults[i])
                                                : Value(Undefined{"parameter '" + params[i] + "' was not provided"});
  }
  if (macro.catch_varargs) scope_->vars["varargs"] = Value::list(std::move(extra), Seq::Kind::Tuple);
  if (macro.catch_kwargs) scope_->vars["kwargs"] = kwargs;
  return capture(macro.body);
}

Value Renderer::call(const Value& callee, CallArgs& args) {
  require_defined(callee);
  if (!callee.is_object() || !callee.object().is_callable()) fail("'", callee.type_name(), "' object is not callable");
  return callee.object().call(*this, args);
}

// ---- expressions ------------------------------------------------------------

Value Renderer::eval(const ExprPtr& expr) {
  try {
    return eval_inner(*expr);
  } catch (const Error& e) {
    rethrow_located(e, expr->pos);
  }
}

CallArgs Renderer::eval_args(const Expr& expr, size_t first) {
  CallArgs args;
  for (size_t i = first; i < expr.args.size(); ++i) args.positional.push_back(eval(expr.args[i]));
  for (const auto& [key, value] : expr.kwargs) args.keyword.emplace_back(key, eval(value));
  return args;
}

Value Renderer::eval_compare(const Expr& expr) {
  Value left = eval(expr.args[0]);
  for (size_t i = 0; i < expr.ops.size(); ++i) {
    Value right = eval(expr.args[i + 1]);
    const std::string& op = expr.ops[i];
    bool ok;
    if (op == "==") ok = equal(left, right);
    else if (op == "!=") ok = !equal(left, right);
    else if (op == "<") ok = less(left, right);
    else if (op == ">") ok = less(right, left);
    else if (op == "<=") ok = less(left, right) || equal(left, right);
    else if (op == ">=") ok = less(right, left) || equal(left, right);
    else if (op == "in") ok = contains(right, left);
    else ok = !contains(right, left);
    if (!ok) return false;  // Python chains stop at the first false comparison
    left = std::move(right);
  }
  return true;
}

Value Renderer::eval_inner(const Expr& e) {
  switch (e.kind) {
    case Expr::Kind::Const: return e.value;
    case Expr::Kind::Name: return lookup(e.name);
    case Expr::Kind::List:
    case Expr::Kind::Tuple: {
      std::vector<Value> items;
      for (const auto& a : e.args) items.push_back(eval(a));
      return Value::list(std::move(items), e.kind == Expr::Kind::List ? Seq::Kind::List : Seq::Kind::Tuple);
    }
    case Expr::Kind::Dict: {
      Value d = Value::dict();
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        Value key = eval(e.args[i]);
        if (key.is_seq() && key.seq().kind != Seq::Kind::Tuple) fail("unhashable type: '", key.type_name(), "'");
        if (key.is_map()) fail("unhashable type: 'dict'");
        d.map().set(std::move(key), eval(e.args[i + 1]));
      }
      return d;
    }
    case Expr::Kind::GetAttr: return get_attribute(eval(e.args[0]), e.name);
    case Expr::Kind::GetItem: return get_item(eval(e.args[0]), eval(e.args[1]));
    case Expr::Kind::Slice: {
      Value obj = eval(e.args[0]);
      auto bound = [&](size_t i) { return e.args[i] ? eval(e.args[i]) : Value(None{}); };
      Value start = bound(1), stop = bound(2), step = bound(3);
      require_defined(obj);
      // jinja2's sandboxed getitem turns the TypeError of a bad slice into undefined.
      try {
        return slice(obj, start, stop, step);
      } catch (const Error&) {
        return Undefined{"'" + obj.type_name() + " object' cannot be sliced"};
      }
    }
    case Expr::Kind::Call: {
      Value callee = eval(e.args[0]);
      CallArgs args = eval_args(e, 1);
      return call(callee, args);
    }
    case Expr::Kind::Filter: {
      Value subject = e.args[0] ? eval(e.args[0]) : placeholder_;
      CallArgs args = eval_args(e, 1);
      return apply_filter(*this, e.name, subject, args);
    }
    case Expr::Kind::Test: {
      Value subject = eval(e.args[0]);
      CallArgs args = eval_args(e, 1);
      return apply_test(*this, e.name, subject, args);
    }
    case Expr::Kind::Unary: {
      Value v = eval(e.args[0]);
      if (e.name == "not") return !truthy(v);
      return unary_op(e.name, v);
    }
    case Expr::Kind::Binary: {
      Value left = eval(e.args[0]);
      if (e.name == "and") return truthy(left) ? eval(e.args[1]) : left;
      if (e.name == "or") return truthy(left) ? left : eval(e.args[1]);
      Value right = eval(e.args[1]);
      if (e.name == "~") return to_str(left) + to_str(right);
      return binary_op(e.name, left, right);
    }
    case Expr::Kind::Compare: return eval_compare(e);
    case Expr::Kind::CondExpr:
      if (truthy(eval(e.args[0]))) return eval(e.args[1]);
      if (e.args[2]) return eval(e.args[2]);
      return Undefined{"the inline if-expression evaluated to false and no else section was defined"};
  }
  return Undefined{};
}

}  // namespace st::jinja
