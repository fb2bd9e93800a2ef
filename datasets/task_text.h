// The language side of the synthetic tasks (synthetic_tasks.h): per
// language, the prompt template of each task, the words the copy task
// uses and a little prose for the tokenizer corpus. Kept apart from the
// generator so a speaker of a language can review one block of text.
#pragma once

#include <array>
#include <string>
#include <vector>

namespace st::datasets {

/// Number of tasks; templates are in task_names() order:
/// add, successor, reverse, sort, count, copy.
inline constexpr size_t kTaskCount = 6;

struct LanguageText {
  std::string code;
  /// Templates with {field} placeholders: add {a} {b}; successor {n};
  /// reverse and sort {list}; count {x} {list}; copy {words}.
  std::array<std::string, kTaskCount> prompts;
  /// Short everyday words (lowercase unless the language capitalises nouns).
  std::vector<std::string> words;
  /// A few sentences of ordinary text.
  std::string prose;
};

/// Every language with templates, in the order task_languages() lists them.
const std::vector<LanguageText>& language_texts();

}  // namespace st::datasets
