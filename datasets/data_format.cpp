// The names users write in recipes for each DataFormat, and what each makes.
#include <array>
#include <utility>

#include "common/error.h"
#include "datasets/readers.h"

namespace st::datasets {
namespace {

constexpr std::array<std::pair<DataFormat, std::string_view>, 9> kNames{{
    {DataFormat::kAuto, "auto"},
    {DataFormat::kMessages, "messages"},
    {DataFormat::kShareGpt, "sharegpt"},
    {DataFormat::kAlpaca, "alpaca"},
    {DataFormat::kPromptCompletion, "prompt_completion"},
    {DataFormat::kPreference, "preference"},
    {DataFormat::kPreferenceTranscripts, "preference_transcripts"},
    {DataFormat::kLlamaFactoryRanking, "llamafactory_ranking"},
    {DataFormat::kOpenAiPreference, "openai_preference"},
}};

}  // namespace

DataFormat parse_data_format(std::string_view name) {
  for (const auto& [format, text] : kNames)
    if (text == name) return format;
  std::string valid;
  for (const auto& [format, text] : kNames) valid += cat(valid.empty() ? "" : ", ", text);
  fail("unknown data format '", name, "': valid formats are ", valid);
}

std::string_view data_format_name(DataFormat format) {
  for (const auto& [f, text] : kNames)
    if (f == format) return text;
  return "unknown";
}

SampleKind sample_kind(DataFormat format) {
  switch (format) {
    case DataFormat::kMessages:
    case DataFormat::kShareGpt:
    case DataFormat::kAlpaca:
    case DataFormat::kPromptCompletion:
      return SampleKind::kChat;
    case DataFormat::kPreference:
    case DataFormat::kPreferenceTranscripts:
    case DataFormat::kLlamaFactoryRanking:
    case DataFormat::kOpenAiPreference:
      return SampleKind::kPreference;
    case DataFormat::kAuto:
      break;
  }
  fail("data format 'auto' has no sample kind until the data has been looked at");
}

}  // namespace st::datasets
