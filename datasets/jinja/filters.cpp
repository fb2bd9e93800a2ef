// jinja2's builtin filters (jinja2/filters.py) plus HF's `tojson`. Filters
// that jinja2 implements as generators (map, select, items, batch, unique,
// reverse of a list) return single-pass iterators, as Python does: printing
// one without |list is an error here rather than a memory address.
#include <algorithm>
#include <cmath>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "common/error.h"
#include "datasets/jinja/builtins.h"
#include "datasets/jinja/json.h"
#include "datasets/jinja/operators.h"
#include "datasets/jinja/strings.h"
#include "datasets/jinja/utf8.h"

namespace st::jinja {

namespace {

using FilterFn = std::function<Value(Renderer&, const Value&, CallArgs&)>;

Value iterator(std::vector<Value> items) { return Value::list(std::move(items), Seq::Kind::Iterator); }

// Default-argument helpers: an unbound parameter is Undefined.
Value or_default(const Value& v, Value dflt) { return v.is_undefined() ? std::move(dflt) : v; }
bool flag(const Value& v) { return !v.is_undefined() && truthy(v); }
int64_t integer(const Value& v, int64_t dflt, const char* what) {
  if (v.is_undefined()) return dflt;
  if (!v.is_int()) fail(what, " must be an integer, not ", v.type_name());
  return v.as_int();
}

// jinja2's make_attrgetter: "a.b.0" looks up item a, then b, then index 0.
std::vector<Value> attribute_parts(const Value& attribute) {
  if (attribute.is_undefined() || attribute.is_none()) return {};
  if (!attribute.is_string()) return {attribute};
  std::vector<Value> parts;
  for (const auto& part : pystr::split(attribute.str(), std::string("."))) {
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    parts.push_back(digits ? Value(static_cast<int64_t>(std::stoll(part))) : Value(part));
  }
  return parts;
}

Value lookup_path(Value item, const std::vector<Value>& parts, const Value& dflt = Value()) {
  for (const auto& part : parts) {
    item = get_item(item, part);
    if (!dflt.is_undefined() && !dflt.is_none() && item.is_undefined()) item = dflt;
  }
  return item;
}

Value ignore_case(const Value& v) { return v.is_string() ? Value(pystr::lower(v.str())) : v; }

// sort/dictsort/min/max keys: the attribute value, lowercased unless case_sensitive.
std::function<Value(const Value&)> key_function(const Value& attribute, bool case_sensitive) {
  auto parts = attribute_parts(attribute);
  return [parts, case_sensitive](const Value& item) {
    Value key = lookup_path(item, parts);
    return case_sensitive ? key : ignore_case(key);
  };
}

// Python's sorted(): stable; `less` raises on unorderable values as Python does.
std::vector<Value> sorted(std::vector<Value> items, const std::function<Value(const Value&)>& key, bool reverse) {
  std::vector<std::pair<Value, Value>> keyed;
  for (auto& item : items) keyed.emplace_back(key(item), std::move(item));
  std::stable_sort(keyed.begin(), keyed.end(), [reverse](const auto& a, const auto& b) {
    return reverse ? less(b.first, a.first) : less(a.first, b.first);
  });
  std::vector<Value> out;
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return out;
}

Value min_max(const Value& value, CallArgs& args, bool want_max, const char* name) {
  auto a = bind_args(name, args, {"case_sensitive", "attribute"});
  std::vector<Value> items = iterate(value);
  if (items.empty()) return Undefined{"No aggregated item, sequence was empty."};
  auto key = key_function(a[1], flag(a[0]));
  size_t best = 0;
  Value best_key = key(items[0]);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = key(items[i]);
    if (want_max ? less(best_key, k) : less(k, best_key)) {
      best = i;
      best_key = k;
    }
  }
  return items[best];
}

// select/reject/selectattr/rejectattr: keep items whose test result equals `keep`.
Value select(Renderer& r, const Value& value, CallArgs& args, bool keep, bool by_attribute) {
  if (!truthy(value)) return iterator({});
  size_t off = by_attribute ? 1 : 0;
  if (by_attribute && args.positional.empty()) fail("missing parameter for attribute name");
  std::vector<Value> parts = by_attribute ? attribute_parts(args.positional[0]) : std::vector<Value>{};
  std::optional<std::string> test;
  CallArgs test_args;
  if (args.positional.size() > off) {
    const Value& name = args.positional[off];
    if (!name.is_string()) fail("test name must be a string");
    test = name.str();
    if (!has_test(*test)) fail(is_unsupported_test(*test) ? "unsupported test '" : "no test named '", *test, "'");
    test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(off + 1), args.positional.end());
  }
  test_args.keyword = args.keyword;
  std::vector<Value> out;
  for (const auto& item : iterate(value)) {
    Value subject = lookup_path(item, parts);
    CallArgs call_args = test_args;
    bool passed = test ? apply_test(r, *test, subject, call_args) : truthy(subject);
    if (passed == keep) out.push_back(item);
  }
  return iterator(std::move(out));
}

