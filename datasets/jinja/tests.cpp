// jinja2's builtin tests (jinja2/tests.py), used by `is` and select/reject.
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "common/error.h"
#include "datasets/jinja/builtins.h"
#include "datasets/jinja/operators.h"
#include "datasets/jinja/strings.h"

namespace st::jinja {

namespace {

using TestFn = std::function<bool(const Value&, const std::vector<Value>&)>;

const Value& arg(const std::vector<Value>& a, size_t i, const char* test) {
  if (i >= a.size() || a[i].is_undefined()) fail("test '", test, "' is missing an argument");
  return a[i];
}

// Python `is`: singletons, small ints and shared objects.
bool same_object(const Value& a, const Value& b) {
  if (a.data.index() != b.data.index()) return false;
  if (a.is_none() || a.is_undefined()) return a.is_none();
  if (a.is_bool()) return a.as_int() == b.as_int();
  if (a.is_int()) return a.as_int() == b.as_int() && a.as_int() >= -5 && a.as_int() <= 256;  // CPython's cache
  if (a.is_seq()) return &a.seq() == &b.seq();
  if (a.is_map() || a.is_namespace()) return &a.map() == &b.map();
  if (a.is_object()) return &a.object() == &b.object();
  return false;  // str/float identity depends on CPython internals
}

bool is_sequence(const Value& v) {
  if (v.is_string() || v.is_map() || v.is_undefined()) return true;  // len() and __getitem__ exist
  return v.is_seq() && v.seq().kind != Seq::Kind::Iterator && v.seq().kind < Seq::Kind::DictKeys;
}

const std::unordered_map<std::string, TestFn>& test_table() {
  static const std::unordered_map<std::string, TestFn> table = [] {
    std::unordered_map<std::string, TestFn> t;
    using A = const std::vector<Value>&;
    t["defined"] = [](const Value& v, A) { return !v.is_undefined(); };
    t["undefined"] = [](const Value& v, A) { return v.is_undefined(); };
    t["none"] = [](const Value& v, A) { return v.is_none(); };
    t["boolean"] = [](const Value& v, A) { return v.is_bool(); };
    t["true"] = [](const Value& v, A) { return v.is_bool() && v.as_int(); };
    t["false"] = [](const Value& v, A) { return v.is_bool() && !v.as_int(); };
    t["integer"] = [](const Value& v, A) { return v.is_int() && !v.is_bool(); };
    t["float"] = [](const Value& v, A) { return v.is_float(); };
    t["number"] = [](const Value& v, A) { return v.is_number(); };  // bool is a Number in Python
    t["string"] = [](const Value& v, A) { return v.is_string(); };
    t["mapping"] = [](const Value& v, A) { return v.is_map(); };
    t["sequence"] = [](const Value& v, A) { return is_sequence(v); };
    t["iterable"] = [](const Value& v, A) {
      return v.is_undefined() || v.is_string() || v.is_seq() || v.is_map() ||
             (v.is_object() && v.object().type_name() == "LoopContext");
    };
    // jinja2's Undefined defines __call__, so it counts as callable.
    t["callable"] = [](const Value& v, A) { return v.is_undefined() || (v.is_object() && v.object().is_callable()); };
    t["sameas"] = [](const Value& v, A a) { return same_object(v, arg(a, 0, "sameas")); };
    t["escaped"] = [](const Value&, A) { return false; };  // nothing is Markup without autoescape
    t["lower"] = [](const Value& v, A) {
      std::string s = to_str(v);
      return pystr::lower(s) == s && pystr::upper(s) != s;
    };
    t["upper"] = [](const Value& v, A) {
      std::string s = to_str(v);
      return pystr::upper(s) == s && pystr::lower(s) != s;
    };
    t["even"] = [](const Value& v, A) { return equal(binary_op("%", v, Value(2)), Value(0)); };
    t["odd"] = [](const Value& v, A) { return equal(binary_op("%", v, Value(2)), Value(1)); };
    t["divisibleby"] = [](const Value& v, A a) { return equal(binary_op("%", v, arg(a, 0, "divisibleby")), Value(0)); };
    t["eq"] = [](const Value& v, A a) { return equal(v, arg(a, 0, "eq")); };
    t["ne"] = [](const Value& v, A a) { return !equal(v, arg(a, 0, "ne")); };
    t["lt"] = [](const Value& v, A a) { return less(v, arg(a, 0, "lt")); };
    t["gt"] = [](const Value& v, A a) { return less(arg(a, 0, "gt"), v); };
    t["le"] = [](const Value& v, A a) { return less(v, arg(a, 0, "le")) || equal(v, a[0]); };
    t["ge"] = [](const Value& v, A a) { return less(arg(a, 0, "ge"), v) || equal(v, a[0]); };
    t["equalto"] = t["eq"];
    t["lessthan"] = t["lt"];
    t["greaterthan"] = t["gt"];
    t["in"] = [](const Value& v, A a) { return contains(arg(a, 0, "in"), v); };
    t["filter"] = [](const Value& v, A) { return v.is_string() && has_filter(v.str()); };
    t["test"] = [](const Value& v, A) { return v.is_string() && has_test(v.str()); };
    return t;
  }();
  return table;
}

}  // namespace

bool is_unsupported_test(const std::string&) { return false; }

bool has_test(const std::string& name) { return test_table().count(name) > 0; }

bool apply_test(Renderer&, const std::string& name, const Value& value, CallArgs& args) {
  auto it = test_table().find(name);
  if (it == test_table().end()) fail("no test named '", name, "'");
  if (!args.keyword.empty()) fail("test '", name, "' takes no keyword arguments");
  return it->second(value, args.positional);
}

}  // namespace st::jinja
