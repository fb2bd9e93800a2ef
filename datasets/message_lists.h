// Message lists in any supported schema -> OpenAI/HF message objects
// ({"role", "content", ...extra keys verbatim}), remembering for each message
// the key path and key names it had in the file, so that validation errors
// point at what the user wrote ("conversations[3].value", not "content").
#pragma once

#include <string>
#include <vector>

#include "datasets/sample_error.h"

namespace st::datasets {

/// How a list names roles: OpenAI ("role"/"content"; system, user,
/// assistant, tool) or ShareGPT ("from"/"value"; system, human, gpt, tool,
/// plus LLaMA-Factory's function_call and observation, and user/assistant).
enum class MessageStyle { kOpenAi, kShareGpt };

/// Where one normalised message came from.
struct MessageSource {
  std::string path;         // e.g. "messages[2]"; for synthesised messages the field, e.g. "instruction"
  std::string role_key;     // key of the role in the file ("" when synthesised)
  std::string content_key;  // key of the content in the file ("" when synthesised)
  bool allow_empty = false; // a preference completion may be an empty reply
};

struct MessageList {
  Json messages = Json::array();
  std::vector<MessageSource> sources;  // sources[i] names messages[i]

  void add(Json message, MessageSource source) {
    messages.push_back(std::move(message));
    sources.push_back(std::move(source));
  }
};

/// Normalises the array `list` found at `path`.
MessageList read_message_list(const Json& list, const std::string& path, MessageStyle style,
                              const RecordContext& ctx);
/// Normalises one message object found at `path` and appends it to `out`.
void read_message(const Json& message, const std::string& path, MessageStyle style,
                  const RecordContext& ctx, MessageList& out);
/// A message made from a plain string field (Alpaca instruction, a string prompt, ...).
void add_text_message(const std::string& role, const std::string& text, const std::string& path,
                      MessageList& out);

/// The record's tool definitions at `key`: an array, absent/null (-> null),
/// or a string holding a JSON array (LLaMA-Factory stores them that way).
Json read_tools(const Json& record, const std::string& key, const std::string& path,
                const RecordContext& ctx);

}  // namespace st::datasets