Value map_filter(Renderer& r, const Value& value, CallArgs& args) {
  if (!truthy(value)) return iterator({});
  std::vector<Value> out;
  if (args.positional.empty()) {
    Value attribute, dflt;
    for (auto& [key, v] : args.keyword) {
      if (key == "attribute") attribute = v;
      else if (key == "default") dflt = v;
      else fail("unexpected keyword argument '", key, "'");
    }
    if (attribute.is_undefined()) fail("map requires a filter argument");
    auto parts = attribute_parts(attribute);
    for (const auto& item : iterate(value)) out.push_back(lookup_path(item, parts, dflt));
    return iterator(std::move(out));
  }
  const Value& name = args.positional[0];
  if (!name.is_string()) fail("map: filter name must be a string");
  if (!has_filter(name.str()))
    fail(is_unsupported_filter(name.str()) ? "unsupported filter '" : "no filter named '", name.str(), "'");
  CallArgs filter_args;
  filter_args.positional.assign(args.positional.begin() + 1, args.positional.end());
  filter_args.keyword = args.keyword;
  for (const auto& item : iterate(value)) {
    CallArgs call_args = filter_args;
    out.push_back(apply_filter(r, name.str(), item, call_args));
  }
  return iterator(std::move(out));
}

// Python int(str, base): optional sign, underscores between digits, surrounding whitespace.
std::optional<int64_t> parse_int(const std::string& text, int64_t base) {
  std::string s = pystr::strip(text, std::nullopt);
  std::string digits;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size() && std::isalnum(static_cast<unsigned char>(s[i - 1]))) continue;
    digits += s[i];
  }
  if (digits.empty() || base < 2 || base > 36) return std::nullopt;
  size_t used = 0;
  try {
    long long v = std::stoll(digits, &used, static_cast<int>(base));
    if (used != digits.size() || std::isspace(static_cast<unsigned char>(digits[0]))) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Python float(str).
std::optional<double> parse_float(const std::string& text) {
  std::string s = pystr::strip(text, std::nullopt);
  std::string lower = pystr::lower(s);
  std::string body = lower[0] == '+' || lower[0] == '-' ? lower.substr(1) : lower;
  if (body == "inf" || body == "infinity" || body == "nan") {
    double v = body == "nan" ? NAN : INFINITY;
    return lower[0] == '-' ? -v : v;
  }
  if (s.empty() || s.find_first_not_of("0123456789+-.eE_") != std::string::npos) return std::nullopt;
  std::string clean;
  for (char c : s)
    if (c != '_') clean += c;
  char* end = nullptr;
  double v = std::strtod(clean.c_str(), &end);
  if (end != clean.c_str() + clean.size()) return std::nullopt;
  return v;
}

Value int_filter(const Value& value, CallArgs& args) {
  auto a = bind_args("int", args, {"default", "base"});
  Value dflt = or_default(a[0], Value(0));
  require_defined(value);
  if (value.is_int()) return value.as_int();
  if (value.is_float()) {
    double f = value.as_float();
    if (!std::isfinite(f)) return dflt;
    if (std::fabs(f) >= 9.2e18) fail("integer overflow (beyond 64 bits)");
    return static_cast<int64_t>(std::trunc(f));
  }
  if (value.is_string()) {
    if (auto i = parse_int(value.str(), integer(a[1], 10, "base"))) return *i;
    if (auto f = parse_float(value.str()); f && std::isfinite(*f)) return static_cast<int64_t>(std::trunc(*f));
  }
  return dflt;
}

Value float_filter(const Value& value, CallArgs& args) {
  auto a = bind_args("float", args, {"default"});
  require_defined(value);
  if (value.is_number()) return value.as_float();
  if (value.is_string())
    if (auto f = parse_float(value.str())) return *f;
  return or_default(a[0], Value(0.0));
}

std::string require_str(const Value& v, const char* filter) {
  if (!v.is_string()) {
    require_defined(v);
    fail(filter, " filter expects a string, got ", v.type_name());
  }
  return v.str();
}

Value indent_filter(const Value& value, CallArgs& args) {
  auto a = bind_args("indent", args, {"width", "first", "blank"});
  std::string s = require_str(value, "indent");
  std::string indention = a[0].is_string() ? a[0].str() : std::string(static_cast<size_t>(std::max<int64_t>(0, integer(a[0], 4, "width"))), ' ');
  s += "\n";
  std::vector<std::string> lines = pystr::splitlines(s);
  std::string rv;
  if (flag(a[2])) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + indention : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : indention) + lines[i];
  }
  if (flag(a[1])) rv = indention + rv;
  return rv;
}

