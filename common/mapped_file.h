// A whole file mapped read-only (an empty file maps to nothing): the token
// cache's arrays, and the GGUF read-back (a mapping's bytes are hashed where
// they lie; read() would copy every byte of a model once more).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace st {

/// Maps the pages under [data, data + bytes) of a file mapping into the
/// process's page tables in one call (madvise MADV_POPULATE_READ) instead of
/// a fault per page. Advice only: kernels before 5.14 take the faults.
void populate_pages(const void* data, size_t bytes);

/// Drops the whole pages inside [data, data + bytes) of a file mapping from
/// the process (madvise MADV_DONTNEED): a reader done with them holds no
/// more of the file. The bytes stay readable (touching them re-reads the
/// page cache); partial pages at the ends stay, for their neighbours.
/// Returns false where madvise fails (errno says why).
bool release_pages(const void* data, size_t bytes);

class MappedFile {
 public:
  /// st::Error naming `path` when it cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  /// Maps `size` bytes of a file still being written, which will reach
  /// that size: bytes past its current end must not be read (SIGBUS) until
  /// they are written.
  MappedFile(const std::string& path, size_t size);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  /// populate_pages over bytes [offset, offset + bytes) of the file.
  void populate(size_t offset, size_t bytes) const;
  /// release_pages over bytes [offset, offset + bytes) of the file.
  void release(size_t offset, size_t bytes) const;

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace st
