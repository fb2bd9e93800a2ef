// Fields a chat template renders only if it was written to: tool calls,
// tool definitions, message names. A template that never mentions one (a
// plain ChatML, say) renders a tool-call turn as an empty reply and drops
// the tools, silently. Samples carrying such fields are counted per field so
// prepare, inspect-data and sft can warn with a count.
//
// "Never mentions" is read off the template's source: a Jinja template can
// only reach message.tool_calls, tools or message.name by naming them. It is
// a sure sign of loss, not a proof of rendering (a template can name a field
// and still skip it in some branch).
#pragma once

#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "datasets/chat_template.h"
#include "datasets/records.h"

namespace st::datasets {

/// Which of "tool_calls", "tools", "name" a template's source never names.
class UnrenderedFields {
 public:
  explicit UnrenderedFields(const ChatTemplate& chat_template);
  /// Adds 1 to `counts[field]` for each unrendered field the sample carries.
  void count(const Conversation& conversation, std::map<std::string, size_t>& counts) const;
  void count(const PreferencePair& pair, std::map<std::string, size_t>& counts) const;

 private:
  // Counts each field once for a sample of these message lists and tools.
  void count_sample(std::initializer_list<const Json*> message_lists, const Json& tools,
                    std::map<std::string, size_t>& counts) const;
  bool tool_calls_ = false, tools_ = false, name_ = false;  // true: the template never names it
};

/// "warning: 12 train samples carry tool_calls, which the chat template
/// (<origin>) never renders: ..." per field counted.
std::vector<std::string> unrendered_warnings(const std::map<std::string, size_t>& counts, const std::string& split,
                                             const std::string& template_origin);

}  // namespace st::datasets
