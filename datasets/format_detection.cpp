// Key-based format detection. Each format has a signature of keys; a record
// that fits none or several is refused rather than guessed at, because a
// wrong guess trains on the wrong text without any error.
#include "datasets/format_detection.h"

#include <vector>

#include "common/error.h"
#include "datasets/sample_error.h"

namespace st::datasets {
namespace {

bool has(const Json& record, const std::string& key) { return record.contains(key); }

}  // namespace

DataFormat detect_format(const Json& record, const FieldMapping& given, const std::string& origin,
                         FieldMapping* resolved) {
  *resolved = given;
  auto name = [](const std::string& mapped, const char* fallback) { return field_name(mapped, fallback); };
  const bool chosen = has(record, name(given.chosen, "chosen"));
  const bool rejected = has(record, name(given.rejected, "rejected"));

  // The message container: the mapped key, or "messages" / "conversations".
  // Its first message says which style it is: role/content or from/value.
  std::vector<std::string> containers;
  if (!given.messages.empty()) {
    if (has(record, given.messages)) containers.push_back(given.messages);
  } else {
    for (const char* key : {"messages", "conversations"})
      if (has(record, key)) containers.push_back(key);
  }
  std::vector<DataFormat> candidates;
  auto add = [&](DataFormat f) { candidates.push_back(f); };
  for (const std::string& key : containers) {
    const Json& list = record[key];
    bool sharegpt = key == "conversations";
    if (list.is_array() && !list.empty() && list[0].is_object()) {
      const Json& first = list[0];
      if (first.contains(name(given.role, "role"))) sharegpt = false;
      else if (first.contains(name(given.role, "from"))) sharegpt = true;
    }
    if (chosen && rejected && sharegpt) add(DataFormat::kLlamaFactoryRanking);
    else if (!(chosen && rejected)) add(sharegpt ? DataFormat::kShareGpt : DataFormat::kMessages);
    resolved->messages = key;
  }
  if (has(record, name(given.input, "input")) &&
      has(record, name(given.chosen, "preferred_output")) &&
      has(record, name(given.rejected, "non_preferred_output")))
    add(DataFormat::kOpenAiPreference);
  if (chosen && rejected && containers.empty()) {
    const Json& c = record[name(given.chosen, "chosen")];
    bool has_prompt = has(record, name(given.prompt, "prompt"));
    add(!has_prompt && c.is_string() ? DataFormat::kPreferenceTranscripts : DataFormat::kPreference);
  }
  if (has(record, name(given.instruction, "instruction"))) add(DataFormat::kAlpaca);
  if (has(record, name(given.prompt, "prompt")) && has(record, name(given.completion, "completion")))
    add(DataFormat::kPromptCompletion);

  if (candidates.size() == 1) return candidates[0];
  if (candidates.empty()) {
    if (has(record, "turns"))
      fail(origin, ": this looks like an MT-bench style question file (\"turns\" holds user prompts "
           "only, no assistant replies to train on); it cannot be read as training data. Keys seen: ",
           list_keys(record));
    fail(origin, ": cannot tell the data format from the record's keys (", list_keys(record),
         "); set the dataset's `format` in the recipe (messages, sharegpt, alpaca, prompt_completion, "
         "preference, preference_transcripts, llamafactory_ranking, openai_preference) and, for other "
         "key names, its field mapping");
  }
  std::string fits;
  for (DataFormat f : candidates) fits += cat(fits.empty() ? "" : ", ", data_format_name(f));
  fail(origin, ": the record's keys (", list_keys(record), ") fit several data formats (", fits,
       "); set the dataset's `format` in the recipe to say which");
}

}  // namespace st::datasets
