#include "datasets/jinja/json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/error.h"
#include "datasets/jinja/renderer.h"
#include "datasets/jinja/utf8.h"

namespace st::jinja {

Value from_json(const nlohmann::ordered_json& json) {
  switch (json.type()) {
    case nlohmann::json::value_t::null: return None{};
    case nlohmann::json::value_t::boolean: return json.get<bool>();
    case nlohmann::json::value_t::number_integer: return json.get<int64_t>();
    case nlohmann::json::value_t::number_unsigned: {
      auto u = json.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) fail("integer ", u, " in the template context exceeds 64 bits");
      return static_cast<int64_t>(u);
    }
    case nlohmann::json::value_t::number_float: return json.get<double>();
    case nlohmann::json::value_t::string: return json.get<std::string>();
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(from_json(item));
      return Value::list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      Value d = Value::dict();
      for (const auto& [key, item] : json.items()) d.map().entries.emplace_back(Value(key), from_json(item));
      return d;
    }
    default: fail("unsupported JSON value in the template context");
  }
}

namespace {

void dump_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (char32_t c : utf8::decode(s)) {
    char buf[16];
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || (ensure_ascii && c > 0x7E)) {
          if (c >= 0x10000) {  // UTF-16 surrogate pair, as Python writes it
            char32_t v = c - 0x10000;
            std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 | (v >> 10)),
                          static_cast<unsigned>(0xDC00 | (v & 0x3FF)));
          } else {
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          }
          out += buf;
        } else {
          utf8::append(out, c);
        }
    }
  }
  out += '"';
}

std::string float_json(double f) {
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f > 0 ? "Infinity" : "-Infinity";
  return repr_float(f);
}

// Python converts these dict keys to strings; others are a TypeError.
std::string key_string(const Value& k) {
  if (k.is_string()) return k.str();
  if (k.is_bool()) return k.as_int() ? "true" : "false";
  if (k.is_int()) return std::to_string(k.as_int());
  if (k.is_float()) return float_json(k.as_float());
  if (k.is_none()) return "null";
  fail("keys must be str, int, float, bool or None, not ", k.type_name());
}

class Dumper {
 public:
  explicit Dumper(const JsonDumpOptions& o) : o_(o) {}

  void dump(std::string& out, const Value& v, int level) {
    if (level > 500) fail("tojson: value nested too deeply");
    if (v.is_none()) {
      out += "null";
    } else if (v.is_bool()) {
      out += v.as_int() ? "true" : "false";
    } else if (v.is_int()) {
      out += std::to_string(v.as_int());
    } else if (v.is_float()) {
      out += float_json(v.as_float());
    } else if (v.is_string()) {
      dump_string(out, v.str(), o_.ensure_ascii);
    } else if (v.is_seq() && (v.seq().kind == Seq::Kind::List || v.seq().kind == Seq::Kind::Tuple)) {
      const auto& items = v.seq().items;
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        separator(out, i, level + 1);
        dump(out, items[i], level + 1);
      }
      close(out, level, ']');
    } else if (v.is_map()) {
      std::vector<std::pair<Value, Value>> entries = v.map().entries;
      if (entries.empty()) {
        out += "{}";
        return;
      }
      if (o_.sort_keys)
        std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return less(a.first, b.first); });
      out += '{';
      for (size_t i = 0; i < entries.size(); ++i) {
        separator(out, i, level + 1);
        dump_string(out, key_string(entries[i].first), o_.ensure_ascii);
        out += o_.key_separator;
        dump(out, entries[i].second, level + 1);
      }
      close(out, level, '}');
    } else {
      fail("Object of type ", v.type_name(), " is not JSON serializable");
    }
  }

 private:
  const JsonDumpOptions& o_;

  void newline_indent(std::string& out, int level) {
    out += '\n';
    for (int i = 0; i < level; ++i) out += o_.indent;
  }
  void separator(std::string& out, size_t index, int level) {
    if (index > 0) out += o_.item_separator;
    if (o_.pretty) newline_indent(out, level);
  }
  void close(std::string& out, int level, char bracket) {
    if (o_.pretty) newline_indent(out, level);
    out += bracket;
  }
};

}  // namespace

std::string dump_json(const Value& value, const JsonDumpOptions& options) {
  std::string out;
  Dumper(options).dump(out, value, 0);
  return out;
}

}  // namespace st::jinja
