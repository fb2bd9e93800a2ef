// A fast 128-bit content digest for cache keys (not cryptographic): two
// independent multiply-xorshift lanes over 8-byte words. It tells "same
// inputs" from "changed inputs"; nothing relies on it against an adversary.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace st {

class Digest {
 public:
  /// Adds bytes; update(a); update(b) equals update(a + b) only when a's size
  /// is a multiple of 8, so callers that hash fields add their sizes too
  /// (field() does).
  void update(std::string_view bytes);
  /// Adds a length-prefixed field, so ("ab","c") and ("a","bc") differ.
  void field(std::string_view bytes);
  /// 32 lowercase hex digits.
  std::string hex() const;

 private:
  void mix(uint64_t word);
  uint64_t a_ = 0x243f6a8885a308d3ULL, b_ = 0x13198a2e03707344ULL;
  uint64_t total_ = 0;
  uint64_t tail_ = 0;
  int tail_bytes_ = 0;
};

/// Digest of a whole file's bytes (read in blocks); throws st::Error naming it.
std::string digest_file(const std::string& path);

}  // namespace st
