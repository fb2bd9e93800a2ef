// messages / sharegpt / alpaca / prompt_completion records -> Conversation.
#include "datasets/chat_formats.h"

#include "datasets/message_lists.h"
#include "datasets/validation.h"

namespace st::datasets {
namespace {

// A field that is either a string (wrapped as one message of `role`) or a
// message list in OpenAI style, as TRL's standard vs conversational forms.
void read_text_or_messages(const Json& record, const std::string& key, const char* role,
                           const RecordContext& ctx, MessageList& out) {
  const Json& value = require_key(record, key, key, ctx);
  if (value.is_string()) {
    add_text_message(role, value.get_ref<const std::string&>(), key, out);
  } else if (value.is_array()) {
    MessageList list = read_message_list(value, key, MessageStyle::kOpenAi, ctx);
    for (size_t i = 0; i < list.messages.size(); ++i)
      out.add(std::move(list.messages[i]), std::move(list.sources[i]));
  } else {
    reject("wrong type", ctx, key, cat("expected a string or a message list, got ", json_type(value)));
  }
}

// The optional top-level system prompt of ShareGPT (LLaMA-Factory) and Alpaca.
void read_system_field(const Json& record, const RecordContext& ctx, MessageList& out) {
  const std::string key = field_name(ctx.fields.system, "system");
  const Json* system = find_key(record, key);
  if (!system || system->is_null()) return;
  if (!system->is_string()) reject("wrong type", ctx, key, cat("expected a string, got ", json_type(*system)));
  const std::string& text = system->get_ref<const std::string&>();
  if (text.find_first_not_of(" \t\r\n") != std::string::npos) add_text_message("system", text, key, out);
}

MessageList read_messages_format(const Json& record, MessageStyle style, const char* default_key,
                                 const RecordContext& ctx) {
  const std::string key = field_name(ctx.fields.messages, default_key);
  const Json& list = require_array(record, key, key, ctx);
  MessageList out;
  if (style == MessageStyle::kShareGpt) {
    MessageList turns = read_message_list(list, key, style, ctx);
    // A system field is used only when the turns do not start with one.
    bool has_system = !turns.messages.empty() && turns.messages[0]["role"] == "system";
    if (!has_system) read_system_field(record, ctx, out);
    for (size_t i = 0; i < turns.messages.size(); ++i)
      out.add(std::move(turns.messages[i]), std::move(turns.sources[i]));
    return out;
  }
  return read_message_list(list, key, style, ctx);
}

// Alpaca. The user turn is the instruction, then a blank line and the input
// when there is one. Conventions differ: LLaMA-Factory joins with "\n",
// torchtune's AlpacaToMessages wraps both in Stanford's "### Instruction:"
// prompt (a template of its own, which would be applied inside ChatML
// here), open-instruct-style chat conversions use "\n\n"; we take "\n\n",
// which keeps instruction and input apart as paragraphs and adds no
// template text. "output" may be called "response" (torchtune's
// instruct_tiny); "system" and LLaMA-Factory's "history" ([[user,
// assistant], ...] earlier turns) are optional.
MessageList read_alpaca(const Json& record, const RecordContext& ctx) {
  MessageList out;
  read_system_field(record, ctx, out);

  const std::string history_key = field_name(ctx.fields.history, "history");
  if (const Json* history = find_key(record, history_key); history && !history->is_null()) {
    if (!history->is_array())
      reject("wrong type", ctx, history_key, cat("expected [[user, assistant], ...], got ", json_type(*history)));
    for (size_t i = 0; i < history->size(); ++i) {
      const Json& turn = (*history)[i];
      std::string path = element(history_key, i);
      if (!turn.is_array() || turn.size() != 2 || !turn[0].is_string() || !turn[1].is_string())
        reject("wrong type", ctx, path, "expected a [user, assistant] pair of strings");
      add_text_message("user", turn[0].get<std::string>(), element(path, 0), out);
      add_text_message("assistant", turn[1].get<std::string>(), element(path, 1), out);
    }
  }

  const std::string instruction_key = field_name(ctx.fields.instruction, "instruction");
  std::string user = require_string(record, instruction_key, instruction_key, ctx);
  const std::string input_key = field_name(ctx.fields.input, "input");
  if (const Json* input = find_key(record, input_key); input && !input->is_null()) {
    if (!input->is_string()) reject("wrong type", ctx, input_key, cat("expected a string, got ", json_type(*input)));
    const std::string& text = input->get_ref<const std::string&>();
    if (text.find_first_not_of(" \t\r\n") != std::string::npos) user += "\n\n" + text;
  }
  add_text_message("user", user, instruction_key, out);

  std::string output_key = ctx.fields.output;
  if (output_key.empty()) output_key = find_key(record, "output") || !find_key(record, "response") ? "output" : "response";
  add_text_message("assistant", require_string(record, output_key, output_key, ctx), output_key, out);
  return out;
}

}  // namespace

Conversation convert_conversation(const Json& record, const RecordContext& ctx) {
  MessageList messages;
  switch (ctx.format) {
    case DataFormat::kMessages:
      messages = read_messages_format(record, MessageStyle::kOpenAi, "messages", ctx);
      break;
    case DataFormat::kShareGpt:
      messages = read_messages_format(record, MessageStyle::kShareGpt, "conversations", ctx);
      break;
    case DataFormat::kAlpaca:
      messages = read_alpaca(record, ctx);
      break;
    case DataFormat::kPromptCompletion:
      // TRL's prompt-completion type, standard (strings) or conversational.
      read_text_or_messages(record, field_name(ctx.fields.prompt, "prompt"), "user", ctx, messages);
      read_text_or_messages(record, field_name(ctx.fields.completion, "completion"), "assistant", ctx,
                            messages);
      break;
    default:
      fail("internal error: format '", data_format_name(ctx.format), "' is not a chat format");
  }
  if (messages.messages.empty()) reject("empty conversation", ctx, field_name(ctx.fields.messages, ""), "the sample has no messages");
  MessageView view;
  append_view(view, messages);
  validate_conversation(view, ctx);

  Conversation out;
  out.tools = read_tools(record, field_name(ctx.fields.tools, "tools"),
                         field_name(ctx.fields.tools, "tools"), ctx);
  out.messages = std::move(messages.messages);
  out.origin = ctx.origin;
  return out;
}

}  // namespace st::datasets
