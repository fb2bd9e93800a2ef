// preference / hh-rlhf transcripts / LLaMA-Factory ranking / OpenAI
// preference records -> PreferencePair {prompt, chosen, rejected}.
#include "datasets/preference_formats.h"

#include <string_view>

#include "datasets/message_lists.h"
#include "datasets/validation.h"

namespace st::datasets {
namespace {

struct Parts {
  MessageList prompt, chosen, rejected;
  Json tools;
};

void mark_completion(MessageList& list) {
  for (auto& src : list.sources) src.allow_empty = true;
}

// Python-dict equality (key order ignored), as TRL compares messages.
bool same_json(const Json& a, const Json& b) {
  if (a.type() != b.type()) return false;
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (const auto& item : a.items()) {
      auto it = b.find(item.key());
      if (it == b.end() || !same_json(item.value(), *it)) return false;
    }
    return true;
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!same_json(a[i], b[i])) return false;
    return true;
  }
  return a == b;
}

// TRL's extract_prompt for the implicit-prompt form: the longest common
// leading run of messages is the prompt. As in TRL's loop, when one list is a
// prefix of the other the last shared message stays in the completions, so
// both completions keep at least one message.
void split_shared_prefix(MessageList& chosen, MessageList& rejected, Parts& out,
                         const RecordContext& ctx, const std::string& chosen_key) {
  size_t n = std::min(chosen.messages.size(), rejected.messages.size());
  size_t shared = 0;
  while (shared < n && same_json(chosen.messages[shared], rejected.messages[shared])) ++shared;
  if (shared == n && n > 0) --shared;
  if (shared == 0)
    reject("no shared prompt", ctx, chosen_key,
           "chosen and rejected share no leading messages, so there is no prompt; give a prompt field");
  for (size_t i = 0; i < chosen.messages.size(); ++i)
    (i < shared ? out.prompt : out.chosen).add(std::move(chosen.messages[i]), std::move(chosen.sources[i]));
  for (size_t i = shared; i < rejected.messages.size(); ++i)
    out.rejected.add(std::move(rejected.messages[i]), std::move(rejected.sources[i]));
}

MessageList text_or_messages(const Json& value, const std::string& key, const char* role,
                             const RecordContext& ctx) {
  MessageList out;
  if (value.is_string()) add_text_message(role, value.get_ref<const std::string&>(), key, out);
  else if (value.is_array()) out = read_message_list(value, key, MessageStyle::kOpenAi, ctx);
  else reject("wrong type", ctx, key, cat("expected a string or a message list, got ", json_type(value)));
  return out;
}

// TRL's preference type: {prompt, chosen, rejected} with strings or message
// lists, or the implicit-prompt form {chosen, rejected} of full message
// lists. As TRL's maybe_extract_prompt, a string prompt next to message-list
// completions is ignored and the prompt is extracted from the lists.
// String completions without a prompt are hh-rlhf transcripts: a format of
// their own (preference_transcripts).
void read_preference(const Json& record, const RecordContext& ctx, Parts& out) {
  const std::string prompt_key = field_name(ctx.fields.prompt, "prompt");
  const std::string chosen_key = field_name(ctx.fields.chosen, "chosen");
  const std::string rejected_key = field_name(ctx.fields.rejected, "rejected");
  const Json& chosen = require_key(record, chosen_key, chosen_key, ctx);
  const Json& rejected = require_key(record, rejected_key, rejected_key, ctx);
  const Json* prompt = find_key(record, prompt_key);
  if (prompt && prompt->is_null()) prompt = nullptr;
  bool lists = chosen.is_array() && rejected.is_array();
  if (!prompt || (prompt->is_string() && lists)) {
    if (!lists)
      reject("wrong type", ctx, chosen_key,
             "without a prompt, chosen and rejected must be message lists sharing the prompt "
             "(for hh-rlhf text transcripts use format 'preference_transcripts')");
    MessageList c = read_message_list(chosen, chosen_key, MessageStyle::kOpenAi, ctx);
    MessageList r = read_message_list(rejected, rejected_key, MessageStyle::kOpenAi, ctx);
    split_shared_prefix(c, r, out, ctx, chosen_key);
    return;
  }
  out.prompt = text_or_messages(*prompt, prompt_key, "user", ctx);
  out.chosen = text_or_messages(chosen, chosen_key, "assistant", ctx);
  out.rejected = text_or_messages(rejected, rejected_key, "assistant", ctx);
}

