// Forward-only byte sources for the readers: a file or bytes in memory,
// either one possibly gzip-compressed. Compression is recognised by the gzip
// magic bytes (1f 8b), not by the file name, so a misnamed file still reads.
// Decompression streams: a multi-GB .jsonl.gz is never held in memory.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace st::datasets {

class ByteStream {
 public:
  virtual ~ByteStream() = default;
  /// Reads up to `n` bytes into `out`; returns 0 only at the end of the data.
  /// Throws st::Error on I/O errors and corrupt or truncated gzip data.
  virtual size_t read(char* out, size_t n) = 0;
};

/// Opens `path` (st::Error naming it if that fails).
std::unique_ptr<ByteStream> open_file_bytes(const std::string& path);
/// Reads `bytes`, which must outlive the stream; `name` is used in errors.
std::unique_ptr<ByteStream> open_memory_bytes(std::string_view bytes, const std::string& name);

}  // namespace st::datasets
