#include "common/checksum.h"

#include <xxhash.h>

#include <cstdio>

#include "common/error.h"
#include "common/mapped_file.h"

namespace st {

struct Checksum::State {
  XXH3_state_t* xxh = XXH3_createState();
  ~State() { XXH3_freeState(xxh); }
};

Checksum::Checksum() : state_(std::make_unique<State>()) {
  ST_CHECK(state_->xxh && XXH3_128bits_reset(state_->xxh) == XXH_OK, "XXH3 state");
}
Checksum::~Checksum() = default;
Checksum::Checksum(Checksum&&) noexcept = default;
Checksum& Checksum::operator=(Checksum&&) noexcept = default;

void Checksum::update(const void* data, size_t bytes) {
  ST_CHECK(XXH3_128bits_update(state_->xxh, data, bytes) == XXH_OK, "XXH3 update");
}

std::string Checksum::hex() const {
  const XXH128_hash_t h = XXH3_128bits_digest(state_->xxh);
  char out[33];
  std::snprintf(out, sizeof out, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return out;
}

std::string checksum_hex(const void* data, size_t bytes) {
  Checksum checksum;
  checksum.update(data, bytes);
  return checksum.hex();
}

std::string checksum_hex(const MappedFile& file, size_t offset, size_t bytes) {
  file.populate(offset, bytes);
  std::string hex = checksum_hex(file.data() + offset, bytes);
  file.release(offset, bytes);
  return hex;
}

}  // namespace st
