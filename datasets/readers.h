// Readers: instruction and preference files -> Conversation / PreferencePair.
//
// One entry point per sample kind. A reader takes a .jsonl or .json file
// (gzip-compressed or not: detected by the magic bytes, not the name),
// recognises or is told the schema, converts every record to the OpenAI /
// Hugging Face message shape of records.h and validates it. Every error
// names the file, the line (and for JSON arrays the record index, counted
// from 0 as in Python's data[i]) and the key, so a user can fix the file.
//
// Schemas (each format's converter documents its conventions):
//   messages                {"messages": [{"role", "content", ...}], "tools"?}
//   sharegpt                {"conversations": [{"from", "value"}], "system"?, "tools"?}
//   alpaca                  {"instruction", "input"?, "output"|"response", "system"?, "history"?}
//   prompt_completion       {"prompt", "completion"}: strings or message lists
//   preference              {"prompt"?, "chosen", "rejected"}: strings or message lists
//   preference_transcripts  {"chosen", "rejected"}: hh-rlhf "\n\nHuman: ...\n\nAssistant: ..." text
//   llamafactory_ranking    {"conversations", "chosen": {from, value}, "rejected": {from, value}}
//   openai_preference       {"input": {"messages", "tools"?}, "preferred_output", "non_preferred_output"}
// MT-bench style question files ({"turns": [prompts]}) hold no replies to
// train on; they are refused with an error that says so.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "datasets/records.h"

namespace st::datasets {

enum class DataFormat {
  kAuto,
  kMessages,
  kShareGpt,
  kAlpaca,
  kPromptCompletion,
  kPreference,
  kPreferenceTranscripts,
  kLlamaFactoryRanking,
  kOpenAiPreference,
};

/// "auto", "messages", "sharegpt", "alpaca", "prompt_completion", "preference",
/// "preference_transcripts", "llamafactory_ranking", "openai_preference";
/// anything else is an st::Error listing these.
DataFormat parse_data_format(std::string_view name);
std::string_view data_format_name(DataFormat format);

enum class SampleKind { kChat, kPreference };
/// What a format produces; kAuto has no kind (st::Error).
SampleKind sample_kind(DataFormat format);

/// Renames for schemas that use other key names. An empty string means the
/// format's own default (shown after each field).
struct FieldMapping {
  std::string messages;    // "messages" (messages), "conversations" (sharegpt, ranking)
  std::string role;        // "role" (messages), "from" (sharegpt, ranking)
  std::string content;     // "content" (messages), "value" (sharegpt, ranking)
  /// Extra role values, applied before the format's own names, e.g.
  /// {"bot": "assistant"} or {"function": "tool"}.
  std::map<std::string, std::string> role_aliases;
  std::string system;      // "system" (sharegpt, alpaca, ranking)
  std::string instruction; // "instruction" (alpaca)
  std::string input;       // "input" (alpaca; openai_preference's prompt object)
  std::string output;      // "output", else "response" (alpaca)
  std::string history;     // "history" (alpaca: [[user, assistant], ...])
  std::string prompt;      // "prompt" (prompt_completion, preference)
  std::string completion;  // "completion" (prompt_completion)
  std::string chosen;      // "chosen"; "preferred_output" (openai_preference)
  std::string rejected;    // "rejected"; "non_preferred_output" (openai_preference)
  std::string tools;       // "tools"
};

struct ReaderOptions {
  DataFormat format = DataFormat::kAuto;
  FieldMapping fields;
  /// Skip invalid samples (counted in ReadStats::skipped) instead of
  /// failing. Files that are not JSONL or a JSON array at all still fail.
  bool skip_invalid = false;
};

struct ReadStats {
  size_t records = 0;   // records seen (non-blank lines / array elements)
  size_t accepted = 0;  // records returned
  std::map<std::string, size_t> skipped;  // short reason -> count
  DataFormat format = DataFormat::kAuto;  // the format used (detected or given)
};

/// The format of a file: options.format, or detected from its first
/// readable record (which decides the kind of sample the file holds).
DataFormat detect_file_format(const std::string& path, const ReaderOptions& options);

/// Reads a chat file. `stats` may be null.
std::vector<Conversation> read_conversations(const std::string& path,
                                             const ReaderOptions& options,
                                             ReadStats* stats = nullptr);
/// Reads a preference file. `stats` may be null.
std::vector<PreferencePair> read_preferences(const std::string& path,
                                             const ReaderOptions& options,
                                             ReadStats* stats = nullptr);

/// Streams a file's samples to `on_block` in blocks of at most `block`, so
/// a file larger than memory can be processed block by block; errors and
/// stats as read_conversations / read_preferences.
void read_conversation_blocks(const std::string& path, const ReaderOptions& options, size_t block,
                              const std::function<void(std::vector<Conversation>&)>& on_block,
                              ReadStats* stats = nullptr);
void read_preference_blocks(const std::string& path, const ReaderOptions& options, size_t block,
                            const std::function<void(std::vector<PreferencePair>&)>& on_block,
                            ReadStats* stats = nullptr);

/// The same on bytes already in memory (tests, fuzzing); `name` stands for
/// the file name in origins and messages.
std::vector<Conversation> parse_conversations(std::string_view bytes, const std::string& name,
                                              const ReaderOptions& options,
                                              ReadStats* stats = nullptr);
std::vector<PreferencePair> parse_preferences(std::string_view bytes, const std::string& name,
                                              const ReaderOptions& options,
                                              ReadStats* stats = nullptr);

}  // namespace st::datasets