// hh-rlhf transcripts, split as TRL's examples/datasets/hh-rlhf-helpful-base.py
// builds trl-lib/hh-rlhf-helpful-base: the prompt is the longest common
// start of the two texts, cut back to end with "\n\nAssistant: "; each
// completion is the rest of its text, as one assistant message (when the
// texts diverge before the last turn it keeps later turns' text verbatim);
// the prompt is split at "\n\nHuman: " / "\n\nAssistant: " into user and
// assistant messages, contents unstripped. The marker's trailing space is
// part of it, as in TRL. One difference: two turns in a row by the same
// speaker (4 prompts of harmless-base test have "Assistant:" twice) become
// one message joined by "\n\n", where TRL keeps two; alternating turns are
// what the chat template and our validation expect.
void read_transcripts(const Json& record, const RecordContext& ctx, Parts& out) {
  static constexpr std::string_view kHuman = "\n\nHuman: ";
  static constexpr std::string_view kAssistant = "\n\nAssistant: ";
  const std::string chosen_key = field_name(ctx.fields.chosen, "chosen");
  const std::string rejected_key = field_name(ctx.fields.rejected, "rejected");
  const std::string& chosen = require_string(record, chosen_key, chosen_key, ctx);
  const std::string& rejected = require_string(record, rejected_key, rejected_key, ctx);

  size_t common = 0;
  while (common < chosen.size() && common < rejected.size() && chosen[common] == rejected[common]) ++common;
  std::string_view shared(chosen.data(), common);
  if (!shared.ends_with(kAssistant)) {
    size_t last = shared.rfind(kAssistant);
    if (last == std::string_view::npos)
      reject("bad transcript", ctx, chosen_key,
             "chosen and rejected share no \"\\n\\nAssistant: \" turn, so there is no prompt");
    shared = shared.substr(0, last + kAssistant.size());
  }
  add_text_message("assistant", chosen.substr(shared.size()), chosen_key, out.chosen);
  add_text_message("assistant", rejected.substr(shared.size()), rejected_key, out.rejected);

  std::string_view prompt = shared.substr(0, shared.size() - kAssistant.size());
  if (!prompt.starts_with(kHuman))
    reject("bad transcript", ctx, chosen_key, "a transcript must start with \"\\n\\nHuman: \"");
  size_t pos = 0;
  while (pos < prompt.size()) {
    bool human = prompt.compare(pos, kHuman.size(), kHuman) == 0;
    size_t start = pos + (human ? kHuman.size() : kAssistant.size());
    size_t next_h = prompt.find(kHuman, start), next_a = prompt.find(kAssistant, start);
    size_t end = std::min(next_h, next_a);
    if (end == std::string_view::npos) end = prompt.size();
    std::string text(prompt.substr(start, end - start));
    const char* role = human ? "user" : "assistant";
    Json& msgs = out.prompt.messages;
    if (!msgs.empty() && msgs.back()["role"] == role)
      msgs.back()["content"] = msgs.back()["content"].get<std::string>() + "\n\n" + text;
    else
      add_text_message(role, text, chosen_key, out.prompt);
    pos = end;
  }
}

// LLaMA-Factory's ranking form of ShareGPT: the conversation is the prompt,
// chosen and rejected are single {from, value} turns.
void read_ranking(const Json& record, const RecordContext& ctx, Parts& out) {
  const std::string key = field_name(ctx.fields.messages, "conversations");
  const Json& list = require_array(record, key, key, ctx);
  MessageList turns = read_message_list(list, key, MessageStyle::kShareGpt, ctx);
  bool has_system = !turns.messages.empty() && turns.messages[0]["role"] == "system";
  const std::string system_key = field_name(ctx.fields.system, "system");
  if (const Json* system = find_key(record, system_key); !has_system && system && !system->is_null()) {
    if (!system->is_string()) reject("wrong type", ctx, system_key, cat("expected a string, got ", json_type(*system)));
    const std::string& text = system->get_ref<const std::string&>();
    if (text.find_first_not_of(" \t\r\n") != std::string::npos) add_text_message("system", text, system_key, out.prompt);
  }
  for (size_t i = 0; i < turns.messages.size(); ++i)
    out.prompt.add(std::move(turns.messages[i]), std::move(turns.sources[i]));
  const std::string chosen_key = field_name(ctx.fields.chosen, "chosen");
  const std::string rejected_key = field_name(ctx.fields.rejected, "rejected");
  read_message(require_key(record, chosen_key, chosen_key, ctx), chosen_key, MessageStyle::kShareGpt, ctx,
               out.chosen);
  read_message(require_key(record, rejected_key, rejected_key, ctx), rejected_key, MessageStyle::kShareGpt,
               ctx, out.rejected);
}

