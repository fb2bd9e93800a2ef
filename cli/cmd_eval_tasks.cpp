// salamandra-tune eval-tasks: exact-match accuracy of greedy answers
// (eval/task_accuracy.h) on a chat file, printed as tables per task and per
// language, optionally written as JSON.
#include <cstdio>
#include <map>

#include "common/atomic_file.h"
#include "common/error.h"
#include "datasets/readers.h"
#include "datasets/sample_encoder.h"
#include "dpo/pair_batch.h"
#include "model/lm_head.h"
#include "eval/task_accuracy.h"
#include "model/model_dir.h"
#include "tokenizer/tokenizer.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/model_source.h"

namespace st::cli {
namespace {

void print_table(const char* heading, const std::map<std::string, eval::Tally>& rows) {
  std::printf("%-12s %6s %8s %9s\n", heading, "n", "correct", "accuracy");
  for (const auto& [name, t] : rows)
    std::printf("%-12s %6zu %8zu %8.1f%%\n", name.c_str(), t.n, t.correct, 100 * t.accuracy());
}

}  // namespace

int run_eval_tasks(int argc, char** argv) {
  ModelSource source;
  std::string data_path, output, pairs_path;
  ComputeFlags compute;
  int64_t max_new_tokens = 16, limit = 0, show = 0;
  Args args("eval-tasks",
            "Exact-match accuracy of greedy answers: each sample's last assistant message is the reference;\n"
            "the turns before it are rendered with the model's chat template and the generation prompt, the\n"
            "model answers greedily (stopping on eos and <|im_end|>), and the answer counts when it equals the\n"
            "reference after trimming whitespace. Reports overall, per-task and per-language accuracy.");
  source.add_to(args);
  args.option("data", "FILE", "chat JSONL/JSON (.gz) file, e.g. make-tasks' test.jsonl", &data_path, true);
  args.option("max-new-tokens", "N", "tokens to generate per answer at most", &max_new_tokens);
  args.option("limit", "N", "evaluate only the first N samples (0: all)", &limit);
  args.option("show", "N", "print the first N prompts with reference and answer", &show);
  args.option("pairs", "FILE", "also: preference accuracy on preference pairs (prompt, chosen, rejected): the share "
              "whose chosen completion the model gives a higher log-probability than the rejected one", &pairs_path);
  args.option("output", "FILE", "write {accuracy, n, per_task, per_language[, preference_accuracy, pairs]} as JSON",
              &output);
  compute.add_to(args);
  if (!args.parse(argc, argv)) return 0;
  if (max_new_tokens < 1) throw UsageError("--max-new-tokens must be >= 1");
  if (limit < 0 || show < 0) throw UsageError("--limit and --show must be >= 0");

  // The data first: a bad file fails before the model is loaded.
  std::vector<datasets::Conversation> samples = datasets::read_conversations(data_path, datasets::ReaderOptions{});
  std::vector<eval::Labels> labels = eval::read_labels(data_path);
  ST_CHECK(labels.size() == samples.size(), labels.size(), " labels for ", samples.size(), " samples");
  if (limit > 0 && static_cast<size_t>(limit) < samples.size()) samples.resize(static_cast<size_t>(limit));
  std::vector<datasets::PreferencePair> pairs;
  if (!pairs_path.empty()) pairs = datasets::read_preferences(pairs_path, datasets::ReaderOptions{});

  at::TensorOptions options = compute.tensor_options();
  const std::string model_dir = source.tokenizer_dir();  // tokenizer files and chat template
  Tokenizer tokenizer = Tokenizer::load(model_dir);
  auto model = source.load(options);
  // Prompts as training encodes them (template, generation prompt, one BOS).
  const datasets::SampleEncoder encoder(tokenizer, datasets::ChatTemplate::for_tokenizer(tokenizer), {});
  const eval::TaskAccuracy result = eval::task_accuracy(
      *model, tokenizer, encoder, samples, labels, max_new_tokens, [&](const eval::AnsweredSample& a) {
        if (static_cast<int64_t>(a.index) >= show) return;
        const datasets::Json& last = a.prompt->empty() ? datasets::Json() : a.prompt->back();
        std::printf("[%s %s] %s\n  reference: %s\n  answer:    %s %s\n", a.labels->task.c_str(),
                    a.labels->language.c_str(), last.is_object() ? last.value("content", "").c_str() : "",
                    a.reference.c_str(), a.answer.c_str(), a.correct ? "(correct)" : "(wrong)");
      });

  print_table("task", result.per_task);
  std::printf("\n");
  print_table("language", result.per_language);
  std::printf("\naccuracy %.1f%% (%zu of %zu) on %s\n", 100 * result.overall.accuracy(), result.overall.correct,
              result.overall.n, data_path.c_str());
  nlohmann::ordered_json json = result.to_json();
  if (!pairs.empty()) {
    size_t preferred = 0;
    for (const datasets::PreferencePair& pair : pairs) {
      const auto [chosen, rejected] = dpo::score_pair(*model, encoder.encode_pair(pair), kDefaultLmHeadChunk);
      preferred += chosen > rejected ? 1 : 0;
    }
    const double share = static_cast<double>(preferred) / static_cast<double>(pairs.size());
    std::printf("preference accuracy %.1f%% (%zu of %zu pairs: log p(chosen) > log p(rejected)) on %s\n", 100 * share,
                preferred, pairs.size(), pairs_path.c_str());
    json["preference_accuracy"] = share;
    json["pairs"] = pairs.size();
  }
  if (!output.empty()) write_file_atomic(output, json.dump(2) + "\n");
  return 0;
}

}  // namespace st::cli
