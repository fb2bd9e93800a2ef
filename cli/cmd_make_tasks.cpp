// salamandra-tune make-tasks: the synthetic multilingual tasks of
// datasets/synthetic_tasks.h as train/test JSONL plus a tokenizer corpus.
#include <filesystem>
#include <iostream>
#include <set>
#include <unordered_set>

#include "common/atomic_file.h"
#include "common/error.h"
#include "datasets/synthetic_tasks.h"
#include "cli/args.h"
#include "cli/commands.h"

namespace st::cli {
namespace {

// "en,es" -> {"en", "es"}; "" keeps `fallback` (every name).
std::vector<std::string> split_list(const std::string& text, const std::string& option,
                                    const std::vector<std::string>& fallback) {
  if (text.empty()) return fallback;
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (item.empty()) throw UsageError(cat("--", option, " has an empty entry in \"", text, "\""));
    out.push_back(item);
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

}  // namespace

int run_make_tasks(int argc, char** argv) {
  std::string out, languages, tasks;
  int64_t train = 4000, test = 270, preference_pairs = 0, seed = 0;
  Args args("make-tasks",
            "Writes synthetic multilingual instruction tasks with short exact answers (addition, successor,\n"
            "reversing and sorting digits, counting a letter, copying words) in the OpenAI messages format:\n"
            "DIR/train.jsonl, DIR/test.jsonl (no prompt of train.jsonl, none twice) and DIR/corpus.txt\n"
            "(text to train a tokenizer on); with --pairs N, DIR/pairs.jsonl (N preference pairs of prompts in\n"
            "neither split) and DIR/pairs-test.jsonl (the test prompts'): the right answer against a near miss\n"
            "(a number off by one, two neighbouring items swapped). The same seed gives the same files.");
  args.option("out", "DIR", "directory to write into (created if missing)", &out, /*required=*/true);
  args.option("train", "N", "training samples", &train);
  args.option("test", "N", "held-out samples", &test);
  args.option("pairs", "N", "preference pairs of new prompts (and one per test prompt)", &preference_pairs);
  args.option("seed", "S", "generator seed", &seed);
  args.option("languages", "LIST", "comma-separated language codes [default: all of en,es,ca,de,fr,it,pt,gl,eu]",
              &languages);
  args.option("tasks", "LIST", "comma-separated tasks [default: all of add,successor,reverse,sort,count,copy]",
              &tasks);
  if (!args.parse(argc, argv)) return 0;
  if (train < 0 || test < 0 || preference_pairs < 0) throw UsageError("--train, --test and --pairs must be >= 0");

  datasets::TaskOptions options;
  options.seed = static_cast<uint64_t>(seed);
  options.languages = split_list(languages, "languages", datasets::task_languages());
  options.tasks = split_list(tasks, "tasks", datasets::task_names());
  datasets::TaskSplits splits =
      datasets::make_task_splits(options, static_cast<size_t>(train), static_cast<size_t>(test));
  options.count = static_cast<size_t>(train);
  const std::string corpus = datasets::task_corpus(options);

  std::filesystem::create_directories(out);
  const std::string dir = std::filesystem::path(out).string() + "/";
  write_file_atomic(dir + "train.jsonl", datasets::tasks_to_jsonl(splits.train));
  write_file_atomic(dir + "test.jsonl", datasets::tasks_to_jsonl(splits.test));
  write_file_atomic(dir + "corpus.txt", corpus);
  if (preference_pairs > 0) {
    // Prompts of their own, in neither split: preference training then
    // teaches something SFT did not, and the test pairs stay held out.
    std::unordered_set<std::string> seen;
    for (const auto* split : {&splits.train, &splits.test})
      for (const datasets::TaskSample& s : *split) seen.insert(s.prompt);
    datasets::TaskOptions pair_options = options;
    pair_options.seed = options.seed + 1;
    pair_options.count = static_cast<size_t>(preference_pairs);
    pair_options.exclude_prompts = &seen;
    const std::vector<datasets::TaskSample> pair_samples = datasets::make_tasks(pair_options);
    write_file_atomic(dir + "pairs.jsonl", datasets::tasks_to_preference_jsonl(pair_samples, options.seed + 1));
    write_file_atomic(dir + "pairs-test.jsonl", datasets::tasks_to_preference_jsonl(splits.test, options.seed + 2));
    std::cout << "wrote " << dir << "pairs.jsonl (" << pair_samples.size() << " preference pairs), " << dir
              << "pairs-test.jsonl (" << splits.test.size() << ")\n";
  }
  std::cout << "wrote " << dir << "train.jsonl (" << splits.train.size() << " samples), " << dir << "test.jsonl ("
            << splits.test.size() << "), " << dir << "corpus.txt (" << corpus.size() << " bytes): "
            << options.tasks.size() << " tasks x " << options.languages.size() << " languages\n";
  if (splits.test.size() < static_cast<size_t>(test))
    std::cerr << "warning: only " << splits.test.size() << " of " << test
              << " test prompts are not in train.jsonl; use fewer --train or more languages/tasks\n";
  // add and successor have 100 prompts per language: a large train set can
  // use them all, and the test set then has none of that pair.
  std::set<std::pair<std::string, std::string>> covered;
  for (const datasets::TaskSample& s : splits.test) covered.insert({s.task, s.language});
  const size_t pairs = options.tasks.size() * options.languages.size();
  if (test >= static_cast<int64_t>(pairs) && covered.size() < pairs)
    std::cerr << "warning: " << pairs - covered.size()
              << " (task, language) pairs have no test sample: train.jsonl holds all their prompts; use fewer --train\n";
  return 0;
}

}  // namespace st::cli
