// The runtime values of the interpreter, modelled on the Python objects
// jinja2 manipulates: rendering must equal Python's str()/repr(), truthiness,
// equality and ordering, so each kind here mirrors one Python type.
//
// Sequences and mappings are shared (shared_ptr) like Python references. The
// sandbox forbids mutating lists and dicts, so sharing is safe; the only
// mutable objects are namespaces and single-pass iterators, both created
// during one render and never shared across threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace st::jinja {

class Value;
class Renderer;

/// jinja2's default Undefined: prints "", is falsy and iterates empty, but
/// arithmetic, attribute/item access, calls and ordering raise `message`.
struct Undefined {
  std::string message;  // e.g. "'x' is undefined"
};
struct None {};

/// list, tuple, range, generator/iterator, dict_keys/values/items: one vector
/// of items plus the Python type it stands for (printing, len and indexing differ).
struct Seq {
  enum class Kind { List, Tuple, Iterator, Range, DictKeys, DictValues, DictItems };
  Kind kind = Kind::List;
  std::vector<Value> items;
  size_t consumed = 0;                 // Iterator: items before this were already taken
  int64_t range_start = 0, range_stop = 0, range_step = 1;  // Range: for repr
};

/// dict (insertion ordered, like Python) or jinja2's Namespace.
struct Map {
  std::vector<std::pair<Value, Value>> entries;
  bool is_namespace = false;
  const Value* find(const Value& key) const;
  Value* find(const Value& key);
  void set(Value key, Value value);
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

/// Callables and other opaque objects (macros, builtins, bound methods, loop).
class Object {
 public:
  virtual ~Object() = default;
  /// Python's type name, used in error messages ("'int object' has no attribute").
  virtual std::string type_name() const = 0;
  virtual bool is_callable() const { return true; }
  virtual Value call(Renderer& r, CallArgs& args);
  /// Attribute lookup; nullopt when the object has no such attribute.
  virtual std::optional<Value> attribute(const std::string& name) const;
  /// Python repr(); objects whose repr holds a memory address cannot be printed.
  virtual std::string repr() const;
};

using SeqPtr = std::shared_ptr<Seq>;
using MapPtr = std::shared_ptr<Map>;
using ObjectPtr = std::shared_ptr<Object>;

class Value {
 public:
  using Data = std::variant<Undefined, None, bool, int64_t, double, std::string, SeqPtr, MapPtr, ObjectPtr>;
  Data data;

  Value() : data(Undefined{}) {}
  Value(Undefined u) : data(std::move(u)) {}
  Value(None n) : data(n) {}
  Value(bool b) : data(b) {}
  Value(int64_t i) : data(i) {}
  Value(int i) : data(static_cast<int64_t>(i)) {}
  Value(double f) : data(f) {}
  Value(std::string s) : data(std::move(s)) {}
  Value(const char* s) : data(std::string(s)) {}
  Value(SeqPtr s) : data(std::move(s)) {}
  Value(MapPtr m) : data(std::move(m)) {}
  Value(ObjectPtr o) : data(std::move(o)) {}

  static Value list(std::vector<Value> items, Seq::Kind kind = Seq::Kind::List);
  static Value dict();

  bool is_undefined() const { return std::holds_alternative<Undefined>(data); }
  bool is_none() const { return std::holds_alternative<None>(data); }
  bool is_bool() const { return std::holds_alternative<bool>(data); }
  /// Python int, which includes bool.
  bool is_int() const { return std::holds_alternative<int64_t>(data) || is_bool(); }
  bool is_float() const { return std::holds_alternative<double>(data); }
  bool is_number() const { return is_int() || is_float(); }
  bool is_string() const { return std::holds_alternative<std::string>(data); }
  bool is_seq() const { return std::holds_alternative<SeqPtr>(data); }
  bool is_map() const { return std::holds_alternative<MapPtr>(data) && !map().is_namespace; }
  bool is_namespace() const { return std::holds_alternative<MapPtr>(data) && map().is_namespace; }
  bool is_object() const { return std::holds_alternative<ObjectPtr>(data); }

  const std::string& str() const { return std::get<std::string>(data); }
  int64_t as_int() const;        // bool or int
  double as_float() const;       // any number
  Seq& seq() const { return *std::get<SeqPtr>(data); }
  Map& map() const { return *std::get<MapPtr>(data); }
  Object& object() const { return *std::get<ObjectPtr>(data); }
  const Undefined& undefined() const { return std::get<Undefined>(data); }

  /// Python's type name ("str", "int", "list", "dict", ...).
  std::string type_name() const;
};

/// Raises jinja2's UndefinedError for an operation on `v` if it is undefined.
void require_defined(const Value& v);

/// Python str(v) (Undefined -> "").
std::string to_str(const Value& v);
/// Python repr(v).
std::string repr(const Value& v);
/// Python repr of a str, with Python's choice of quotes and escapes.
std::string repr_string(const std::string& s);
/// Python repr of a float ("1.0", "1e-05", "inf").
std::string repr_float(double f);
/// Python bool(v).
bool truthy(const Value& v);
/// Python ==.
bool equal(const Value& a, const Value& b);
/// Python a < b; throws for unorderable types.
bool less(const Value& a, const Value& b);
/// Python len(); throws for objects without one.
size_t length(const Value& v);
/// The items iter(v) yields: list items, dict keys, string characters.
/// Consumes single-pass iterators; throws for non-iterables.
std::vector<Value> iterate(const Value& v);

}  // namespace st::jinja
