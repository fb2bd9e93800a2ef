#include "datasets/chat_template.h"

#include <filesystem>

#include "common/error.h"

namespace st::datasets {

namespace {

// The variables transformers passes besides the conversation: its
// special_tokens_map (named tokens only, as strings), then the caller's
// kwargs, which win on a clash.
Json base_context(const Tokenizer& tokenizer, const std::map<std::string, std::string>& variables) {
  Json context = Json::object();
  auto put_token = [&](const char* name, int32_t id) {
    if (id >= 0) context[name] = tokenizer.id_to_piece(id);
  };
  put_token("bos_token", tokenizer.bos_id());
  put_token("eos_token", tokenizer.eos_id());
  put_token("unk_token", tokenizer.unk_id());
  put_token("pad_token", tokenizer.pad_id());
  for (const auto& [key, value] : variables) context[key] = value;
  return context;
}

// apply_chat_template drops message keys whose value is None before
// rendering (templates handle a missing key better than a null one).
Json drop_null_keys(const Json& messages) {
  Json out = Json::array();
  for (const Json& message : messages) {
    if (!message.is_object()) {
      out.push_back(message);
      continue;
    }
    Json kept = Json::object();
    for (const auto& [key, value] : message.items())
      if (!value.is_null()) kept[key] = value;
    out.push_back(std::move(kept));
  }
  return out;
}

}  // namespace

ChatTemplate ChatTemplate::for_tokenizer(const Tokenizer& tokenizer, std::map<std::string, std::string> variables,
                                         const std::string& origin) {
  if (tokenizer.chat_template().empty()) return builtin_chatml(tokenizer, std::move(variables));
  return from_source(tokenizer.chat_template(), origin, tokenizer, std::move(variables));
}

ChatTemplate ChatTemplate::from_source(const std::string& source, const std::string& name,
                                       const Tokenizer& tokenizer, std::map<std::string, std::string> variables) {
  ChatTemplate t;
  t.origin_ = name;
  t.source_ = source;
  t.jinja_ = std::make_shared<const jinja::Template>(jinja::Template::parse(source, name));
  t.base_context_ = base_context(tokenizer, variables);
  return t;
}

ChatTemplate ChatTemplate::builtin_chatml(const Tokenizer& tokenizer, std::map<std::string, std::string> variables) {
  ChatTemplate t;
  t.origin_ = "built-in ChatML";
  t.base_context_ = base_context(tokenizer, variables);
  return t;
}

std::string ChatTemplate::render(const Json& messages, const Json& tools, bool add_generation_prompt) const {
  if (jinja_) {
    Json context = base_context_;
    // HF always passes tools and documents (None when absent), so templates
    // that test `tools is defined` see them defined.
    context["messages"] = drop_null_keys(messages);
    context["tools"] = tools;
    context["documents"] = nullptr;
    context["add_generation_prompt"] = add_generation_prompt;
    return jinja_->render(context);
  }
  std::string out;
  for (const Json& message : messages) {
    auto content = message.find("content");
    if (content == message.end() || !content->is_string())
      fail("built-in ChatML template: every message needs a string \"content\" (role ",
           message.value("role", std::string("?")), ")");
    out += "<|im_start|>" + message.at("role").get<std::string>() + "\n" + content->get<std::string>() + "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace st::datasets
