#include "datasets/jinja/value.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "common/error.h"
#include "datasets/jinja/utf8.h"

namespace st::jinja {

const Value* Map::find(const Value& key) const {
  for (const auto& [k, v] : entries)
    if (equal(k, key)) return &v;
  return nullptr;
}

Value* Map::find(const Value& key) {
  return const_cast<Value*>(static_cast<const Map*>(this)->find(key));
}

void Map::set(Value key, Value value) {
  if (Value* slot = find(key)) {
    *slot = std::move(value);
  } else {
    entries.emplace_back(std::move(key), std::move(value));
  }
}

Value Object::call(Renderer&, CallArgs&) { fail("'", type_name(), "' object is not callable"); }

std::optional<Value> Object::attribute(const std::string&) const { return std::nullopt; }

std::string Object::repr() const {
  // Python would print a memory address here: no stable rendering exists.
  fail("cannot print a ", type_name(), " object (Python would print its memory address)");
}

Value Value::list(std::vector<Value> items, Seq::Kind kind) {
  auto s = std::make_shared<Seq>();
  s->kind = kind;
  s->items = std::move(items);
  return Value(std::move(s));
}

Value Value::dict() { return Value(std::make_shared<Map>()); }

int64_t Value::as_int() const { return is_bool() ? std::get<bool>(data) : std::get<int64_t>(data); }

double Value::as_float() const { return is_float() ? std::get<double>(data) : static_cast<double>(as_int()); }

std::string Value::type_name() const {
  switch (data.index()) {
    case 0: return "Undefined";
    case 1: return "NoneType";
    case 2: return "bool";
    case 3: return "int";
    case 4: return "float";
    case 5: return "str";
    case 6:
      switch (seq().kind) {
        case Seq::Kind::List: return "list";
        case Seq::Kind::Tuple: return "tuple";
        case Seq::Kind::Iterator: return "generator";
        case Seq::Kind::Range: return "range";
        case Seq::Kind::DictKeys: return "dict_keys";
        case Seq::Kind::DictValues: return "dict_values";
        case Seq::Kind::DictItems: return "dict_items";
      }
      break;
    case 7: return map().is_namespace ? "Namespace" : "dict";
    case 8: return object().type_name();
  }
  return "object";
}

void require_defined(const Value& v) {
  if (v.is_undefined()) throw Error(v.undefined().message.empty() ? "value is undefined" : v.undefined().message);
}

std::string repr_float(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  // Shortest round-trip digits, then Python's layout: positional for
  // 1e-4 <= |f| < 1e16, scientific with a two-digit exponent otherwise.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  int exp = std::stoi(sci.substr(e + 1));
  bool neg = mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  std::string out = neg ? "-" : "";
  if (exp >= -5 + 1 && exp < 16) {
    if (exp < 0) {
      out += "0." + std::string(-exp - 1, '0') + digits;
    } else if (static_cast<size_t>(exp) + 1 >= digits.size()) {
      out += digits + std::string(exp + 1 - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char ebuf[16];
  std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  return out + ebuf;
}

std::string repr_string(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : utf8::decode(s)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (!utf8::is_printable(c)) {
      char buf[16];
      if (c < 0x100) std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      else if (c < 0x10000) std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      else std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(c));
      out += buf;
    } else {
      utf8::append(out, c);
    }
  }
  out += quote;
  return out;
}

namespace {

std::string join_repr(const std::vector<Value>& items, size_t from = 0) {
  std::string out;
  for (size_t i = from; i < items.size(); ++i) {
    if (i > from) out += ", ";
    out += repr(items[i]);
  }
  return out;
}

std::string repr_map(const Map& m) {
  std::string out = "{";
  for (size_t i = 0; i < m.entries.size(); ++i) {
    if (i) out += ", ";
    out += repr(m.entries[i].first) + ": " + repr(m.entries[i].second);
  }
  return out + "}";
}

std::string repr_seq(const Seq& s) {
  switch (s.kind) {
    case Seq::Kind::List: return "[" + join_repr(s.items) + "]";
    case Seq::Kind::Tuple:
      return "(" + join_repr(s.items) + (s.items.size() == 1 ? ",)" : ")");
    case Seq::Kind::Range:
      return "range(" + std::to_string(s.range_start) + ", " + std::to_string(s.range_stop) +
             (s.range_step != 1 ? ", " + std::to_string(s.range_step) : "") + ")";
    case Seq::Kind::DictKeys: return "dict_keys([" + join_repr(s.items) + "])";
    case Seq::Kind::DictValues: return "dict_values([" + join_repr(s.items) + "])";
    case Seq::Kind::DictItems: return "dict_items([" + join_repr(s.items) + "])";
    case Seq::Kind::Iterator: break;
  }
  fail("cannot print a generator (Python would print its memory address); convert it with |list");
}

}  // namespace

std::string repr(const Value& v) {
  if (v.is_string()) return repr_string(v.str());
  if (v.is_undefined()) return "Undefined";
  if (v.is_seq()) return repr_seq(v.seq());
  return to_str(v);
}

std::string to_str(const Value& v) {
  switch (v.data.index()) {
    case 0: return "";
    case 1: return "None";
    case 2: return std::get<bool>(v.data) ? "True" : "False";
    case 3: return std::to_string(std::get<int64_t>(v.data));
    case 4: return repr_float(std::get<double>(v.data));
    case 5: return v.str();
    case 6: return repr_seq(v.seq());
    case 7: return v.map().is_namespace ? "<Namespace " + repr_map(v.map()) + ">" : repr_map(v.map());
    case 8: return v.object().repr();
  }
  return "";
}

bool truthy(const Value& v) {
  switch (v.data.index()) {
    case 0:
    case 1: return false;
    case 2: return std::get<bool>(v.data);
    case 3: return std::get<int64_t>(v.data) != 0;
    case 4: return std::get<double>(v.data) != 0.0;
    case 5: return !v.str().empty();
    case 6: return v.seq().kind == Seq::Kind::Iterator || !v.seq().items.empty();  // generators are always true
    case 7: return v.map().is_namespace || !v.map().entries.empty();
    default: return true;
  }
}

namespace {
bool same_seq_family(const Seq& a, const Seq& b) {
  auto family = [](Seq::Kind k) { return k == Seq::Kind::Range ? Seq::Kind::Range : k; };
  return family(a.kind) == family(b.kind);
}
}  // namespace

bool equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.data.index() != b.data.index()) return false;
  switch (a.data.index()) {
    case 0:
    case 1: return true;  // jinja2: all default Undefineds compare equal
    case 5: return a.str() == b.str();
    case 6: {
      const Seq& x = a.seq();
      const Seq& y = b.seq();
      if (&x == &y) return true;
      if (!same_seq_family(x, y) || x.kind == Seq::Kind::Iterator || x.kind == Seq::Kind::DictValues) return false;
      if (x.items.size() != y.items.size()) return false;
      if (x.kind == Seq::Kind::DictKeys || x.kind == Seq::Kind::DictItems) {  // set-like views
        for (const auto& item : x.items) {
          bool found = false;
          for (const auto& other : y.items) found = found || equal(item, other);
          if (!found) return false;
        }
        return true;
      }
      for (size_t i = 0; i < x.items.size(); ++i)
        if (!equal(x.items[i], y.items[i])) return false;
      return true;
    }
    case 7: {
      const Map& x = a.map();
      const Map& y = b.map();
      if (&x == &y) return true;
      if (x.is_namespace || y.is_namespace || x.entries.size() != y.entries.size()) return false;
      for (const auto& [k, v] : x.entries) {
        const Value* other = y.find(k);
        if (!other || !equal(v, *other)) return false;
      }
      return true;
    }
    case 8: return &a.object() == &b.object();
  }
  return false;
}

