// The global functions HF's environment provides, and argument binding
// shared by every builtin.
#include <chrono>
#include <ctime>

#include "common/error.h"
#include "datasets/jinja/builtins.h"
#include "datasets/jinja/objects.h"

namespace st::jinja {

std::vector<Value> bind_args(const std::string& function, CallArgs& args, const std::vector<std::string>& params,
                             size_t required) {
  if (args.positional.size() > params.size())
    fail(function, "() takes at most ", params.size(), " argument(s) (", args.positional.size(), " given)");
  std::vector<Value> out(params.size());
  std::vector<bool> given(params.size(), false);
  for (size_t i = 0; i < args.positional.size(); ++i) {
    out[i] = args.positional[i];
    given[i] = true;
  }
  for (auto& [key, value] : args.keyword) {
    auto it = std::find(params.begin(), params.end(), key);
    if (it == params.end()) fail(function, "() got an unexpected keyword argument '", key, "'");
    size_t i = static_cast<size_t>(it - params.begin());
    if (given[i]) fail(function, "() got multiple values for argument '", key, "'");
    out[i] = value;
    given[i] = true;
  }
  for (size_t i = 0; i < required; ++i)
    if (!given[i]) fail(function, "() missing required argument '", params[i], "'");
  return out;
}

namespace {

// jinja2's sandbox refuses ranges longer than this (MAX_RANGE).
constexpr int64_t kMaxRange = 100000;

Value range(Renderer&, CallArgs& args) {
  if (!args.keyword.empty()) fail("range() takes no keyword arguments");
  const auto& a = args.positional;
  if (a.empty() || a.size() > 3) fail("range expected 1 to 3 arguments, got ", a.size());
  for (const auto& v : a)
    if (!v.is_int()) {
      require_defined(v);
      fail("'", v.type_name(), "' object cannot be interpreted as an integer");
    }
  int64_t start = a.size() > 1 ? a[0].as_int() : 0;
  int64_t stop = a.size() > 1 ? a[1].as_int() : a[0].as_int();
  int64_t step = a.size() > 2 ? a[2].as_int() : 1;
  if (step == 0) fail("range() arg 3 must not be zero");
  std::vector<Value> items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (static_cast<int64_t>(items.size()) >= kMaxRange)
      fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (", kMaxRange, ").");
    items.emplace_back(i);
  }
  Value r = Value::list(std::move(items), Seq::Kind::Range);
  r.seq().range_start = start;
  r.seq().range_stop = stop;
  r.seq().range_step = step;
  return r;
}

// dict(mapping_or_pairs, **kwargs), as Python's dict().
Value make_dict(CallArgs& args, const char* function) {
  if (args.positional.size() > 1) fail(function, " expected at most 1 argument, got ", args.positional.size());
  Value d = Value::dict();
  if (!args.positional.empty()) {
    const Value& src = args.positional[0];
    if (src.is_map() || src.is_namespace()) {
      for (const auto& [k, v] : src.map().entries) d.map().set(k, v);
    } else {
      for (const auto& pair : iterate(src)) {
        std::vector<Value> kv = iterate(pair);
        if (kv.size() != 2) fail("dictionary update sequence element has length ", kv.size(), "; 2 is required");
        d.map().set(kv[0], kv[1]);
      }
    }
  }
  for (auto& [k, v] : args.keyword) d.map().set(k, v);
  return d;
}

Value namespace_(Renderer&, CallArgs& args) {
  Value ns = make_dict(args, "namespace");
  ns.map().is_namespace = true;
  for (const auto& [k, v] : ns.map().entries)
    if (k.is_string() && !k.str().empty() && k.str()[0] == '_')
      fail("chat templates cannot store underscore-prefixed attributes on a namespace, but got '", k.str(), "'");
  return ns;
}

Value raise_exception(Renderer&, CallArgs& args) {
  auto a = bind_args("raise_exception", args, {"message"}, 1);
  fail("template raised an exception: ", to_str(a[0]));
}

Value strftime_now(Renderer&, CallArgs& args) {
  auto a = bind_args("strftime_now", args, {"format"}, 1);
  if (!a[0].is_string()) fail("strftime() argument 1 must be str, not ", a[0].type_name());
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm local{};
  localtime_r(&now, &local);
  char buf[512];
  size_t n = std::strftime(buf, sizeof buf, a[0].str().c_str(), &local);
  if (n == 0 && !a[0].str().empty()) fail("strftime_now: format too long or empty result");
  return std::string(buf, n);
}

}  // namespace

std::optional<Value> global(const std::string& name) {
  using Fn = Value (*)(Renderer&, CallArgs&);
  Fn fn = nullptr;
  if (name == "range") fn = range;
  else if (name == "namespace") fn = namespace_;
  else if (name == "dict") fn = [](Renderer&, CallArgs& args) { return make_dict(args, "dict"); };
  else if (name == "raise_exception") fn = raise_exception;
  else if (name == "strftime_now") fn = strftime_now;
  else if (name == "lipsum" || name == "cycler" || name == "joiner") fail("unsupported global '", name, "'");
  if (!fn) return std::nullopt;
  return Value(std::make_shared<Builtin>("function", fn));
}

}  // namespace st::jinja
