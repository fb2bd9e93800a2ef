#include "datasets/jinja/operators.h"

#include <cmath>
#include <cstdio>

#include "common/error.h"
#include "datasets/jinja/utf8.h"

namespace st::jinja {

namespace {

[[noreturn]] void unsupported_operands(const std::string& op, const Value& a, const Value& b) {
  fail("unsupported operand type(s) for ", op, ": '", a.type_name(), "' and '", b.type_name(), "'");
}

// Python ints never overflow; rather than print a wrong number we stop.
template <typename Op>
int64_t checked(Op op, int64_t a, int64_t b) {
  int64_t result;
  if (op(a, b, &result)) fail("integer overflow (beyond 64 bits)");
  return result;
}
bool add(int64_t a, int64_t b, int64_t* r) { return __builtin_add_overflow(a, b, r); }
bool sub(int64_t a, int64_t b, int64_t* r) { return __builtin_sub_overflow(a, b, r); }
bool mul(int64_t a, int64_t b, int64_t* r) { return __builtin_mul_overflow(a, b, r); }

int64_t floor_div(int64_t a, int64_t b) {
  if (b == 0) fail("integer division or modulo by zero");
  if (a == INT64_MIN && b == -1) fail("integer overflow (beyond 64 bits)");
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t floor_mod(int64_t a, int64_t b) {
  if (b == 0) fail("integer division or modulo by zero");
  if (b == -1) return 0;
  int64_t m = a % b;
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

double float_mod(double a, double b) {
  if (b == 0.0) fail("float modulo");
  double m = std::fmod(a, b);
  if (m != 0.0 && ((m < 0) != (b < 0))) m += b;
  if (m == 0.0) m = std::copysign(0.0, b);
  return m;
}

Value repeat(const Value& seq, int64_t times) {
  if (times < 0) times = 0;
  if (seq.is_string()) {
    if (seq.str().size() * static_cast<size_t>(times) > kMaxBuiltSize) fail("string repetition too large");
    std::string out;
    for (int64_t i = 0; i < times; ++i) out += seq.str();
    return out;
  }
  const Seq& s = seq.seq();
  if (s.items.size() * static_cast<size_t>(times) > kMaxBuiltSize / 16) fail("list repetition too large");
  std::vector<Value> out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), s.items.begin(), s.items.end());
  return Value::list(std::move(out), s.kind);
}

bool is_list_or_tuple(const Value& v) {
  return v.is_seq() && (v.seq().kind == Seq::Kind::List || v.seq().kind == Seq::Kind::Tuple);
}

Value int_pow(int64_t base, int64_t exp) {
  if (exp < 0) return std::pow(static_cast<double>(base), static_cast<double>(exp));
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) result = checked(mul, result, base);
    exp >>= 1;
    if (exp > 0) base = checked(mul, base, base);
  }
  return result;
}

}  // namespace

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  require_defined(a);
  require_defined(b);
  bool ints = a.is_int() && b.is_int();
  bool nums = a.is_number() && b.is_number();
  if (op == "+") {
    if (ints) return checked(add, a.as_int(), b.as_int());
    if (nums) return a.as_float() + b.as_float();
    if (a.is_string() && b.is_string()) return a.str() + b.str();
    if (is_list_or_tuple(a) && is_list_or_tuple(b) && a.seq().kind == b.seq().kind) {
      std::vector<Value> items = a.seq().items;
      items.insert(items.end(), b.seq().items.begin(), b.seq().items.end());
      return Value::list(std::move(items), a.seq().kind);
    }
    if (a.is_string() || b.is_string()) fail("can only concatenate str (not \"", (a.is_string() ? b : a).type_name(), "\") to str");
  } else if (op == "-") {
    if (ints) return checked(sub, a.as_int(), b.as_int());
    if (nums) return a.as_float() - b.as_float();
  } else if (op == "*") {
    if (ints) return checked(mul, a.as_int(), b.as_int());
    if (nums) return a.as_float() * b.as_float();
    if ((a.is_string() || is_list_or_tuple(a)) && b.is_int()) return repeat(a, b.as_int());
    if ((b.is_string() || is_list_or_tuple(b)) && a.is_int()) return repeat(b, a.as_int());
  } else if (op == "/") {
    if (nums) {
      if (b.as_float() == 0.0) fail("division by zero");
      return a.as_float() / b.as_float();
    }
  } else if (op == "//") {
    if (ints) return floor_div(a.as_int(), b.as_int());
    if (nums) {
      if (b.as_float() == 0.0) fail("float floor division by zero");
      return std::floor(a.as_float() / b.as_float());
    }
  } else if (op == "%") {
    if (a.is_string()) return percent_format(a.str(), b);
    if (ints) return floor_mod(a.as_int(), b.as_int());
    if (nums) return float_mod(a.as_float(), b.as_float());
  } else if (op == "**") {
    if (ints) return int_pow(a.as_int(), b.as_int());
    if (nums) {
      if (a.as_float() == 0.0 && b.as_float() < 0) fail("0.0 cannot be raised to a negative power");
      return std::pow(a.as_float(), b.as_float());
    }
  } else {
    fail("unknown operator ", op);
  }
  unsupported_operands(op, a, b);
}

