// Key access with errors that name the file, line, key and format.
#include "datasets/sample_error.h"

namespace st::datasets {

bool is_expected_drop(const std::string& reason) {
  return reason == "nothing_to_train" || reason == "too_long" || reason == "nothing_to_train_after_truncation" ||
         reason == "token_straddles_boundary" || reason == "chosen_equals_rejected" || reason == "empty_completion";
}

void reject(const std::string& reason, const RecordContext& ctx, std::string_view key,
            const std::string& what) {
  if (key.empty()) throw SampleError(reason, cat(ctx.origin, ": ", what));
  throw SampleError(reason, cat(ctx.origin, ": key '", key, "': ", what));
}

std::string json_type(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "object";
    case Json::value_t::array: return "array";
    case Json::value_t::string: return "string";
    case Json::value_t::boolean: return "boolean";
    case Json::value_t::binary: return "binary";
    case Json::value_t::discarded: return "discarded";
    default: return "number";
  }
}

std::string list_keys(const Json& object) {
  if (!object.is_object()) return "(not an object)";
  if (object.empty()) return "(none)";
  std::string out;
  for (const auto& item : object.items()) out += cat(out.empty() ? "'" : ", '", item.key(), "'");
  return out;
}

const Json* find_key(const Json& object, const std::string& key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

const Json& require_key(const Json& object, const std::string& key, const std::string& path,
                        const RecordContext& ctx) {
  const Json* value = find_key(object, key);
  if (!value)
    reject("missing field", ctx, path,
           cat("missing (format '", data_format_name(ctx.format), "'; keys present: ",
               list_keys(object), ")"));
  return *value;
}

const std::string& require_string(const Json& object, const std::string& key,
                                  const std::string& path, const RecordContext& ctx) {
  const Json& value = require_key(object, key, path, ctx);
  if (!value.is_string()) reject("wrong type", ctx, path, cat("expected a string, got ", json_type(value)));
  return value.get_ref<const std::string&>();
}

const Json& require_array(const Json& object, const std::string& key, const std::string& path,
                          const RecordContext& ctx) {
  const Json& value = require_key(object, key, path, ctx);
  if (!value.is_array()) reject("wrong type", ctx, path, cat("expected an array, got ", json_type(value)));
  return value;
}

}  // namespace st::datasets
