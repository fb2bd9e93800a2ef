#include "common/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace st {

namespace {

size_t file_size(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    fail("cannot stat ", path, ": ", std::strerror(error));
  }
  return static_cast<size_t>(st.st_size);
}

}  // namespace

MappedFile::MappedFile(const std::string& path) : MappedFile(path, SIZE_MAX) {}

MappedFile::MappedFile(const std::string& path, size_t size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open ", path, ": ", std::strerror(errno));
  size_ = size == SIZE_MAX ? file_size(fd, path) : size;
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      const int error = errno;
      ::close(fd);
      fail("cannot map ", path, ": ", std::strerror(error));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

void populate_pages(const void* data, size_t bytes) {
  if (!data || bytes == 0) return;
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(data);
  const uintptr_t lo = begin / page * page;
  // Advice only: EINVAL on kernels before 5.14 leaves the faults to the reader.
  ::madvise(reinterpret_cast<void*>(lo), begin + bytes - lo, MADV_POPULATE_READ);
}

bool release_pages(const void* data, size_t bytes) {
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(data);
  const uintptr_t lo = (begin + page - 1) / page * page;
  const uintptr_t hi = (begin + bytes) / page * page;
  return lo >= hi || ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED) == 0;
}

void MappedFile::populate(size_t offset, size_t bytes) const {
  if (offset >= size_) return;
  populate_pages(data_ + offset, std::min(bytes, size_ - offset));
}

void MappedFile::release(size_t offset, size_t bytes) const {
  if (offset >= size_) return;
  ST_CHECK(release_pages(data_ + offset, std::min(bytes, size_ - offset)), "madvise failed: ", std::strerror(errno));
}

}  // namespace st
