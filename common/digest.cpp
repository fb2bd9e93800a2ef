#include "common/digest.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "common/error.h"

namespace st {

namespace {
uint64_t avalanche(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}
uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
}  // namespace

void Digest::mix(uint64_t word) {
  a_ = rotl(a_ ^ (word * 0x9e3779b97f4a7c15ULL), 27) * 0x87c37b91114253d5ULL + 0x52dce729;
  b_ = rotl(b_ + (word ^ 0xc2b2ae3d27d4eb4fULL), 31) * 0x4cf5ad432745937fULL ^ a_;
}

void Digest::update(std::string_view bytes) {
  total_ += bytes.size();
  size_t i = 0;
  while (i < bytes.size() && tail_bytes_ != 0) {
    tail_ |= uint64_t(static_cast<uint8_t>(bytes[i++])) << (8 * tail_bytes_);
    if (++tail_bytes_ == 8) {
      mix(tail_);
      tail_ = 0;
      tail_bytes_ = 0;
    }
  }
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes.data() + i, 8);
    mix(word);
  }
  for (; i < bytes.size(); ++i) tail_ |= uint64_t(static_cast<uint8_t>(bytes[i])) << (8 * tail_bytes_++);
}

void Digest::field(std::string_view bytes) {
  const uint64_t size = bytes.size();
  update(std::string_view(reinterpret_cast<const char*>(&size), sizeof size));
  update(bytes);
}

std::string Digest::hex() const {
  uint64_t a = a_, b = b_;
  // Finish on a copy so hex() can be called at any point.
  uint64_t tail = tail_ ^ (uint64_t(tail_bytes_) << 56);
  a = avalanche(a ^ tail ^ total_);
  b = avalanche(b + rotl(tail, 17) + a);
  a = avalanche(a ^ b);
  char out[33];
  std::snprintf(out, sizeof out, "%016llx%016llx", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
  return out;
}

std::string digest_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!file) fail("cannot read ", path, ": ", std::strerror(errno));
  Digest digest;
  std::vector<char> block(1 << 20);
  size_t got;
  while ((got = std::fread(block.data(), 1, block.size(), file.get())) > 0) digest.update({block.data(), got});
  if (std::ferror(file.get())) fail("cannot read ", path, ": read error");
  return digest.hex();
}

}  // namespace st
