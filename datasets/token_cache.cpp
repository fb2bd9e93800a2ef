#include "datasets/token_cache.h"


#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/mapped_file.h"

namespace fs = std::filesystem;

namespace st::datasets {

TokenCache TokenCache::open(const std::string& dir) {
  TokenCache cache;
  cache.dir_ = dir;
  const std::string meta_path = (fs::path(dir) / "meta.json").string();
  try {
    cache.meta_ = Json::parse(read_file(meta_path));
  } catch (const Json::exception& e) {
    fail("token cache: ", meta_path, " is not valid JSON: ", e.what());
  }
  cache.ids_ = std::make_shared<MappedFile>((fs::path(dir) / "ids.bin").string());
  cache.mask_ = std::make_shared<MappedFile>((fs::path(dir) / "mask.bin").string());
  cache.offsets_ = std::make_shared<MappedFile>((fs::path(dir) / "offsets.bin").string());
  if (cache.ids_->size() % 4 != 0) fail("token cache: ", dir, "/ids.bin size is not a multiple of 4");
  cache.token_count_ = cache.ids_->size() / 4;
  if (cache.mask_->size() != cache.token_count_)
    fail("token cache: ", dir, "/mask.bin has ", cache.mask_->size(), " bytes for ", cache.token_count_, " tokens");
  if (cache.offsets_->size() % 8 != 0 || cache.offsets_->size() < 8)
    fail("token cache: ", dir, "/offsets.bin is truncated");
  cache.sequence_count_ = cache.offsets_->size() / 8 - 1;
  const auto* offsets = reinterpret_cast<const uint64_t*>(cache.offsets_->data());
  if (offsets[0] != 0 || offsets[cache.sequence_count_] != cache.token_count_)
    fail("token cache: ", dir, "/offsets.bin does not cover ids.bin");
  for (size_t i = 0; i < cache.sequence_count_; ++i)
    if (offsets[i + 1] < offsets[i]) fail("token cache: ", dir, "/offsets.bin is not ascending at ", i);
  if (cache.meta_.value("sequences", uint64_t(0)) != cache.sequence_count_ ||
      cache.meta_.value("tokens", uint64_t(0)) != cache.token_count_)
    fail("token cache: ", meta_path, " does not describe the data files next to it");
  return cache;
}

std::span<const uint32_t> TokenCache::ids(size_t sequence) const {
  ST_CHECK(sequence < sequence_count_);
  const auto* offsets = reinterpret_cast<const uint64_t*>(offsets_->data());
  const auto* all = reinterpret_cast<const uint32_t*>(ids_->data());
  return {all + offsets[sequence], all + offsets[sequence + 1]};
}

std::span<const uint8_t> TokenCache::mask(size_t sequence) const {
  ST_CHECK(sequence < sequence_count_);
  const auto* offsets = reinterpret_cast<const uint64_t*>(offsets_->data());
  return {mask_->data() + offsets[sequence], mask_->data() + offsets[sequence + 1]};
}

uint32_t TokenCache::length(size_t sequence) const { return static_cast<uint32_t>(ids(sequence).size()); }

std::vector<uint32_t> TokenCache::lengths() const {
  std::vector<uint32_t> out(sequence_count_);
  for (size_t i = 0; i < sequence_count_; ++i) out[i] = length(i);
  return out;
}

SequenceView TokenCache::view() const {
  return {[cache = *this](uint32_t i) { return cache.ids(i); }, [cache = *this](uint32_t i) { return cache.mask(i); }};
}

uint32_t TokenCache::sequences_per_sample() const { return meta_.value("sequences_per_sample", 1u); }

// ---- writer ---------------------------------------------------------------

struct TokenCacheWriter::Files {
  std::FILE* ids = nullptr;
  std::FILE* mask = nullptr;
  std::FILE* offsets = nullptr;
  ~Files() {
    for (std::FILE* f : {ids, mask, offsets})
      if (f) std::fclose(f);
  }
};

namespace {
std::FILE* create(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) fail("token cache: cannot create ", path, ": ", std::strerror(errno));
  return f;
}
void write_all(std::FILE* f, const void* data, size_t bytes, const std::string& what) {
  if (bytes && std::fwrite(data, 1, bytes, f) != bytes) fail("token cache: cannot write ", what, ": disk full?");
}
void close_synced(std::FILE*& f, const std::string& what) {
  if (std::fflush(f) != 0 || ::fsync(::fileno(f)) != 0) fail("token cache: cannot write ", what);
  std::fclose(f);
  f = nullptr;
}
}  // namespace

TokenCacheWriter::TokenCacheWriter(std::string dir) : dir_(std::move(dir)), files_(std::make_unique<Files>()) {
  tmp_dir_ = cat(dir_, ".tmp-", ::getpid());
  std::error_code ec;
  fs::remove_all(tmp_dir_, ec);
  fs::create_directories(tmp_dir_, ec);
  if (ec) fail("token cache: cannot create ", tmp_dir_, ": ", ec.message());
  files_->ids = create(tmp_dir_ + "/ids.bin");
  files_->mask = create(tmp_dir_ + "/mask.bin");
  files_->offsets = create(tmp_dir_ + "/offsets.bin");
  const uint64_t zero = 0;
  write_all(files_->offsets, &zero, 8, tmp_dir_ + "/offsets.bin");
}

TokenCacheWriter::~TokenCacheWriter() {
  if (finished_) return;
  files_.reset();
  std::error_code ec;
  fs::remove_all(tmp_dir_, ec);
}

void TokenCacheWriter::add(std::span<const int32_t> ids, std::span<const uint8_t> mask) {
  ST_CHECK(ids.size() == mask.size());
  static_assert(sizeof(int32_t) == sizeof(uint32_t));
  write_all(files_->ids, ids.data(), ids.size() * 4, tmp_dir_ + "/ids.bin");
  write_all(files_->mask, mask.data(), mask.size(), tmp_dir_ + "/mask.bin");
  tokens_ += ids.size();
  ++sequences_;
  write_all(files_->offsets, &tokens_, 8, tmp_dir_ + "/offsets.bin");
}

void TokenCacheWriter::finish(Json meta) {
  close_synced(files_->ids, "ids.bin");
  close_synced(files_->mask, "mask.bin");
  close_synced(files_->offsets, "offsets.bin");
  meta["sequences"] = sequences_;
  meta["tokens"] = tokens_;
  write_file_atomic(tmp_dir_ + "/meta.json", meta.dump(2) + "\n");
  // Replace a previous (stale) cache: move it aside, move ours in, delete it.
  std::error_code ec;
  const std::string old_dir = cat(dir_, ".old-", ::getpid());
  const bool had_old = fs::exists(dir_);
  if (had_old) {
    fs::rename(dir_, old_dir, ec);
    if (ec) fail("token cache: cannot move the stale cache ", dir_, " aside: ", ec.message());
  }
  fs::rename(tmp_dir_, dir_, ec);
  if (ec) fail("token cache: cannot rename ", tmp_dir_, " to ", dir_, ": ", ec.message());
  finished_ = true;
  if (had_old) fs::remove_all(old_dir, ec);
}

}  // namespace st::datasets
