// libFuzzer target for the data readers: any bytes, read as any format with
// or without skip_invalid, must either give samples or be refused with
// st::Error. A crash, sanitizer report or any other exception (a stray
// nlohmann type_error, say) is a finding.
//
// The first input byte picks the format (low nibble) and whether to skip
// invalid samples (bit 4); the rest is the file. Both the chat and the
// preference entry point see every input, so detection's kind check and
// every adapter are reached; gzip inputs reach the inflater.
//
// Build (clang): see scripts/fuzz_readers.sh.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/error.h"
#include "datasets/readers.h"

namespace {

constexpr st::datasets::DataFormat kFormats[] = {
    st::datasets::DataFormat::kAuto,           st::datasets::DataFormat::kMessages,
    st::datasets::DataFormat::kShareGpt,       st::datasets::DataFormat::kAlpaca,
    st::datasets::DataFormat::kPromptCompletion, st::datasets::DataFormat::kPreference,
    st::datasets::DataFormat::kPreferenceTranscripts, st::datasets::DataFormat::kLlamaFactoryRanking,
    st::datasets::DataFormat::kOpenAiPreference,
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  st::datasets::ReaderOptions options;
  options.format = kFormats[(data[0] & 0x0f) % std::size(kFormats)];
  options.skip_invalid = (data[0] & 0x10) != 0;
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  st::datasets::ReadStats stats;
  try {
    st::datasets::parse_conversations(bytes, "fuzz.jsonl", options, &stats);
  } catch (const st::Error&) {
  }
  try {
    st::datasets::parse_preferences(bytes, "fuzz.jsonl", options, &stats);
  } catch (const st::Error&) {
  }
  return 0;
}
