// Checks that normalised messages form a conversation a chat template and
// the masking stage can use. Every error names the key as the file wrote it.
#pragma once

#include <utility>
#include <vector>

#include "datasets/message_lists.h"

namespace st::datasets {

/// A conversation to check, possibly assembled from several lists (a
/// preference prompt followed by one completion) without copying them.
using MessageView = std::vector<std::pair<const Json*, const MessageSource*>>;

void append_view(MessageView& view, const MessageList& list);

/// Rules (SampleError with reason in quotes):
///  - each message has a role among system, user, assistant, tool;
///  - "empty content": content is a non-blank string, except that an
///    assistant message with tool_calls may have none, and a preference
///    completion (allow_empty) may be an empty reply;
///  - "wrong type" / "missing field" for content and tool_calls shapes;
///  - "bad turn order": an optional system message first, then user and
///    assistant alternating starting with user; tool messages only right
///    after an assistant message with tool_calls or another tool message;
///    after tool messages comes the assistant. Ending on any role is fine:
///    a chat sample without an assistant reply is the masking stage's call.
void validate_conversation(const MessageView& messages, const RecordContext& ctx);

}  // namespace st::datasets
