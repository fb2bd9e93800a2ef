// The in-memory form of training samples, after a reader has normalised
// whatever schema the file used (see readers.h) and before templating.
//
// Messages stay JSON objects in the OpenAI/Hugging Face shape
// ({"role": ..., "content": ..., and any extra keys such as tool_calls or
// name}) because chat templates may read any key, and key order matters to
// templates that print dicts (tojson): ordered_json keeps the file's order,
// as Python dicts do.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/error.h"

namespace st::datasets {

using Json = nlohmann::ordered_json;

/// One chat sample. Roles are system, user, assistant, tool.
struct Conversation {
  /// Array of message objects; each has a string "role" and (unless it is
  /// an assistant message carrying tool_calls) a string "content".
  Json messages = Json::array();
  /// The sample's tool definitions (array), or null when it has none.
  Json tools;
  /// Where the sample came from, for messages: "file:line" (JSONL) or
  /// "file: record N (line L)" (JSON arrays).
  std::string origin;
};

/// One preference sample: a shared prompt and two completions.
struct PreferencePair {
  /// Prompt messages (array, at least one message).
  Json prompt = Json::array();
  /// Completion messages (array, usually one assistant message each).
  Json chosen = Json::array();
  Json rejected = Json::array();
  Json tools;
  std::string origin;
};

/// One bad sample. The short reason ("missing field", "token_straddles_boundary",
/// ...) lets a driver that may skip samples count it by reason; otherwise
/// the message, which names the sample's origin, is what the user sees.
class SampleError : public Error {
 public:
  SampleError(std::string reason, const std::string& message) : Error(message), reason_(std::move(reason)) {}
  const std::string& reason() const { return reason_; }

 private:
  std::string reason_;
};

}  // namespace st::datasets
