// `prepare`: data files -> token cache, tokenized once on all cores.
//
// The cache key is a digest of everything that decides the tokens: the
// bytes of every data file, of the tokenizer files, the chat template and
// its variables, and the reader/encoder options. A cache whose key matches
// is reused; one built from other inputs is stale and rebuilt in its place.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "datasets/data_config.h"
#include "datasets/token_cache.h"

namespace st::datasets {

/// What happened to the samples of one split.
struct PrepareReport {
  std::string split;  // "train" or "eval"
  std::string cache_dir;
  bool reused = false;
  SampleKind kind = SampleKind::kChat;
  size_t records = 0;   // records in the files
  size_t samples = 0;   // samples in the cache
  size_t truncated = 0; // samples cut to max_length (kept)
  std::map<std::string, size_t> dropped;  // reason -> samples not in the cache
  /// field -> samples carrying it that the chat template never renders
  /// (datasets/unrendered_fields.h)
  std::map<std::string, size_t> unrendered;
  size_t tokens = 0, trained_tokens = 0;
  double seconds = 0;
  Json to_json() const;
  static PrepareReport from_json(const Json& j);
};

/// Progress callback: (samples done, samples total); total 0 when unknown
/// (prepare streams files and does not count them first).
using PrepareProgress = std::function<void(size_t done, size_t total)>;

/// The encoder for a config: the model dir's tokenizer and chat template
/// (or data.chat_template), with the template variables.
struct EncoderBundle {
  Tokenizer tokenizer;
  ChatTemplate chat_template;
  EncoderOptions options;
};
EncoderBundle load_encoder(const DataConfig& config);

/// The format of a split's files: the configured one, or detected from the
/// first file (every file of a split must then have that kind).
SampleKind split_kind(const DataConfig& config, const std::vector<std::string>& files);

/// Builds or reuses the cache of `files`; returns its directory. The report
/// is the one stored with the cache (a reused cache reports how it was built).
std::string prepare_split(const DataConfig& config, const EncoderBundle& encoder,
                          const std::vector<std::string>& files, const std::string& split, PrepareReport* report,
                          const PrepareProgress& progress = {});

/// Encodes samples of one kind in parallel, in order: the building block of
/// prepare_split (and of inspect-data, which shows samples without a cache).
/// For each sample, `emit` gets the encoded sequences (1 or 3) or, when it
/// was dropped, the reason and message. Throws on rejections the config
/// does not allow to skip.
struct EncodedSample {
  std::vector<TokenSequence> sequences;  // chat: 1; preference: prompt, chosen, rejected
  bool truncated = false;
  std::string dropped_reason;  // non-empty: dropped
  std::string dropped_detail;
};
std::vector<EncodedSample> encode_samples(const SampleEncoder& encoder, const std::vector<Conversation>& chats,
                                          const std::vector<PreferencePair>& pairs, bool skip_invalid, int workers,
                                          const PrepareProgress& progress = {});

}  // namespace st::datasets
