// Attribute and item access (jinja2's sandboxed getattr/getitem) and the
// Python methods of str, dict and list that templates call.
#include <set>

#include "common/error.h"
#include "datasets/jinja/builtins.h"
#include "datasets/jinja/objects.h"
#include "datasets/jinja/strings.h"
#include "datasets/jinja/utf8.h"

namespace st::jinja {

namespace {

// Python methods that exist but that we do not implement: calling them must
// not silently render "" (what a missing attribute does), so they are errors.
const std::set<std::string> kOtherStrMethods = {
    "casefold", "encode", "expandtabs", "format", "format_map", "index", "isascii", "isdecimal", "isidentifier",
    "isnumeric", "isprintable", "istitle", "ljust", "maketrans", "partition", "rindex", "rjust", "rpartition",
    "swapcase", "translate", "zfill"};
const std::set<std::string> kOtherDictMethods = {"copy", "fromkeys"};
const std::set<std::string> kOtherListMethods = {"copy"};
const std::set<std::string> kOtherNumberAttrs = {"real", "imag", "numerator", "denominator", "conjugate",
                                                 "bit_length", "bit_count", "to_bytes", "as_integer_ratio",
                                                 "is_integer", "hex", "fromhex"};
// The sandbox refuses these (ImmutableSandboxedEnvironment): calling them raises.
const std::set<std::string> kMutatingDictMethods = {"clear", "pop", "popitem", "setdefault", "update"};
const std::set<std::string> kMutatingListMethods = {"append", "clear", "extend", "insert", "pop", "remove",
                                                    "reverse", "sort"};

std::string str_arg(const std::vector<Value>& a, size_t i, const char* method) {
  if (i >= a.size() || !a[i].is_string())
    fail(method, "() argument must be str, not ", i < a.size() ? a[i].type_name() : "missing");
  return a[i].str();
}

std::optional<std::string> optional_str(const std::vector<Value>& a, size_t i, const char* method) {
  if (i >= a.size() || a[i].is_none() || a[i].is_undefined()) return std::nullopt;
  return str_arg(a, i, method);
}

int64_t int_arg(const std::vector<Value>& a, size_t i, int64_t dflt) {
  if (i >= a.size() || a[i].is_undefined()) return dflt;
  if (!a[i].is_int()) fail("'", a[i].type_name(), "' object cannot be interpreted as an integer");
  return a[i].as_int();
}

Value string_list(const std::vector<std::string>& parts) {
  std::vector<Value> out(parts.begin(), parts.end());
  return Value::list(std::move(out));
}

bool all_chars(const std::string& s, bool (*pred)(char32_t)) {
  std::u32string cps = utf8::decode(s);
  if (cps.empty()) return false;
  for (char32_t c : cps)
    if (!pred(c)) return false;
  return true;
}

// startswith/endswith accept a str or a tuple of str.
bool affix(const std::string& s, const Value& arg, bool prefix, const char* method) {
  std::vector<Value> options = arg.is_seq() && arg.seq().kind == Seq::Kind::Tuple ? arg.seq().items : std::vector<Value>{arg};
  for (const auto& o : options) {
    if (!o.is_string()) fail(method, " first arg must be str or a tuple of str, not ", o.type_name());
    const std::string& a = o.str();
    if (a.size() > s.size()) continue;
    if (prefix ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0) return true;
  }
  return false;
}

Value call_str_method(const std::string& s, const std::string& name, CallArgs& args) {
  const char* m = name.c_str();
  auto bind = [&](const std::vector<std::string>& params, size_t required = 0) {
    return bind_args("str." + name, args, params, required);
  };
  using pystr::Side;
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    auto a = bind({"chars"});
    Side side = name == "strip" ? Side::Both : name == "lstrip" ? Side::Left : Side::Right;
    return pystr::strip(s, optional_str(a, 0, m), side);
  }
  if (name == "split" || name == "rsplit") {
    auto a = bind({"sep", "maxsplit"});
    auto sep = optional_str(a, 0, m);
    int64_t maxsplit = int_arg(a, 1, -1);
    return string_list(name == "split" ? pystr::split(s, sep, maxsplit) : pystr::rsplit(s, sep, maxsplit));
  }
  if (name == "splitlines") {
    auto a = bind({"keepends"});
    if (truthy(a[0])) fail("unsupported: str.splitlines(keepends=True)");
    return string_list(pystr::splitlines(s));
  }
  if (name == "startswith" || name == "endswith") {
    auto a = bind({"prefix"}, 1);
    return affix(s, a[0], name == "startswith", m);
  }
  if (name == "upper") return bind({}), pystr::upper(s);
  if (name == "lower") return bind({}), pystr::lower(s);
  if (name == "title") return bind({}), pystr::title(s);
  if (name == "capitalize") return bind({}), pystr::capitalize(s);
  if (name == "replace") {
    auto a = bind({"old", "new", "count"}, 2);
    return pystr::replace(s, str_arg(a, 0, m), str_arg(a, 1, m), int_arg(a, 2, -1));
  }
  if (name == "find" || name == "rfind") {
    auto a = bind({"sub"}, 1);
    return pystr::find(s, str_arg(a, 0, m), name == "rfind");
  }
  if (name == "count") {
    auto a = bind({"sub"}, 1);
    return pystr::count(s, str_arg(a, 0, m));
  }
  if (name == "center") {
    auto a = bind({"width", "fillchar"}, 1);
    return pystr::center(s, int_arg(a, 0, 0), optional_str(a, 1, m).value_or(" "));
  }
  if (name == "removeprefix" || name == "removesuffix") {
    auto a = bind({"affix"}, 1);
    std::string x = str_arg(a, 0, m);
    if (name == "removeprefix") return s.compare(0, x.size(), x) == 0 ? s.substr(x.size()) : s;
    return x.size() <= s.size() && s.compare(s.size() - x.size(), x.size(), x) == 0 ? s.substr(0, s.size() - x.size()) : s;
  }
  if (name == "join") {
    auto a = bind({"iterable"}, 1);
    std::string out;
    bool first = true;
    for (const auto& item : iterate(a[0])) {
      if (!item.is_string()) fail("sequence item: expected str instance, ", item.type_name(), " found");
      if (!first) out += s;
      out += item.str();
      first = false;
    }
    return out;
  }
  if (name == "isdigit") return bind({}), all_chars(s, utf8::is_digit);
  if (name == "isalpha") return bind({}), all_chars(s, utf8::is_alpha);
  if (name == "isalnum") return bind({}), all_chars(s, [](char32_t c) { return utf8::is_alpha(c) || utf8::is_digit(c); });
  if (name == "isspace") return bind({}), all_chars(s, utf8::is_space);
  if (name == "islower" || name == "isupper") {
    bind({});
    bool any_cased = false;
    for (char32_t c : utf8::decode(s)) {
      if (!utf8::is_cased(c)) continue;
      any_cased = true;
      if ((name == "islower" ? utf8::to_lower(c) : utf8::to_upper(c)) != c) return false;
    }
    return any_cased;
  }
  fail("unsupported method str.", name);
}

Value dict_view(const Map& m, Seq::Kind kind) {
  std::vector<Value> out;
  for (const auto& [k, v] : m.entries) {
    if (kind == Seq::Kind::DictKeys) out.push_back(k);
    else if (kind == Seq::Kind::DictValues) out.push_back(v);
    else out.push_back(Value::list({k, v}, Seq::Kind::Tuple));
  }
  return Value::list(std::move(out), kind);
}

Value call_dict_method(const Map& m, const std::string& name, CallArgs& args) {
  if (name == "items" || name == "keys" || name == "values") {
    bind_args("dict." + name, args, {});
    return dict_view(m, name == "items" ? Seq::Kind::DictItems : name == "keys" ? Seq::Kind::DictKeys : Seq::Kind::DictValues);
  }
  auto a = bind_args("dict.get", args, {"key", "default"}, 1);
  const Value* found = m.find(a[0]);
  if (found) return *found;
  return a[1].is_undefined() ? Value(None{}) : a[1];
}

Value call_list_method(const Seq& s, const std::string& name, CallArgs& args) {
  auto a = bind_args("list." + name, args, {"value"}, 1);
  int64_t n = 0;
  for (size_t i = 0; i < s.items.size(); ++i) {
    if (!equal(s.items[i], a[0])) continue;
    if (name == "index") return static_cast<int64_t>(i);
    ++n;
  }
  if (name == "index") fail("value is not in list");
  return n;
}

Value bound_method(const Value& self, const std::string& name) {
  return Value(std::make_shared<Builtin>("builtin_function_or_method", [self, name](Renderer&, CallArgs& args) -> Value {
    if (self.is_string()) return call_str_method(self.str(), name, args);
    if (self.is_map()) return call_dict_method(self.map(), name, args);
    return call_list_method(self.seq(), name, args);
  }));
}

Undefined missing(const Value& obj, const std::string& name) {
  return Undefined{"'" + obj.type_name() + " object' has no attribute '" + name + "'"};
}

Undefined unsafe(const Value& obj, const std::string& name) {
  return Undefined{"access to attribute '" + name + "' of '" + obj.type_name() + "' object is unsafe."};
}

}  // namespace

