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
// Build (clang): see tools/fuzz_readers.sh.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/error.h"
#include "datasets/readers.h"

namespace {

constexpr st::data::DataFormat kFormats[] = {
    st::data::DataFormat::kAuto,           st::data::DataFormat::kMessages,
    st::data::DataFormat::kShareGpt,       st::data::DataFormat::kAlpaca,
    st::data::DataFormat::kPromptCompletion, st::data::DataFormat::kPreference,
    st::data::DataFormat::kPreferenceTranscripts, st::data::DataFormat::kLlamaFactoryRanking,
    st::data::DataFormat::kOpenAiPreference,
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  st::data::ReaderOptions options;
  options.format = kFormats[(data[0] & 0x0f) % std::size(kFormats)];
  options.skip_invalid = (data[0] & 0x10) != 0;
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  st::data::ReadStats stats;
  try {
    st::data::parse_conversations(bytes, "fuzz.jsonl", options, &stats);
  } catch (const st::Error&) {
  }
  try {
    st::data::parse_preferences(bytes, "fuzz.jsonl", options, &stats);
  } catch (const st::Error&) {
  }
  return 0;
}
