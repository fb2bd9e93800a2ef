// The small helpers every format adapter uses to read a record's keys with
// messages that name the key (SampleError itself is in records.h).
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"
#include "datasets/readers.h"
#include "datasets/records.h"

namespace st::datasets {

/// Where a record came from and how it is read.
struct RecordContext {
  const std::string& origin;  // "file:line" or "file: record N (line L)"
  DataFormat format;
  const FieldMapping& fields;
};

/// Samples that cannot train, dropped and counted, never an error: the
/// drops the options ask for (nothing to train on, too long under
/// truncation = drop), tokens straddling a mask boundary (the tokenizer
/// meeting the data, not a mistake in either), and preference pairs with an
/// empty completion or a chosen equal to its rejected. Any other rejection
/// stops the run unless data.skip_invalid is set.
bool is_expected_drop(const std::string& reason);

/// Throws SampleError: "<origin>: key '<key>': <what>" (no key part if empty).
[[noreturn]] void reject(const std::string& reason, const RecordContext& ctx, std::string_view key,
                         const std::string& what);

/// `mapped` when the user set it, else the format's default name.
inline std::string field_name(const std::string& mapped, const char* fallback) {
  return mapped.empty() ? std::string(fallback) : mapped;
}

/// "a.b" / "a[3]" style key paths.
inline std::string child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : cat(path, ".", key);
}
inline std::string element(const std::string& path, size_t index) { return cat(path, "[", index, "]"); }

/// JSON type names as users know them: "string", "array", "object", "number", ...
std::string json_type(const Json& value);
/// The object's keys, quoted and comma-separated, for error messages.
std::string list_keys(const Json& object);

/// The value at `key` of an object, or null when absent.
const Json* find_key(const Json& object, const std::string& key);
/// The value at `key`; SampleError "missing field" naming the format if absent.
const Json& require_key(const Json& object, const std::string& key, const std::string& path,
                        const RecordContext& ctx);
/// The string at `key`; "missing field" / "wrong type" otherwise.
const std::string& require_string(const Json& object, const std::string& key,
                                  const std::string& path, const RecordContext& ctx);
/// The array at `key`; "missing field" / "wrong type" otherwise.
const Json& require_array(const Json& object, const std::string& key, const std::string& path,
                          const RecordContext& ctx);

}  // namespace st::datasets
