// The reader entry points: bytes -> records -> format adapter -> samples,
// with skip-and-count of bad samples when asked.
#include "datasets/readers.h"

#include <functional>

#include "datasets/byte_stream.h"
#include "datasets/chat_formats.h"
#include "datasets/format_detection.h"
#include "datasets/json_source.h"
#include "datasets/preference_formats.h"
#include "datasets/sample_error.h"

namespace st::datasets {
namespace {

const char* kind_text(SampleKind kind) {
  return kind == SampleKind::kChat ? "chat conversations" : "preference pairs";
}

// Reads every sample; with a block size, hands them to on_block in blocks of
// that many (the last may be smaller) and returns nothing, so files larger
// than memory stream through.
template <typename Sample, typename Convert>
std::vector<Sample> read_samples(ByteStream& in, const std::string& name, const ReaderOptions& options,
                                 ReadStats* stats, SampleKind kind, Convert convert, size_t block = 0,
                                 const std::function<void(std::vector<Sample>&)>& on_block = {}) {
  ReadStats local;
  ReadStats& st = stats ? *stats : local;
  st = ReadStats{};
  DataFormat format = options.format;
  if (format != DataFormat::kAuto && sample_kind(format) != kind)
    fail(name, ": data format '", data_format_name(format), "' holds ", kind_text(sample_kind(format)),
         ", but ", kind_text(kind), " are needed here");
  FieldMapping fields = options.fields;
  std::vector<Sample> out;

  for_each_record(in, name, [&](RawRecord& raw) {
    ++st.records;
    try {
      if (!raw.error_reason.empty()) throw SampleError(raw.error_reason, raw.error_message);
      if (format == DataFormat::kAuto) {
        // The first readable record decides for the whole file.
        format = detect_format(raw.value, options.fields, raw.origin, &fields);
        if (sample_kind(format) != kind)
          fail(name, ": the data looks like format '", data_format_name(format), "' (",
               kind_text(sample_kind(format)), ", from the keys at ", raw.origin, "), but ",
               kind_text(kind), " are needed here; if that is wrong, set the dataset's `format`");
      }
      out.push_back(convert(raw.value, RecordContext{raw.origin, format, fields}));
      ++st.accepted;
      if (block > 0 && out.size() >= block) {
        on_block(out);
        out.clear();
      }
    } catch (const SampleError& e) {
      if (!options.skip_invalid && !is_expected_drop(e.reason())) throw Error(e.what());
      ++st.skipped[e.reason()];
    }
  });
  st.format = format;
  if (st.records == 0) fail(name, ": the data file holds no records");
  if (block > 0 && !out.empty()) {
    on_block(out);
    out.clear();
  }
  return out;
}

}  // namespace

std::vector<Conversation> parse_conversations(std::string_view bytes, const std::string& name,
                                              const ReaderOptions& options, ReadStats* stats) {
  auto in = open_memory_bytes(bytes, name);
  return read_samples<Conversation>(*in, name, options, stats, SampleKind::kChat, convert_conversation);
}

std::vector<PreferencePair> parse_preferences(std::string_view bytes, const std::string& name,
                                              const ReaderOptions& options, ReadStats* stats) {
  auto in = open_memory_bytes(bytes, name);
  return read_samples<PreferencePair>(*in, name, options, stats, SampleKind::kPreference,
                                      convert_preference);
}

std::vector<Conversation> read_conversations(const std::string& path, const ReaderOptions& options,
                                             ReadStats* stats) {
  auto in = open_file_bytes(path);
  return read_samples<Conversation>(*in, path, options, stats, SampleKind::kChat, convert_conversation);
}

std::vector<PreferencePair> read_preferences(const std::string& path, const ReaderOptions& options,
                                             ReadStats* stats) {
  auto in = open_file_bytes(path);
  return read_samples<PreferencePair>(*in, path, options, stats, SampleKind::kPreference,
                                      convert_preference);
}

void read_conversation_blocks(const std::string& path, const ReaderOptions& options, size_t block,
                              const std::function<void(std::vector<Conversation>&)>& on_block, ReadStats* stats) {
  ST_CHECK(block > 0);
  auto in = open_file_bytes(path);
  read_samples<Conversation>(*in, path, options, stats, SampleKind::kChat, convert_conversation, block, on_block);
}

void read_preference_blocks(const std::string& path, const ReaderOptions& options, size_t block,
                            const std::function<void(std::vector<PreferencePair>&)>& on_block, ReadStats* stats) {
  ST_CHECK(block > 0);
  auto in = open_file_bytes(path);
  read_samples<PreferencePair>(*in, path, options, stats, SampleKind::kPreference, convert_preference, block,
                               on_block);
}

}  // namespace st::datasets

namespace st::datasets {
namespace {
// Thrown to stop for_each_record at the first readable record.
struct FoundFormat {
  DataFormat format;
};
}  // namespace

DataFormat detect_file_format(const std::string& path, const ReaderOptions& options) {
  if (options.format != DataFormat::kAuto) return options.format;
  auto in = open_file_bytes(path);
  try {
    for_each_record(*in, path, [&](RawRecord& raw) {
      if (!raw.error_reason.empty()) return;  // the reader reports it in order
      FieldMapping fields;
      throw FoundFormat{detect_format(raw.value, options.fields, raw.origin, &fields)};
    });
  } catch (const FoundFormat& found) {
    return found.format;
  }
  fail(path, ": the data file holds no readable record");
}

}  // namespace st::datasets
