// salamandra-tune eval-tasks: exact-match accuracy of a model's greedy
// answers on a chat file whose last assistant turn is the reference answer
// (make-tasks writes such files). Each sample is rendered up to that turn
// with the model's chat template and the generation prompt, encoded as the
// SFT encoder encodes prompts (one BOS), answered greedily until eos or
// <|im_end|>, and compared after trimming whitespace. Accuracy is reported
// overall and per task and per language (the records' optional "task" and
// "language" keys; "-" when absent).
#include <ATen/core/grad_mode.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <map>

#include "common/atomic_file.h"
#include "common/error.h"
#include "datasets/byte_stream.h"
#include "datasets/json_source.h"
#include "datasets/readers.h"
#include "datasets/sample_encoder.h"
#include "model/model_dir.h"
#include "model/tokenizer.h"
#include "tools/args.h"
#include "tools/commands.h"

namespace st::cli {
namespace {

struct Labels {
  std::string task, language;
};

// The "task"/"language" keys of every record, in file order. The readers
// drop keys they do not use, so these are read in a second pass; the file
// has already been read without error, so records match one to one.
std::vector<Labels> read_labels(const std::string& path) {
  std::vector<Labels> out;
  auto in = data::open_file_bytes(path);
  data::for_each_record(*in, path, [&](data::RawRecord& raw) {
    auto label = [&](const char* key) {
      const data::Json* value = raw.value.is_object() && raw.value.contains(key) ? &raw.value[key] : nullptr;
      return value && value->is_string() ? value->get<std::string>() : std::string("-");
    };
    out.push_back({label("task"), label("language")});
  });
  return out;
}

std::string trim(const std::string& text) {
  const char* space = " \t\r\n";
  size_t begin = text.find_first_not_of(space);
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(space) + 1 - begin);
}

// The conversation before its last assistant turn, and that turn's text.
std::pair<data::Json, std::string> split_reference(const data::Conversation& conversation) {
  const data::Json& messages = conversation.messages;
  for (size_t i = messages.size(); i-- > 0;) {
    if (messages[i]["role"] != "assistant") continue;
    if (!messages[i].contains("content") || !messages[i]["content"].is_string())
      fail(conversation.origin, ": the last assistant message has no text content to compare with");
    data::Json prompt = data::Json::array();
    for (size_t j = 0; j < i; ++j) prompt.push_back(messages[j]);
    return {prompt, messages[i]["content"].get<std::string>()};
  }
  fail(conversation.origin, ": no assistant message to take the reference answer from");
}

struct Tally {
  size_t n = 0, correct = 0;
  double accuracy() const { return n ? static_cast<double>(correct) / static_cast<double>(n) : 0.0; }
};

void print_table(const char* heading, const std::map<std::string, Tally>& rows) {
  std::printf("%-12s %6s %8s %9s\n", heading, "n", "correct", "accuracy");
  for (const auto& [name, t] : rows) std::printf("%-12s %6zu %8zu %8.1f%%\n", name.c_str(), t.n, t.correct, 100 * t.accuracy());
}

nlohmann::ordered_json tally_json(const std::map<std::string, Tally>& rows) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& [name, t] : rows) out[name] = {{"accuracy", t.accuracy()}, {"n", t.n}, {"correct", t.correct}};
  return out;
}

}  // namespace