Value unary_op(const std::string& op, const Value& a) {
  require_defined(a);
  if (a.is_int()) {
    if (op == "+") return a.as_int();
    if (a.as_int() == INT64_MIN) fail("integer overflow (beyond 64 bits)");
    return -a.as_int();
  }
  if (a.is_float()) return op == "-" ? -a.as_float() : a.as_float();
  fail("bad operand type for unary ", op, ": '", a.type_name(), "'");
}

bool contains(const Value& container, const Value& item) {
  if (container.is_string()) {
    if (!item.is_string()) fail("'in <string>' requires string as left operand, not ", item.type_name());
    return container.str().find(item.str()) != std::string::npos;
  }
  if (container.is_map()) return container.map().find(item) != nullptr;
  if (container.is_undefined()) return false;  // iterates empty
  if (container.is_seq() && container.seq().kind == Seq::Kind::Iterator) {
    // Python consumes a generator up to the match.
    Seq& s = container.seq();
    while (s.consumed < s.items.size()) {
      if (equal(s.items[s.consumed++], item)) return true;
    }
    return false;
  }
  if (container.is_seq()) {
    for (const auto& v : container.seq().items)
      if (equal(v, item)) return true;
    return false;
  }
  fail("argument of type '", container.type_name(), "' is not iterable");
}

Value slice(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
  require_defined(obj);
  auto bound = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (!v.is_int()) fail("slice ", what, " must be an integer or None");
    return v.as_int();
  };
  std::optional<int64_t> start = bound(start_v, "start"), stop = bound(stop_v, "stop"), step_o = bound(step_v, "step");
  int64_t step = step_o.value_or(1);
  if (step == 0) fail("slice step cannot be zero");

  std::u32string chars;
  const std::vector<Value>* items = nullptr;
  if (obj.is_string()) {
    chars = utf8::decode(obj.str());
  } else if (obj.is_seq() && obj.seq().kind != Seq::Kind::Iterator && obj.seq().kind < Seq::Kind::DictKeys) {
    items = &obj.seq().items;
  } else {
    fail("'", obj.type_name(), "' object is not subscriptable");
  }
  auto n = static_cast<int64_t>(items ? items->size() : chars.size());
  // CPython's PySlice_AdjustIndices.
  auto adjust = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v;
    if (x < 0) {
      x += n;
      if (x < 0) x = step < 0 ? -1 : 0;
    } else if (x >= n) {
      x = step < 0 ? n - 1 : n;
    }
    return x;
  };
  int64_t lo = adjust(start, step < 0 ? n - 1 : 0);
  int64_t hi = adjust(stop, step < 0 ? -1 : n);
  std::vector<int64_t> picks;
  for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) picks.push_back(i);
  if (!items) {
    std::u32string out;
    for (int64_t i : picks) out += chars[static_cast<size_t>(i)];
    return utf8::encode(out);
  }
  std::vector<Value> out;
  for (int64_t i : picks) out.push_back((*items)[static_cast<size_t>(i)]);
  // A sliced range is a range; lists stay lists, tuples tuples.
  Seq::Kind kind = obj.seq().kind == Seq::Kind::Range ? Seq::Kind::List : obj.seq().kind;
  Value result = Value::list(std::move(out), kind);
  if (obj.seq().kind == Seq::Kind::Range) {
    const Seq& r = obj.seq();
    Seq& s = result.seq();
    s.kind = Seq::Kind::Range;
    s.range_step = r.range_step * step;
    s.range_start = r.range_start + lo * r.range_step;
    s.range_stop = r.range_start + hi * r.range_step;
  }
  return result;
}

