#include "common/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace st {

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  temp_path_ = cat(path_, ".tmp.", ::getpid());
  file_ = std::fopen(temp_path_.c_str(), "wb");
  if (!file_)
    fail("cannot create ", temp_path_, ": ", std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (file_) {
    std::fclose(file_);
    std::remove(temp_path_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t size) {
  ST_CHECK(file_ != nullptr, "write after commit of ", path_);
  if (size && std::fwrite(data, 1, size, file_) != size)
    fail("cannot write ", temp_path_, ": ", std::strerror(errno));
}

void AtomicFile::commit() {
  ST_CHECK(file_ != nullptr, "double commit of ", path_);
  bool ok = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
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
