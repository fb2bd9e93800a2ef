#include "eval/task_accuracy.h"

#include <ATen/core/grad_mode.h>

#include "common/error.h"
#include "datasets/byte_stream.h"
#include "datasets/json_source.h"
#include "model/generation.h"

namespace st::eval {
namespace {

std::string trim(const std::string& text) {
  const char* space = " \t\r\n";
  size_t begin = text.find_first_not_of(space);
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(space) + 1 - begin);
}

// The conversation before its last assistant turn, and that turn's text.
std::pair<datasets::Json, std::string> split_reference(const datasets::Conversation& conversation) {
  const datasets::Json& messages = conversation.messages;
  for (size_t i = messages.size(); i-- > 0;) {
    if (messages[i]["role"] != "assistant") continue;
    if (!messages[i].contains("content") || !messages[i]["content"].is_string())
      fail(conversation.origin, ": the last assistant message has no text content to compare with");
    datasets::Json prompt = datasets::Json::array();
    for (size_t j = 0; j < i; ++j) prompt.push_back(messages[j]);
    return {prompt, messages[i]["content"].get<std::string>()};
  }
  fail(conversation.origin, ": no assistant message to take the reference answer from");
}

nlohmann::ordered_json tally_json(const std::map<std::string, Tally>& rows) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& [name, t] : rows) out[name] = {{"accuracy", t.accuracy()}, {"n", t.n}, {"correct", t.correct}};
  return out;
}

}  // namespace

std::vector<Labels> read_labels(const std::string& path) {
  std::vector<Labels> out;
  auto in = datasets::open_file_bytes(path);
  datasets::for_each_record(*in, path, [&](datasets::RawRecord& raw) {
    auto label = [&](const char* key) {
      const datasets::Json* value = raw.value.is_object() && raw.value.contains(key) ? &raw.value[key] : nullptr;
      return value && value->is_string() ? value->get<std::string>() : std::string("-");
    };
    out.push_back({label("task"), label("language")});
  });
  return out;
}

nlohmann::ordered_json TaskAccuracy::to_json() const {
  return {{"accuracy", overall.accuracy()},
          {"n", overall.n},
          {"correct", overall.correct},
          {"per_task", tally_json(per_task)},
          {"per_language", tally_json(per_language)}};
}

TaskAccuracy task_accuracy(const LlamaModel& model, const Tokenizer& tokenizer,
                           const datasets::SampleEncoder& encoder,
                           const std::vector<datasets::Conversation>& samples, const std::vector<Labels>& labels,
                           int64_t max_new_tokens, const std::function<void(const AnsweredSample&)>& on_answer) {
  ST_CHECK(labels.size() >= samples.size(), labels.size(), " labels for ", samples.size(), " samples");
  // Plain greedy decoding whatever generation_config.json says: exact match
  // asks for the model's single most likely answer.
  GenerationSettings settings;
  settings.max_new_tokens = max_new_tokens;
  settings.stop_ids = tokenizer.end_of_turn_ids();
  at::NoGradGuard no_grad;
  TaskAccuracy result;
  for (size_t i = 0; i < samples.size(); ++i) {
    auto [prompt, reference] = split_reference(samples[i]);
    const std::vector<int32_t> prompt_ids = encoder.encode_prompt(prompt, samples[i].tools);
    std::vector<int64_t> produced;
    try {
      produced = generate(model, std::vector<int64_t>(prompt_ids.begin(), prompt_ids.end()), settings);
    } catch (const Error& e) {  // a prompt longer than the model's positions
      fail(samples[i].origin, ": ", e.what());
    }
    std::vector<int32_t> ids(produced.begin(), produced.end());
    const std::string answer = trim(tokenizer.decode(ids, /*skip_special_tokens=*/true));
    const bool correct = answer == trim(reference);
    for (Tally* t : {&result.overall, &result.per_task[labels[i].task], &result.per_language[labels[i].language]}) {
      ++t->n;
      t->correct += correct;
    }
    if (on_answer) on_answer({i, &labels[i], &prompt, reference, answer, correct});
  }
  return result;
}

}  // namespace st::eval
