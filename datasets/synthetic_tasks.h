// Synthetic multilingual instruction tasks for the demo and for tests: small
// problems whose answer is a short string that can be checked by exact match
// (single-digit addition, successor, reversing and sorting three digits,
// counting a letter, copying two words), each asked in the nine Salamandra
// languages the templates cover. A tiny model learns them in minutes on a
// CPU, so "accuracy before and after SFT" shows training working end to end.
//
// Everything is deterministic per seed on every platform: draws come from
// the project's splitmix64 generator (batching.h), never std:: distributions.
// Torch-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "datasets/batching.h"

namespace st::datasets {

/// One task instance. `answer` is the bare result ("7", "1 7 3"), no prose.
struct TaskSample {
  std::string language, task, prompt, answer;
};

/// Language codes with prompt templates: en es ca de fr it pt gl eu.
const std::vector<std::string>& task_languages();
/// Task names: add successor reverse sort count copy.
const std::vector<std::string>& task_names();

struct TaskOptions {
  /// Samples to produce.
  size_t count = 1000;
  uint64_t seed = 0;
  /// Subsets of task_languages() / task_names(); unknown names are errors.
  std::vector<std::string> languages = task_languages();
  std::vector<std::string> tasks = task_names();
  /// Prompts never to produce (a test set passes its train set's prompts).
  /// Not owned; may be null.
  const std::unordered_set<std::string>* exclude_prompts = nullptr;
  /// Every prompt at most once (test sets: a repeated prompt would count twice).
  bool distinct = false;
};

/// `count` samples, (task, language) pairs taken in turn so every pair is
/// equally represented, then shuffled. A pair whose prompts run out (all
/// excluded or already used) stops contributing and the others fill in; only
/// when every pair has run out is the result shorter than `count`.
/// Throws st::Error for an unknown language or task.
std::vector<TaskSample> make_tasks(const TaskOptions& options);

/// A train set and a test set from one seed: the test set is drawn from a
/// seed of its own, distinct, and shares no prompt with the train set.
/// options.count, exclude_prompts and distinct are ignored.
struct TaskSplits {
  std::vector<TaskSample> train, test;
};
TaskSplits make_task_splits(const TaskOptions& options, size_t train_count, size_t test_count);

/// One JSON object per line in the OpenAI messages format the readers take:
/// {"messages": [{"role": "user", ...}, {"role": "assistant", ...}],
///  "task": ..., "language": ...} (the readers ignore the extra keys).
std::string tasks_to_jsonl(const std::vector<TaskSample>& samples);

/// A plausible wrong answer, never equal to the right one: a number off by
/// one, two neighbouring items swapped (or, when all are equal, one too
/// many). The rejected side of the demo's preference pairs.
std::string near_miss(const std::string& answer, Shuffler& rng);

/// Preference pairs, one JSON object per line in the conversational
/// prompt/chosen/rejected format the readers take: each sample's prompt,
/// its answer as chosen and near_miss() of it as rejected (drawn from
/// `seed`), with "task" and "language" kept.
std::string tasks_to_preference_jsonl(const std::vector<TaskSample>& samples, uint64_t seed);

/// Text to train the demo tokenizer on: every prompt and answer of
/// make_tasks(options), one per line, the chat roles' names, and a few
/// sentences of ordinary prose in each of options.languages.
std::string task_corpus(const TaskOptions& options);

}  // namespace st::datasets