bool less(const Value& a, const Value& b) {
  require_defined(a);
  require_defined(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() < b.as_float();
    return a.as_int() < b.as_int();
  }
  // UTF-8 byte order equals code point order, which is Python's str order.
  if (a.is_string() && b.is_string()) return a.str() < b.str();
  if (a.is_seq() && b.is_seq() && a.seq().kind == b.seq().kind &&
      (a.seq().kind == Seq::Kind::List || a.seq().kind == Seq::Kind::Tuple)) {
    const auto& x = a.seq().items;
    const auto& y = b.seq().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equal(x[i], y[i])) return less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  fail("'<' not supported between instances of '", a.type_name(), "' and '", b.type_name(), "'");
}

size_t length(const Value& v) {
  if (v.is_undefined()) return 0;
  if (v.is_string()) return utf8::length(v.str());
  if (v.is_seq() && v.seq().kind != Seq::Kind::Iterator) return v.seq().items.size();
  if (v.is_map()) return v.map().entries.size();
  fail("object of type '", v.type_name(), "' has no len()");
}

std::vector<Value> iterate(const Value& v) {
  if (v.is_undefined()) return {};
  if (v.is_string()) {
    std::vector<Value> out;
    for (char32_t c : utf8::decode(v.str())) out.emplace_back(utf8::encode(std::u32string(1, c)));
    return out;
  }
  if (v.is_seq()) {
    Seq& s = v.seq();
    if (s.kind != Seq::Kind::Iterator) return s.items;
    std::vector<Value> rest(s.items.begin() + static_cast<std::ptrdiff_t>(s.consumed), s.items.end());
    s.consumed = s.items.size();  // a generator yields its items once
    return rest;
  }
  if (v.is_map()) {
    std::vector<Value> keys;
    for (const auto& kv : v.map().entries) keys.push_back(kv.first);
    return keys;
  }
  fail("'", v.type_name(), "' object is not iterable");
}

}  // namespace st::jinja