int run_eval_tasks(int argc, char** argv) {
  std::string model_dir, data_path, output;
  ComputeFlags compute;
  int64_t max_new_tokens = 16, limit = 0, show = 0;
  Args args("eval-tasks",
            "Exact-match accuracy of greedy answers: each sample's last assistant message is the reference;\n"
            "the turns before it are rendered with the model's chat template and the generation prompt, the\n"
            "model answers greedily (stopping on eos and <|im_end|>), and the answer counts when it equals the\n"
            "reference after trimming whitespace. Reports overall, per-task and per-language accuracy.");
  args.option("model", "DIR", "Hugging Face model dir (weights, config.json, tokenizer files)", &model_dir, true);
  args.option("data", "FILE", "chat JSONL/JSON (.gz) file, e.g. make-tasks' test.jsonl", &data_path, true);
  args.option("max-new-tokens", "N", "tokens to generate per answer at most", &max_new_tokens);
  args.option("limit", "N", "evaluate only the first N samples (0: all)", &limit);
  args.option("show", "N", "print the first N prompts with reference and answer", &show);
  args.option("output", "FILE", "write {accuracy, n, per_task, per_language} as JSON", &output);
  compute.add_to(args);
  if (!args.parse(argc, argv)) return 0;
  if (max_new_tokens < 1) throw UsageError("--max-new-tokens must be >= 1");
  if (limit < 0 || show < 0) throw UsageError("--limit and --show must be >= 0");

  // The data first: a bad file fails before the model is loaded.
  std::vector<data::Conversation> samples = data::read_conversations(data_path, data::ReaderOptions{});
  std::vector<Labels> labels = read_labels(data_path);
  ST_CHECK(labels.size() == samples.size(), labels.size(), " labels for ", samples.size(), " samples");
  if (limit > 0 && static_cast<size_t>(limit) < samples.size()) samples.resize(static_cast<size_t>(limit));

  at::TensorOptions options = compute.tensor_options();
  Tokenizer tokenizer = Tokenizer::load(model_dir);
  auto model = load_model(model_dir, options);
  // Prompts as training encodes them (template, generation prompt, one BOS).
  const data::SampleEncoder encoder(tokenizer, data::ChatTemplate::for_tokenizer(tokenizer), {});
  // Plain greedy decoding whatever generation_config.json says: exact match
  // asks for the model's single most likely answer.
  GenerationSettings settings;
  settings.max_new_tokens = max_new_tokens;
  settings.stop_ids = tokenizer.end_of_turn_ids();

  at::NoGradGuard no_grad;
  Tally overall;
  std::map<std::string, Tally> per_task, per_language;
  for (size_t i = 0; i < samples.size(); ++i) {
    auto [prompt, reference] = split_reference(samples[i]);
    const std::vector<int32_t> prompt_ids = encoder.encode_prompt(prompt, samples[i].tools);
    std::vector<int64_t> produced =
        generate(*model, std::vector<int64_t>(prompt_ids.begin(), prompt_ids.end()), settings);
    std::vector<int32_t> ids(produced.begin(), produced.end());
    const std::string answer = trim(tokenizer.decode(ids, /*skip_special_tokens=*/true));
    const bool correct = answer == trim(reference);
    for (Tally* t : {&overall, &per_task[labels[i].task], &per_language[labels[i].language]}) {
      ++t->n;
      t->correct += correct;
    }
    if (static_cast<int64_t>(i) < show) {
      const data::Json& last = prompt.empty() ? data::Json() : prompt.back();
      std::printf("[%s %s] %s\n  reference: %s\n  answer:    %s %s\n", labels[i].task.c_str(),
                  labels[i].language.c_str(), last.is_object() ? last.value("content", "").c_str() : "",
                  reference.c_str(), answer.c_str(), correct ? "(correct)" : "(wrong)");
    }
  }

  print_table("task", per_task);
  std::printf("\n");
  print_table("language", per_language);
  std::printf("\naccuracy %.1f%% (%zu of %zu) on %s\n", 100 * overall.accuracy(), overall.correct, overall.n,
              data_path.c_str());
  if (!output.empty()) {
    nlohmann::ordered_json report = {{"accuracy", overall.accuracy()},
                                     {"n", overall.n},
                                     {"correct", overall.correct},
                                     {"per_task", tally_json(per_task)},
                                     {"per_language", tally_json(per_language)}};
    write_file_atomic(output, report.dump(2) + "\n");
  }
  return 0;
}

}  // namespace st::cli
