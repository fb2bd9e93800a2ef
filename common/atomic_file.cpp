#include "common/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/writeback.h"

namespace st {

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  temp_path_ = cat(path_, ".tmp.", ::getpid());
  file_ = std::fopen(temp_path_.c_str(), "wb");
  if (!file_)
    fail("cannot create ", temp_path_, ": ", std::strerror(errno));
  writeback_ = std::make_unique<Writeback>(::fileno(file_));
}

AtomicFile::~AtomicFile() {
  writeback_->stop();
  if (file_) {
    std::fclose(file_);
    std::remove(temp_path_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t size) {
  ST_CHECK(file_ != nullptr, "write after commit of ", path_);
  const auto* bytes = static_cast<const uint8_t*>(data);
  for (size_t at = 0; at < size; at += kWritePieceBytes) {
    const size_t piece = std::min(kWritePieceBytes, size - at);
    if (std::fwrite(bytes + at, 1, piece, file_) != piece) fail("cannot write ", temp_path_, ": ", std::strerror(errno));
    appended(piece);
  }
}

void AtomicFile::appended(uint64_t bytes) {
  size_ += bytes;
  writeback_->appended(size_, [this] {
    if (std::fflush(file_) != 0) fail("cannot write ", temp_path_, ": ", std::strerror(errno));
  });
}

void AtomicFile::flush() {
  ST_CHECK(file_ != nullptr, "flush after commit of ", path_);
  if (std::fflush(file_) != 0) fail("cannot write ", temp_path_, ": ", std::strerror(errno));
}

bool AtomicFile::append_copy(int source_fd, uint64_t offset, uint64_t size) {
  flush();
  const uint64_t start = size_;
  if (!kernel_copy(source_fd, offset, ::fileno(file_), start, size, temp_path_, Writeback::kChunkBytes,
                   [&](uint64_t end) { appended(end - size_); }))
    return false;
  if (::fseeko(file_, static_cast<off_t>(start + size), SEEK_SET) != 0)
    fail("cannot seek in ", temp_path_, ": ", std::strerror(errno));
  return true;
}

bool kernel_copy(int from_fd, uint64_t from_offset, int to_fd, uint64_t to_offset, uint64_t bytes,
                 const std::string& to_path, uint64_t piece_bytes, const std::function<void(uint64_t)>& copied) {
  loff_t from = static_cast<loff_t>(from_offset), to = static_cast<loff_t>(to_offset);
  for (uint64_t left = bytes; left > 0;) {
    const ssize_t n = ::copy_file_range(from_fd, &from, to_fd, &to, std::min(left, piece_bytes), 0);
    if (n < 0 && left == bytes && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL))
      return false;
    if (n <= 0) fail("cannot copy into ", to_path, ": ", n < 0 ? std::strerror(errno) : "the source ended early");
    left -= static_cast<uint64_t>(n);
    if (copied) copied(static_cast<uint64_t>(to));
  }
  return true;
}

void AtomicFile::commit(Durability durability) {
  ST_CHECK(file_ != nullptr, "double commit of ", path_);
  bool ok = std::fflush(file_) == 0;
  writeback_->stop();  // before the descriptor closes
  ok = ok && (durability == Durability::deferred || ::fsync(::fileno(file_)) == 0);
  ok = (std::fclose(file_) == 0) && ok;
  file_ = nullptr;
  if (!ok) {
    std::remove(temp_path_.c_str());
    fail("cannot flush ", temp_path_, ": ", std::strerror(errno));
  }
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    std::remove(temp_path_.c_str());
    fail("cannot rename ", temp_path_, " to ", path_, ": ", std::strerror(errno));
  }
}

void sync_fd(int fd, const std::string& path) {
  if (::fsync(fd) != 0) fail("cannot flush ", path, ": ", std::strerror(errno));
}

void sync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open ", path, ": ", std::strerror(errno));
  // fsync flushes the file's dirty pages whichever descriptor wrote them.
  try {
    sync_fd(fd, path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

void write_file_atomic(const std::string& path, std::string_view contents) {
  AtomicFile file(path);
  file.write(contents);
  file.commit();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open ", path, ": ", std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) fail("cannot read ", path);
  return buffer.str();
}

}  // namespace st