// OpenAI's preference fine-tuning JSONL: {"input": {"messages", "tools"?},
// "preferred_output": [...], "non_preferred_output": [...]}.
void read_openai_preference(const Json& record, const RecordContext& ctx, Parts& out) {
  const std::string input_key = field_name(ctx.fields.input, "input");
  const Json& input = require_key(record, input_key, input_key, ctx);
  if (!input.is_object()) reject("wrong type", ctx, input_key, cat("expected an object, got ", json_type(input)));
  const std::string messages_key = field_name(ctx.fields.messages, "messages");
  const std::string messages_path = child(input_key, messages_key);
  out.prompt = read_message_list(require_array(input, messages_key, messages_path, ctx), messages_path,
                                 MessageStyle::kOpenAi, ctx);
  const std::string tools_key = field_name(ctx.fields.tools, "tools");
  out.tools = read_tools(input, tools_key, child(input_key, tools_key), ctx);
  const std::string chosen_key = field_name(ctx.fields.chosen, "preferred_output");
  const std::string rejected_key = field_name(ctx.fields.rejected, "non_preferred_output");
  out.chosen = read_message_list(require_array(record, chosen_key, chosen_key, ctx), chosen_key,
                                 MessageStyle::kOpenAi, ctx);
  out.rejected = read_message_list(require_array(record, rejected_key, rejected_key, ctx), rejected_key,
                                   MessageStyle::kOpenAi, ctx);
}

}  // namespace

PreferencePair convert_preference(const Json& record, const RecordContext& ctx) {
  Parts parts;
  switch (ctx.format) {
    case DataFormat::kPreference: read_preference(record, ctx, parts); break;
    case DataFormat::kPreferenceTranscripts: read_transcripts(record, ctx, parts); break;
    case DataFormat::kLlamaFactoryRanking: read_ranking(record, ctx, parts); break;
    case DataFormat::kOpenAiPreference: read_openai_preference(record, ctx, parts); break;
    default: fail("internal error: format '", data_format_name(ctx.format), "' is not a preference format");
  }
  if (parts.tools.is_null() && ctx.format != DataFormat::kOpenAiPreference) {
    const std::string tools_key = field_name(ctx.fields.tools, "tools");
    parts.tools = read_tools(record, tools_key, tools_key, ctx);
  }
  if (parts.prompt.messages.empty()) reject("empty conversation", ctx, "", "the prompt has no messages");
  const bool openai = ctx.format == DataFormat::kOpenAiPreference;
  // An empty completion cannot train: counted and dropped (prepare.h).
  if (parts.chosen.messages.empty())
    reject("empty_completion", ctx, field_name(ctx.fields.chosen, openai ? "preferred_output" : "chosen"),
           "the chosen completion has no messages");
  if (parts.rejected.messages.empty())
    reject("empty_completion", ctx,
           field_name(ctx.fields.rejected, openai ? "non_preferred_output" : "rejected"),
           "the rejected completion has no messages");
  mark_completion(parts.chosen);
  mark_completion(parts.rejected);
  for (const MessageList* completion : {&parts.chosen, &parts.rejected}) {
    MessageView view;
    append_view(view, parts.prompt);
    append_view(view, *completion);
    validate_conversation(view, ctx);
  }
  PreferencePair out;
  out.prompt = std::move(parts.prompt.messages);
  out.chosen = std::move(parts.chosen.messages);
  out.rejected = std::move(parts.rejected.messages);
  out.tools = std::move(parts.tools);
  out.origin = ctx.origin;
  return out;
}

}  // namespace st::datasets
