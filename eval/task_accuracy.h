// Exact-match accuracy of a model's greedy answers on chat samples whose
// last assistant turn is the reference answer (make-tasks writes such
// files). Each sample is rendered up to that turn with the chat template and
// the generation prompt, encoded as the SFT encoder encodes prompts (one
// BOS), answered greedily until eos or <|im_end|>, and compared after
// trimming whitespace. Tallied overall, per task and per language (the
// records' optional "task" and "language" keys; "-" when absent).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "datasets/readers.h"
#include "datasets/sample_encoder.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

namespace st::eval {

/// A sample's labels for the per-task and per-language tables.
struct Labels {
  std::string task, language;
};

/// The "task"/"language" keys of every record of `path`, in file order.
/// The readers drop keys they do not use, so these come from a second pass.
std::vector<Labels> read_labels(const std::string& path);

/// Correct answers out of n.
struct Tally {
  size_t n = 0, correct = 0;
  double accuracy() const { return n ? static_cast<double>(correct) / static_cast<double>(n) : 0.0; }
};

struct TaskAccuracy {
  Tally overall;
  std::map<std::string, Tally> per_task, per_language;
  /// {accuracy, n, correct, per_task, per_language}
  nlohmann::ordered_json to_json() const;
};

/// One answered sample, for callers that show a few.
struct AnsweredSample {
  size_t index;
  const Labels* labels;
  const datasets::Json* prompt;  // the messages before the reference answer
  std::string reference, answer;
  bool correct;
};

/// Answers every sample greedily (at most max_new_tokens tokens each) and
/// tallies exact matches. `labels` has one entry per sample. `on_answer`,
/// when set, sees each answered sample in order.
TaskAccuracy task_accuracy(const LlamaModel& model, const Tokenizer& tokenizer,
                           const datasets::SampleEncoder& encoder,
                           const std::vector<datasets::Conversation>& samples, const std::vector<Labels>& labels,
                           int64_t max_new_tokens, const std::function<void(const AnsweredSample&)>& on_answer = {});

}  // namespace st::eval
