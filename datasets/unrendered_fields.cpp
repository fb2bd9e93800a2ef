#include "datasets/unrendered_fields.h"

#include <regex>

#include "common/error.h"

namespace st::datasets {
namespace {

// Whether the source names `field` as a whole identifier or a quoted key.
bool names(const std::string& source, const std::string& field) {
  return std::regex_search(source, std::regex("(^|[^A-Za-z0-9_])" + field + "($|[^A-Za-z0-9_])"));
}

bool non_empty(const Json& value) { return !value.is_null() && !(value.is_array() && value.empty()); }

}  // namespace

UnrenderedFields::UnrenderedFields(const ChatTemplate& chat_template) {
  const std::string& source = chat_template.source();
  tool_calls_ = !names(source, "tool_calls");
  tools_ = !names(source, "tools");
  name_ = !names(source, "name");
}

void UnrenderedFields::count_sample(std::initializer_list<const Json*> message_lists, const Json& tools,
                                    std::map<std::string, size_t>& counts) const {
  std::set<std::string> seen;
  for (const Json* messages : message_lists) {
    if (!messages->is_array()) continue;
    for (const Json& m : *messages) {
      if (!m.is_object()) continue;
      if (tool_calls_ && m.contains("tool_calls") && non_empty(m["tool_calls"])) seen.insert("tool_calls");
      if (name_ && m.contains("name") && non_empty(m["name"])) seen.insert("name");
    }
  }
  if (tools_ && non_empty(tools)) seen.insert("tools");
  for (const std::string& field : seen) ++counts[field];
}

void UnrenderedFields::count(const Conversation& conversation, std::map<std::string, size_t>& counts) const {
  count_sample({&conversation.messages}, conversation.tools, counts);
}

void UnrenderedFields::count(const PreferencePair& pair, std::map<std::string, size_t>& counts) const {
  count_sample({&pair.prompt, &pair.chosen, &pair.rejected}, pair.tools, counts);
}

std::vector<std::string> unrendered_warnings(const std::map<std::string, size_t>& counts, const std::string& split,
                                             const std::string& template_origin) {
  std::vector<std::string> out;
  for (const auto& [field, n] : counts) {
    const char* effect = field == "tool_calls" ? "their tool-call turns train as empty or text-only replies"
                         : field == "tools"    ? "the tool definitions are left out of the prompt"
                                               : "the names are left out";
    out.push_back(cat("warning: ", n, " ", split, " sample", n == 1 ? " carries " : "s carry ", field,
                      ", which the chat template (", template_origin, ") never renders: ", effect,
                      ". Use a template that renders them (data.chat_template) or remove the field."));
  }
  return out;
}

}  // namespace st::datasets
