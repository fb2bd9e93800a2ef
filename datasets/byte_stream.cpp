// Files, memory and gzip (zlib inflate) behind one read() interface.
#include "datasets/byte_stream.h"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <vector>

#include "common/error.h"

namespace st::datasets {
namespace {

class FileBytes : public ByteStream {
 public:
  FileBytes(std::FILE* file, std::string path) : file_(file), path_(std::move(path)) {}
  ~FileBytes() override { std::fclose(file_); }
  size_t read(char* out, size_t n) override {
    size_t got = std::fread(out, 1, n, file_);
    if (got == 0 && std::ferror(file_)) fail("cannot read data file '", path_, "': ", std::strerror(errno));
    return got;
  }

 private:
  std::FILE* file_;
  std::string path_;
};

class MemoryBytes : public ByteStream {
 public:
  explicit MemoryBytes(std::string_view bytes) : bytes_(bytes) {}
  size_t read(char* out, size_t n) override {
    size_t got = std::min(n, bytes_.size() - pos_);
    std::memcpy(out, bytes_.data() + pos_, got);
    pos_ += got;
    return got;
  }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

// Inflates gzip members one after another: `cat a.gz b.gz` is valid gzip and
// gzip(1) reads it as the concatenation, so we do too.
class GzipBytes : public ByteStream {
 public:
  GzipBytes(std::unique_ptr<ByteStream> raw, std::string name)
      : raw_(std::move(raw)), name_(std::move(name)), in_(1 << 18) {
    std::memset(&zs_, 0, sizeof zs_);
    // 16 + MAX_WBITS: gzip wrapper only, so a zlib or raw deflate stream is refused.
    if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) fail("zlib could not start inflating '", name_, "'");
  }
  ~GzipBytes() override { inflateEnd(&zs_); }

  size_t read(char* out, size_t n) override {
    if (n == 0 || done_) return 0;
    zs_.next_out = reinterpret_cast<Bytef*>(out);
    zs_.avail_out = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    size_t produced = 0;
    while (produced == 0) {
      if (zs_.avail_in == 0 && !refill()) {
        if (member_started_) fail("'", name_, "' is truncated: the gzip data ends mid-stream");
        done_ = true;
        return 0;
      }
      member_started_ = true;
      int rc = inflate(&zs_, Z_NO_FLUSH);
      produced = static_cast<size_t>(reinterpret_cast<char*>(zs_.next_out) - out);
      if (rc == Z_STREAM_END) {
        member_started_ = false;
        inflateReset(&zs_);
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {  // Z_BUF_ERROR: needs more input
        fail("'", name_, "' holds corrupt gzip data (zlib: ", zs_.msg ? zs_.msg : "error", ")");
      }
    }
    return produced;
  }

 private:
  bool refill() {
    size_t got = raw_->read(in_.data(), in_.size());
    zs_.next_in = reinterpret_cast<Bytef*>(in_.data());
    zs_.avail_in = static_cast<uInt>(got);
    return got > 0;
  }

  std::unique_ptr<ByteStream> raw_;
  std::string name_;
  std::vector<char> in_;
  z_stream zs_;
  bool member_started_ = false;
  bool done_ = false;
};

bool has_gzip_magic(const unsigned char* b, size_t n) { return n >= 2 && b[0] == 0x1f && b[1] == 0x8b; }

}  // namespace

std::unique_ptr<ByteStream> open_file_bytes(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) fail("cannot open data file '", path, "': ", std::strerror(errno));
  unsigned char magic[2];
  size_t got = std::fread(magic, 1, 2, file);
  std::rewind(file);
  auto raw = std::make_unique<FileBytes>(file, path);
  if (has_gzip_magic(magic, got)) return std::make_unique<GzipBytes>(std::move(raw), path);
  return raw;
}

std::unique_ptr<ByteStream> open_memory_bytes(std::string_view bytes, const std::string& name) {
  auto raw = std::make_unique<MemoryBytes>(bytes);
  if (has_gzip_magic(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()))
    return std::make_unique<GzipBytes>(std::move(raw), name);
  return raw;
}

}  // namespace st::datasets
