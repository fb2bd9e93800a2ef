// Crash-safe output files: everything we write goes to a temporary name in
// the same directory, is flushed to disk and then renamed over the target, so
// a kill at any moment leaves either the old file or the complete new one.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace st {

class Writeback;  // common/writeback.h

/// The most bytes one write() hands the kernel. A larger write lets the
/// page cache take folios as large as the write (up to 2 MB), and on our
/// 2-core VM such fresh pages were slow to first touch (our guess: free
/// 2 MB blocks are what a VM's balloon hands back to its host): 800 MB
/// written to a new file after a few seconds idle took 1.8 to 2.0 s in
/// 4 MiB writes, 0.6 to 1.0 s in 1 MiB, 0.13 to 0.22 s in 256 KiB and
/// 0.16 to 0.26 s in 64 KiB. (copy_file_range moves 64 KiB a step.)
inline constexpr size_t kWritePieceBytes = 256 << 10;

/// Whether commit() waits for the bytes to reach the disk. `deferred` is for
/// files inside a staged dir that is published as a whole: its writer calls
/// sync_file on each before the dir's rename, and may overlap that wait
/// with other work (export reads its shards back meanwhile).
enum class Durability { synced, deferred };

/// A file being written under a temporary name; commit() makes it visible.
/// Destroying it without commit() removes the temporary file.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  /// Appends bytes; throws st::Error naming the file on failure.
  void write(const void* data, size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  /// Appends `size` bytes of `source_fd` from `offset`, copied by the kernel
  /// (kernel_copy); false, with nothing appended, where it cannot.
  bool append_copy(int source_fd, uint64_t offset, uint64_t size);
  /// Hands the bytes appended so far to the file, where a reader of
  /// temp_path() sees them; throws st::Error naming the file on failure.
  void flush();
  /// Flushes, fsyncs (unless deferred) and renames the temporary file to
  /// the final path.
  void commit(Durability durability = Durability::synced);

  const std::string& path() const { return path_; }
  /// The name the file is written under until commit().
  const std::string& temp_path() const { return temp_path_; }
  /// Bytes appended so far.
  uint64_t size() const { return size_; }

 private:
  /// `bytes` more were appended.
  void appended(uint64_t bytes);

  std::string path_;
  std::string temp_path_;
  std::FILE* file_ = nullptr;
  uint64_t size_ = 0;  // bytes appended
  std::unique_ptr<Writeback> writeback_;  // starts their disk writes, for commit's fsync to wait less
};

/// Copies `bytes` from `from_fd` at `from_offset` to `to_fd` at `to_offset`
/// inside the kernel (copy_file_range: page cache to page cache, as cp
/// copies; a write() of the same bytes from a mapping was up to several
/// times slower here). False, with nothing copied, where the kernel cannot
/// (another file system on an old kernel): the caller writes the bytes.
/// st::Error naming `to_path` for a failure after that. The copy goes in
/// pieces of at most `piece_bytes`; after each, `copied` gets the offset in
/// `to_fd` the bytes now reach (for Writeback to start their disk writes
/// within a large tensor rather than after it).
bool kernel_copy(int from_fd, uint64_t from_offset, int to_fd, uint64_t to_offset, uint64_t bytes,
                 const std::string& to_path, uint64_t piece_bytes = UINT64_MAX,
                 const std::function<void(uint64_t)>& copied = {});

/// Waits until a written file's bytes are on disk (fsync); throws st::Error
/// naming it on failure.
void sync_file(const std::string& path);
/// The same for an open descriptor of `path`.
void sync_fd(int fd, const std::string& path);

/// Writes a whole file atomically.
void write_file_atomic(const std::string& path, std::string_view contents);

/// Reads a whole file; throws st::Error naming the file if it cannot.
std::string read_file(const std::string& path);

}  // namespace st
