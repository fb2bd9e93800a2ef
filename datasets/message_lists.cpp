// Role names and key names of each schema -> the one shape of records.h.
#include "datasets/message_lists.h"

#include <string_view>

#include "datasets/json_source.h"

namespace st::datasets {
namespace {

// Returns the OpenAI role for a role value of the given style, or "".
std::string_view canonical_role(std::string_view role, MessageStyle style) {
  if (role == "system" || role == "user" || role == "assistant" || role == "tool") return role;
  if (style == MessageStyle::kShareGpt) {
    if (role == "human") return "user";
    if (role == "gpt") return "assistant";
    if (role == "observation") return "tool";          // LLaMA-Factory tool result
    if (role == "function_call") return "assistant";   // LLaMA-Factory tool call
  }
  return "";
}

const char* valid_roles(MessageStyle style) {
  return style == MessageStyle::kShareGpt
             ? "system, human, gpt, tool, function_call, observation, user, assistant"
             : "system, user, assistant, tool";
}

// LLaMA-Factory writes a tool call as a turn whose value is JSON text
// {"name": ..., "arguments": ...} (or a list of them); OpenAI puts it in
// tool_calls, which is what chat templates read. Arguments stay as given.
Json tool_calls_from_function_call(const std::string& value, const std::string& key,
                                   const RecordContext& ctx) {
  Json parsed;
  try {
    if (json_depth(value) <= kMaxJsonDepth) parsed = Json::parse(value);
  } catch (const Json::exception&) {
  }
  if (parsed.is_null()) {
    reject("bad tool call", ctx, key, "a function_call turn must hold JSON {\"name\", \"arguments\"}");
  }
  if (parsed.is_object()) parsed = Json::array({parsed});
  if (!parsed.is_array() || parsed.empty())
    reject("bad tool call", ctx, key, "a function_call turn must hold JSON {\"name\", \"arguments\"}");
  Json calls = Json::array();
  for (const Json& call : parsed) {
    const Json* name = find_key(call, "name");
    if (!name || !name->is_string())
      reject("bad tool call", ctx, key, "each function call needs a string \"name\"");
    Json function = Json::object();
    function["name"] = *name;
    const Json* args = find_key(call, "arguments");
    function["arguments"] = args ? *args : Json::object();
    calls.push_back(Json{{"type", "function"}, {"function", std::move(function)}});
  }
  return calls;
}

}  // namespace

void read_message(const Json& message, const std::string& path, MessageStyle style,
                  const RecordContext& ctx, MessageList& out) {
  const bool sharegpt = style == MessageStyle::kShareGpt;
  const std::string role_key = field_name(ctx.fields.role, sharegpt ? "from" : "role");
  const std::string content_key = field_name(ctx.fields.content, sharegpt ? "value" : "content");
  if (!message.is_object())
    reject("wrong type", ctx, path, cat("a message must be an object, got ", json_type(message)));
  const std::string& given = require_string(message, role_key, child(path, role_key), ctx);

  std::string role = given;
  if (auto alias = ctx.fields.role_aliases.find(role); alias != ctx.fields.role_aliases.end())
    role = alias->second;
  std::string_view canonical = canonical_role(role, style);
  if (canonical.empty())
    reject("unknown role", ctx, child(path, role_key),
           cat("unknown role '", given, "' (expected one of ", valid_roles(style),
               "; map other names with fields.role_aliases)"));

  // Same keys in the same order, with role and content renamed: templates
  // may print extra keys, and they should see them as the file had them.
  Json normal = Json::object();
  const bool function_call = sharegpt && role == "function_call";
  for (const auto& item : message.items()) {
    if (item.key() == role_key) {
      normal["role"] = std::string(canonical);
    } else if (item.key() == content_key) {
      if (function_call && item.value().is_string())
        normal["tool_calls"] =
            tool_calls_from_function_call(item.value().get_ref<const std::string&>(),
                                          child(path, content_key), ctx);
      else
        normal["content"] = item.value();
    } else if (!normal.contains(item.key())) {
      normal[item.key()] = item.value();
    }
  }
  out.add(std::move(normal), MessageSource{path, role_key, content_key});
}

MessageList read_message_list(const Json& list, const std::string& path, MessageStyle style,
                              const RecordContext& ctx) {
  if (!list.is_array()) reject("wrong type", ctx, path, cat("expected an array of messages, got ", json_type(list)));
  MessageList out;
  for (size_t i = 0; i < list.size(); ++i) read_message(list[i], element(path, i), style, ctx, out);
  return out;
}

void add_text_message(const std::string& role, const std::string& text, const std::string& path,
                      MessageList& out) {
  out.add(Json{{"role", role}, {"content", text}}, MessageSource{path, "", ""});
}

Json read_tools(const Json& record, const std::string& key, const std::string& path,
                const RecordContext& ctx) {
  const Json* tools = find_key(record, key);
  if (!tools || tools->is_null()) return Json();
  if (tools->is_array()) return *tools;
  if (tools->is_string()) {
    const std::string& text = tools->get_ref<const std::string&>();
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) return Json();
    try {
      if (json_depth(text) <= kMaxJsonDepth) {
        Json parsed = Json::parse(text);
        if (parsed.is_array()) return parsed;
      }
    } catch (const Json::exception&) {
    }
    reject("wrong type", ctx, path, "a tools string must hold a JSON array of tool definitions");
  }
  reject("wrong type", ctx, path, cat("expected an array of tool definitions, got ", json_type(*tools)));
}

}  // namespace st::datasets