Value get_attribute(const Value& obj, const std::string& name) {
  require_defined(obj);
  if (name.size() > 1 && name[0] == '_' && name[1] == '_') return unsafe(obj, name);
  static const std::set<std::string> kStrMethods = {
      "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith", "upper", "lower",
      "title", "capitalize", "replace", "find", "rfind", "count", "center", "removeprefix", "removesuffix", "join",
      "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper"};
  if (obj.is_string()) {
    if (kStrMethods.count(name)) return bound_method(obj, name);
    if (kOtherStrMethods.count(name)) fail("unsupported method str.", name);
    return missing(obj, name);
  }
  if (obj.is_map()) {
    if (name == "items" || name == "keys" || name == "values" || name == "get") return bound_method(obj, name);
    if (kMutatingDictMethods.count(name)) return unsafe(obj, name);
    if (kOtherDictMethods.count(name)) fail("unsupported method dict.", name);
    if (const Value* v = obj.map().find(Value(name))) return *v;
    return missing(obj, name);
  }
  if (obj.is_namespace()) {
    if (const Value* v = obj.map().find(Value(name))) return *v;
    return missing(obj, name);
  }
  if (obj.is_seq() && (obj.seq().kind == Seq::Kind::List || obj.seq().kind == Seq::Kind::Tuple)) {
    if (name == "index" || name == "count") return bound_method(obj, name);
    if (obj.seq().kind == Seq::Kind::List && kMutatingListMethods.count(name)) return unsafe(obj, name);
    if (kOtherListMethods.count(name)) fail("unsupported method list.", name);
    return missing(obj, name);
  }
  if (obj.is_object()) {
    if (auto v = obj.object().attribute(name)) return *v;
    return missing(obj, name);
  }
  if (obj.is_number() && kOtherNumberAttrs.count(name)) fail("unsupported attribute ", obj.type_name(), ".", name);
  return missing(obj, name);
}

Value get_item(const Value& obj, const Value& key) {
  require_defined(obj);
  if (obj.is_map()) {
    if (const Value* v = obj.map().find(key)) return *v;
  } else if (key.is_int() && (obj.is_string() || (obj.is_seq() && obj.seq().kind != Seq::Kind::Iterator &&
                                                  obj.seq().kind < Seq::Kind::DictKeys))) {
    int64_t i = key.as_int();
    if (obj.is_string()) {
      std::u32string cps = utf8::decode(obj.str());
      auto n = static_cast<int64_t>(cps.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return utf8::encode(std::u32string(1, cps[static_cast<size_t>(i)]));
    } else {
      const auto& items = obj.seq().items;
      auto n = static_cast<int64_t>(items.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return items[static_cast<size_t>(i)];
    }
    return Undefined{"'" + obj.type_name() + " object' has no element " + std::to_string(key.as_int())};
  }
  // Items failed: jinja2 falls back to the attribute of that name.
  if (key.is_string()) return get_attribute(obj, key.str());
  return Undefined{"'" + obj.type_name() + " object' has no element " + repr(key)};
}

}  // namespace st::jinja