std::string percent_format(const std::string& format, const Value& args) {
  std::vector<Value> values;
  bool is_tuple = args.is_seq() && args.seq().kind == Seq::Kind::Tuple;
  if (is_tuple) values = args.seq().items;
  else values.push_back(args);
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    if (++i >= format.size()) fail("incomplete format");
    if (format[i] == '%') {
      out += '%';
      continue;
    }
    if (format[i] == '(') fail("unsupported %(name) format");
    std::string spec = "%";
    while (i < format.size() && std::string("-+ #0123456789.").find(format[i]) != std::string::npos) spec += format[i++];
    if (i >= format.size()) fail("incomplete format");
    char conv = format[i];
    if (next >= values.size()) fail("not enough arguments for format string");
    const Value& v = values[next++];
    char buf[512];
    switch (conv) {
      case 's':
      case 'r': {
        std::string s = conv == 's' ? to_str(v) : repr(v);
        if (spec == "%") {
          out += s;
        } else {
          std::snprintf(buf, sizeof buf, (spec + "s").c_str(), s.c_str());
          out += buf;
        }
        break;
      }
      case 'd':
      case 'i':
        if (!v.is_number()) fail("%", conv, " format: a real number is required, not ", v.type_name());
        std::snprintf(buf, sizeof buf, (spec + "lld").c_str(),
                      static_cast<long long>(v.is_int() ? v.as_int() : static_cast<int64_t>(std::trunc(v.as_float()))));
        out += buf;
        break;
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G':
        if (!v.is_number()) fail("must be real number, not ", v.type_name());
        std::snprintf(buf, sizeof buf, (spec + conv).c_str(), v.as_float());
        out += buf;
        break;
      case 'x':
      case 'X':
      case 'o':
        if (!v.is_int()) fail("%", conv, " format: an integer is required, not ", v.type_name());
        std::snprintf(buf, sizeof buf, (spec + "ll" + conv).c_str(), static_cast<long long>(v.as_int()));
        out += buf;
        break;
      default: fail("unsupported format character '", conv, "'");
    }
  }
  if (next < values.size() && (is_tuple || (!args.is_map()))) fail("not all arguments converted during string formatting");
  return out;
}

Value python_round(const Value& x, int64_t ndigits) {
  require_defined(x);
  if (x.is_int()) {
    if (ndigits >= 0) return x.as_int();
    fail("round with negative ndigits is not supported");
  }
  if (!x.is_float()) fail("type ", x.type_name(), " doesn't define __round__ method");
  double f = x.as_float();
  if (!std::isfinite(f)) return f;
  if (ndigits < 0 || ndigits > 300) fail("unsupported round precision ", ndigits);
  // glibc's printf rounds the exact binary value half-to-even, as CPython's round does.
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(ndigits), f);
  return std::strtod(buf, nullptr);
}

}  // namespace st::jinja
