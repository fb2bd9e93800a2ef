// The model's chat template: renders a conversation to the exact string
// transformers' apply_chat_template produces for the same model dir.
//
// The template comes from the model dir (chat_template.jinja, else the
// chat_template of tokenizer_config.json), from a file the recipe names, or,
// when the dir has none, from a built-in Salamandra ChatML formatter.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "datasets/jinja/template.h"
#include "datasets/records.h"
#include "tokenizer/tokenizer.h"

namespace st::datasets {

class ChatTemplate {
 public:
  /// The template of the tokenizer's model dir, or built-in ChatML if it has
  /// none. `variables` are extra template variables (e.g. date_string) the
  /// recipe sets; they override the special-token variables, as HF's kwargs do.
  /// `origin` names the template's file in messages.
  static ChatTemplate for_tokenizer(const Tokenizer& tokenizer, std::map<std::string, std::string> variables = {},
                                    const std::string& origin = "chat_template");
  /// A Jinja template given as text (`name` is used in error messages).
  static ChatTemplate from_source(const std::string& source, const std::string& name, const Tokenizer& tokenizer,
                                  std::map<std::string, std::string> variables = {});
  /// Built-in ChatML: "<|im_start|>{role}\n{content}<|im_end|>\n" per message,
  /// "<|im_start|>assistant\n" as the generation prompt; no default system turn.
  static ChatTemplate builtin_chatml(const Tokenizer& tokenizer, std::map<std::string, std::string> variables = {});

  /// Renders `messages` (a prefix of a conversation is fine) as
  /// apply_chat_template(messages, tools=tools, add_generation_prompt=...,
  /// tokenize=False) does. Throws st::Error naming the template on failure.
  std::string render(const Json& messages, const Json& tools, bool add_generation_prompt) const;

  /// "chat_template.jinja", "tokenizer_config.json", a file name, or "built-in ChatML".
  const std::string& origin() const { return origin_; }
  /// The Jinja source ("" for the built-in formatter).
  const std::string& source() const { return source_; }

 private:
  std::string origin_;
  std::string source_;
  std::shared_ptr<const jinja::Template> jinja_;  // null: built-in ChatML
  Json base_context_;  // special tokens + recipe variables
};

}  // namespace st::datasets
