// Turn order and content rules for one conversation.
#include "datasets/validation.h"

#include <string_view>

namespace st::datasets {
namespace {

std::string key_of(const MessageSource& src, const std::string& key) {
  return key.empty() ? src.path : child(src.path, key);
}

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

}  // namespace

void append_view(MessageView& view, const MessageList& list) {
  for (size_t i = 0; i < list.messages.size(); ++i) view.emplace_back(&list.messages[i], &list.sources[i]);
}

void validate_conversation(const MessageView& messages, const RecordContext& ctx) {
  std::string_view prev;  // role of the previous message; empty at the start
  bool prev_called_tools = false;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = *messages[i].first;
    const MessageSource& src = *messages[i].second;
    const Json* role_value = find_key(m, "role");
    if (!role_value || !role_value->is_string())
      reject("missing field", ctx, key_of(src, src.role_key), "a message needs a string role");
    const std::string& role = role_value->get_ref<const std::string&>();
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      reject("unknown role", ctx, key_of(src, src.role_key),
             cat("unknown role '", role, "' (expected system, user, assistant or tool)"));

    bool calls_tools = false;
    if (const Json* calls = find_key(m, "tool_calls")) {
      if (role != "assistant")
        reject("bad tool call", ctx, child(src.path, "tool_calls"),
               cat("only assistant messages may carry tool_calls, this one is '", role, "'"));
      if (!calls->is_array() || calls->empty())
        reject("wrong type", ctx, child(src.path, "tool_calls"),
               cat("expected a non-empty array of tool calls, got ",
                   calls->is_array() ? "an empty array" : json_type(*calls)));
      for (const Json& call : *calls)
        if (!call.is_object())
          reject("wrong type", ctx, child(src.path, "tool_calls"),
                 cat("each tool call must be an object, got ", json_type(call)));
      calls_tools = true;
    }

    const std::string content_key = key_of(src, src.content_key);
    const Json* content = find_key(m, "content");
    if (!content || content->is_null()) {
      if (!calls_tools)
        reject("missing field", ctx, content_key,
               content ? "content is null (only an assistant message with tool_calls may omit it)"
                       : "missing (only an assistant message with tool_calls may omit it)");
    } else if (!content->is_string()) {
      reject("wrong type", ctx, content_key,
             cat("content must be a string, got ", json_type(*content)));
    } else if (blank(content->get_ref<const std::string&>()) && !calls_tools &&
               !(src.allow_empty && role == "assistant")) {
      reject("empty content", ctx, content_key, cat("empty ", role, " message"));
    }

    // Turn order.
    const std::string role_key = key_of(src, src.role_key);
    if (role == "system") {
      if (i != 0) reject("bad turn order", ctx, role_key, "a system message may only come first");
    } else if (role == "user") {
      if (prev == "user" || prev == "tool")
        reject("bad turn order", ctx, role_key, cat("a user message cannot follow a ", prev, " message"));
    } else if (role == "assistant") {
      if (prev.empty() || prev == "system")
        reject("bad turn order", ctx, role_key,
               "the conversation must start with a user message (after an optional system message)");
      if (prev == "assistant")
        reject("bad turn order", ctx, role_key, "two assistant messages in a row");
    } else {  // tool
      if (!(prev == "tool" || (prev == "assistant" && prev_called_tools)))
        reject("bad turn order", ctx, role_key,
               "a tool message must follow an assistant message with tool_calls or another tool message");
    }
    if (role != "tool") prev_called_tools = calls_tools;
    prev = role;
  }
}

}  // namespace st::datasets