// jinja2's title: words start after '-', whitespace or an opening bracket.
std::string title_filter(const std::string& s) {
  std::u32string cps = utf8::decode(s);
  auto separator = [](char32_t c) { return utf8::is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<'; };
  for (size_t i = 0; i < cps.size(); ++i) {
    bool starts_run = i == 0 || separator(cps[i]) != separator(cps[i - 1]);
    cps[i] = starts_run ? utf8::to_upper(cps[i]) : utf8::to_lower(cps[i]);
  }
  return utf8::encode(cps);
}

Value tojson_filter(const Value& value, CallArgs& args) {
  auto a = bind_args("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonDumpOptions o;
  o.ensure_ascii = flag(a[0]);
  const Value& indent = a[1];
  if (!indent.is_undefined() && !indent.is_none()) {
    o.pretty = true;
    if (indent.is_string()) o.indent = indent.str();
    else o.indent = std::string(static_cast<size_t>(std::max<int64_t>(0, integer(indent, 0, "indent"))), ' ');
  }
  o.item_separator = o.pretty ? "," : ", ";
  if (!a[2].is_undefined() && !a[2].is_none()) {
    std::vector<Value> seps = iterate(a[2]);
    if (seps.size() != 2 || !seps[0].is_string() || !seps[1].is_string())
      fail("tojson separators must be a pair of strings");
    o.item_separator = seps[0].str();
    o.key_separator = seps[1].str();
  }
  o.sort_keys = flag(a[3]);
  return dump_json(value, o);
}

const std::unordered_map<std::string, FilterFn>& filter_table() {
  static const std::unordered_map<std::string, FilterFn> table = [] {
    std::unordered_map<std::string, FilterFn> t;
    t["abs"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      bind_args("abs", args, {});
      if (v.is_int()) return v.as_int() < 0 ? unary_op("-", v) : Value(v.as_int());
      if (v.is_float()) return std::fabs(v.as_float());
      require_defined(v);
      fail("bad operand type for abs(): '", v.type_name(), "'");
    };
    t["attr"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      auto a = bind_args("attr", args, {"name"}, 1);
      std::string name = to_str(a[0]);
      // attr only looks at Python attributes, never at dict items.
      if (v.is_map() && name != "items" && name != "keys" && name != "values" && name != "get")
        return Undefined{"'dict object' has no attribute '" + name + "'"};
      return get_attribute(v, name);
    };
    t["batch"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      auto a = bind_args("batch", args, {"linecount", "fill_with"}, 1);
      int64_t n = integer(a[0], 1, "linecount");
      if (n <= 0) fail("batch linecount must be positive");
      std::vector<Value> out, row;
      for (auto& item : iterate(v)) {
        if (static_cast<int64_t>(row.size()) == n) out.push_back(Value::list(std::exchange(row, {})));
        row.push_back(item);
      }
      if (!row.empty()) {
        if (!a[1].is_undefined() && !a[1].is_none())
          while (static_cast<int64_t>(row.size()) < n) row.push_back(a[1]);
        out.push_back(Value::list(std::move(row)));
      }
      return iterator(std::move(out));
    };
    t["capitalize"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      bind_args("capitalize", args, {});
      return pystr::capitalize(to_str(v));
    };
    t["center"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      auto a = bind_args("center", args, {"width"});
      return pystr::center(to_str(v), integer(a[0], 80, "width"));
    };
    t["length"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      bind_args("length", args, {});
      return static_cast<int64_t>(length(v));
    };
    t["count"] = t["length"];
    t["default"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      auto a = bind_args("default", args, {"default_value", "boolean"});
      if (v.is_undefined() || (flag(a[1]) && !truthy(v))) return or_default(a[0], Value(""));
      return v;
    };
    t["d"] = t["default"];
    t["dictsort"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      auto a = bind_args("dictsort", args, {"case_sensitive", "by", "reverse"});
      if (!v.is_map()) fail("dictsort expects a mapping, got ", v.type_name());
      std::string by = a[1].is_undefined() ? "key" : to_str(a[1]);
      if (by != "key" && by != "value") fail("You can only sort by either \"key\" or \"value\"");
      std::vector<Value> pairs;
      for (const auto& [k, val] : v.map().entries) pairs.push_back(Value::list({k, val}, Seq::Kind::Tuple));
      bool case_sensitive = flag(a[0]);
      size_t pos = by == "key" ? 0 : 1;
      auto key = [pos, case_sensitive](const Value& pair) {
        const Value& x = pair.seq().items[pos];
        return case_sensitive ? x : ignore_case(x);
      };
      return Value::list(sorted(std::move(pairs), key, flag(a[2])));
    };
    t["first"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      bind_args("first", args, {});
      if (v.is_seq() && v.seq().kind == Seq::Kind::Iterator) {
        Seq& s = v.seq();
        if (s.consumed < s.items.size()) return s.items[s.consumed++];
        return Undefined{"No first item, sequence was empty."};
      }
      std::vector<Value> items = iterate(v);
      if (items.empty()) return Undefined{"No first item, sequence was empty."};
      return items[0];
    };
    t["last"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      bind_args("last", args, {});
      if (v.is_seq() && v.seq().kind == Seq::Kind::Iterator) fail("'generator' object is not reversible");
      if (v.is_seq() && v.seq().kind == Seq::Kind::DictValues) fail("'dict_values' object is not reversible");
      std::vector<Value> items = iterate(v);
      if (items.empty()) return Undefined{"No last item, sequence was empty."};
      return items.back();
    };
    t["float"] = [](Renderer&, const Value& v, CallArgs& args) { return float_filter(v, args); };
    t["int"] = [](Renderer&, const Value& v, CallArgs& args) { return int_filter(v, args); };
    t["indent"] = [](Renderer&, const Value& v, CallArgs& args) { return indent_filter(v, args); };
    t["items"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      bind_args("items", args, {});
      if (v.is_undefined()) return iterator({});
      if (!v.is_map()) fail("Can only get item pairs from a mapping.");
      std::vector<Value> pairs;
      for (const auto& [k, val] : v.map().entries) pairs.push_back(Value::list({k, val}, Seq::Kind::Tuple));
      return iterator(std::move(pairs));
    };
    t["join"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      auto a = bind_args("join", args, {"d", "attribute"});
      std::string sep = a[0].is_undefined() ? "" : to_str(a[0]);
      auto parts = attribute_parts(a[1]);
      std::string out;
      bool first = true;
      for (const auto& item : iterate(v)) {
        if (!first) out += sep;
        out += to_str(lookup_path(item, parts));
        first = false;
      }
      return out;
    };
    t["list"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      bind_args("list", args, {});
      return Value::list(iterate(v));
    };
    t["lower"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      bind_args("lower", args, {});
      return pystr::lower(to_str(v));
    };
    t["upper"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      bind_args("upper", args, {});
      return pystr::upper(to_str(v));
    };
    t["map"] = map_filter;
    t["max"] = [](Renderer&, const Value& v, CallArgs& args) { return min_max(v, args, true, "max"); };
    t["min"] = [](Renderer&, const Value& v, CallArgs& args) { return min_max(v, args, false, "min"); };
    t["select"] = [](Renderer& r, const Value& v, CallArgs& args) { return select(r, v, args, true, false); };
    t["reject"] = [](Renderer& r, const Value& v, CallArgs& args) { return select(r, v, args, false, false); };
    t["selectattr"] = [](Renderer& r, const Value& v, CallArgs& args) { return select(r, v, args, true, true); };
    t["rejectattr"] = [](Renderer& r, const Value& v, CallArgs& args) { return select(r, v, args, false, true); };
    t["replace"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      auto a = bind_args("replace", args, {"old", "new", "count"}, 2);
      int64_t count = a[2].is_undefined() || a[2].is_none() ? -1 : integer(a[2], -1, "count");
      return pystr::replace(to_str(v), to_str(a[0]), to_str(a[1]), count);
    };
    t["reverse"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      bind_args("reverse", args, {});
      if (v.is_string()) {
        std::u32string cps = utf8::decode(v.str());
        std::reverse(cps.begin(), cps.end());
        return utf8::encode(cps);
      }
      if (!v.is_undefined() && !v.is_seq() && !v.is_map()) fail("argument must be iterable");
      bool was_iterator = v.is_seq() && v.seq().kind == Seq::Kind::Iterator;
      std::vector<Value> items = iterate(v);
      std::reverse(items.begin(), items.end());
      // reversed() of a sequence is a single-pass iterator; a generator is first turned into a list.
      return was_iterator ? Value::list(std::move(items)) : iterator(std::move(items));
    };
    t["round"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      auto a = bind_args("round", args, {"precision", "method"});
      int64_t precision = integer(a[0], 0, "precision");
      std::string method = a[1].is_undefined() ? "common" : to_str(a[1]);
      if (method == "common") return python_round(v, precision);
      if (method != "ceil" && method != "floor") fail("method must be common, ceil or floor");
      require_defined(v);
      if (!v.is_number()) fail("must be real number, not ", v.type_name());
      double scale = std::pow(10.0, static_cast<double>(precision));
      double x = v.as_float() * scale;
      return (method == "ceil" ? std::ceil(x) : std::floor(x)) / scale;
    };
    t["safe"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      bind_args("safe", args, {});
      return to_str(v);
    };
    t["sort"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      auto a = bind_args("sort", args, {"reverse", "case_sensitive", "attribute"});
      // Several comma-separated attributes sort by each in turn (a list key).
      std::vector<std::function<Value(const Value&)>> keys;
      if (a[2].is_string() && a[2].str().find(',') != std::string::npos) {
        for (const auto& part : pystr::split(a[2].str(), std::string(",")))
          keys.push_back(key_function(Value(part), flag(a[1])));
      } else {
        keys.push_back(key_function(a[2], flag(a[1])));
      }
      auto key = [keys](const Value& item) {
        std::vector<Value> k;
        for (const auto& f : keys) k.push_back(f(item));
        return Value::list(std::move(k));
      };
      return Value::list(sorted(iterate(v), key, flag(a[0])));
    };
    t["string"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      bind_args("string", args, {});
      return to_str(v);
    };
    t["sum"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      auto a = bind_args("sum", args, {"attribute", "start"});
      auto parts = attribute_parts(a[0]);
      Value total = or_default(a[1], Value(0));
      for (const auto& item : iterate(v)) total = binary_op("+", total, lookup_path(item, parts));
      return total;
    };
    t["title"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      bind_args("title", args, {});
      return title_filter(to_str(v));
    };
    t["tojson"] = [](Renderer&, const Value& v, CallArgs& args) { return tojson_filter(v, args); };
    t["trim"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      auto a = bind_args("trim", args, {"chars"});
      std::optional<std::string> chars;
      if (!a[0].is_undefined() && !a[0].is_none()) chars = to_str(a[0]);
      return pystr::strip(to_str(v), chars);
    };
    t["unique"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      auto a = bind_args("unique", args, {"case_sensitive", "attribute"});
      auto key = key_function(a[1], flag(a[0]));
      std::vector<Value> seen, out;
      for (const auto& item : iterate(v)) {
        Value k = key(item);
        if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equal(s, k); })) continue;
        seen.push_back(k);
        out.push_back(item);
      }
      return iterator(std::move(out));
    };
    t["wordcount"] = [](Renderer&, const Value& v, CallArgs& args) -> Value {
      bind_args("wordcount", args, {});
      int64_t words = 0;
      bool in_word = false;
      for (char32_t c : utf8::decode(to_str(v))) {
        bool w = utf8::is_alpha(c) || utf8::is_digit(c) || c == '_';  // regex \w
        if (w && !in_word) ++words;
        in_word = w;
      }
      return words;
    };
    return t;
  }();
  return table;
}

}  // namespace

bool is_unsupported_filter(const std::string& name) {
  static const std::unordered_set<std::string> names = {
      "e", "escape", "forceescape", "filesizeformat", "format", "groupby", "pprint", "random", "slice",
      "striptags", "truncate", "urlencode", "urlize", "wordwrap", "xmlattr"};
  return names.count(name) > 0;
}

bool has_filter(const std::string& name) { return filter_table().count(name) > 0; }

Value apply_filter(Renderer& r, const std::string& name, const Value& value, CallArgs& args) {
  auto it = filter_table().find(name);
  if (it == filter_table().end()) fail("no filter named '", name, "'");
  return it->second(r, value, args);
}

}  // namespace st::jinja
