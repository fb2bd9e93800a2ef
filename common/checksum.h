// A fast checksum of bytes (xxHash's XXH3, 128 bits, streaming; tens of
// GB/s where Digest manages about one), for reading back what export and
// merge wrote: a model's every byte is hashed twice, once on the way out and
// once from the file, so the hash must not cost more than the disk does.
// Not for cache keys (Digest) nor for people checking files (SHA-256).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace st {

class Checksum {
 public:
  Checksum();
  ~Checksum();
  Checksum(Checksum&&) noexcept;
  Checksum& operator=(Checksum&&) noexcept;
  /// Adds bytes; pieces of any size give the checksum of their concatenation.
  void update(const void* data, size_t bytes);
  /// 32 lowercase hex digits.
  std::string hex() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// The checksum of one piece of bytes, as hex().
std::string checksum_hex(const void* data, size_t bytes);

class MappedFile;  // common/mapped_file.h

/// The checksum of bytes [offset, offset + bytes) of a mapped file, read
/// once as a read-back reads: its pages brought in ahead and dropped after,
/// so that checking a large file never holds it.
std::string checksum_hex(const MappedFile& file, size_t offset, size_t bytes);

}  // namespace st
