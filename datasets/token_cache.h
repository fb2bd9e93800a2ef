// The token cache: tokenized samples on disk, memory-mapped for training.
//
// A cache is a directory of four files:
//   ids.bin      uint32 token ids of all sequences, back to back
//   mask.bin     uint8 per token, 1 where the token is a training target
//   offsets.bin  uint64 [sequences + 1]: where each sequence starts in ids
//   meta.json    the key it was built for, what it holds, and the counts
// It is written under a temporary name and renamed into place, so a cache
// that exists is complete. Chat caches hold one sequence per sample;
// preference caches three (prompt, chosen, rejected).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/mapped_file.h"
#include "datasets/batching.h"
#include "datasets/records.h"
#include "datasets/sample_encoder.h"

namespace st::datasets {

/// Read-only view of a cache directory.
class TokenCache {
 public:
  /// Maps the files; throws st::Error naming the file if one is missing,
  /// truncated or inconsistent with the others.
  static TokenCache open(const std::string& dir);

  size_t sequences() const { return sequence_count_; }
  size_t tokens() const { return token_count_; }
  std::span<const uint32_t> ids(size_t sequence) const;
  std::span<const uint8_t> mask(size_t sequence) const;
  uint32_t length(size_t sequence) const;
  /// Lengths of all sequences (for planning batches).
  std::vector<uint32_t> lengths() const;
  /// Access for batching; holds its own reference to the mapped files.
  SequenceView view() const;
  /// Sequences per sample: 1 (chat) or 3 (preference).
  uint32_t sequences_per_sample() const;
  const Json& meta() const { return meta_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  Json meta_;
  std::shared_ptr<MappedFile> ids_, mask_, offsets_;
  size_t sequence_count_ = 0, token_count_ = 0;
};

/// Appends sequences to a new cache and publishes it atomically.
class TokenCacheWriter {
 public:
  /// Writes into "<dir>.tmp-<pid>"; nothing appears at `dir` until finish().
  explicit TokenCacheWriter(std::string dir);
  ~TokenCacheWriter();  // removes the temporary directory unless finished
  TokenCacheWriter(const TokenCacheWriter&) = delete;
  TokenCacheWriter& operator=(const TokenCacheWriter&) = delete;

  void add(std::span<const int32_t> ids, std::span<const uint8_t> mask);
  /// Flushes, writes meta.json (with "sequences" and "tokens" added) and
  /// renames the directory to `dir`, replacing a previous cache there.
  void finish(Json meta);

 private:
  struct Files;
  std::string dir_, tmp_dir_;
  std::unique_ptr<Files> files_;
  uint64_t tokens_ = 0, sequences_ = 0;
  bool finished_ = false;
};

}  // namespace st::datasets
