// Crash-safe output files: everything we write goes to a temporary name in
// the same directory, is flushed to disk and then renamed over the target, so
// a kill at any moment leaves either the old file or the complete new one.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace st {

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
  /// Flushes, fsyncs and renames the temporary file to the final path.
  void commit();

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string temp_path_;
  std::FILE* file_ = nullptr;
};

/// Writes a whole file atomically.
void write_file_atomic(const std::string& path, std::string_view contents);

/// Reads a whole file; throws st::Error naming the file if it cannot.
std::string read_file(const std::string& path);

}  // namespace st
