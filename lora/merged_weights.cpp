#include "lora/merged_weights.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <numeric>

#include "common/error.h"
#include "lora/adapter.h"
#include "lora/lora_linear.h"
#include "model/llama.h"
#include "model/model_dir.h"

namespace st::lora {
namespace fs = std::filesystem;
namespace sf = safetensors;

AdapterTable read_adapters(const ModelConfig& config, const std::vector<WeightedAdapter>& adapters) {
  AdapterTable table;
  for (const WeightedAdapter& adapter : adapters) {
    LlamaModel shapes(config, at::TensorOptions().dtype(at::kFloat).device(at::kMeta));
    const LoraConfig lora = read_adapter_config(adapter.dir);
    const auto modules = attach_adapters(shapes, lora, at::TensorOptions().dtype(at::kFloat),
                                         (fs::path(adapter.dir) / kAdapterConfigFile).string());
    load_adapter_weights(adapter.dir, shapes);
    for (const AdaptedModule& m : modules)
      table[m.key].push_back({m.linear->lora_a(), m.linear->lora_b(), m.linear->magnitude(), m.linear->shape(),
                              adapter.weight});
  }
  return table;
}

std::string tokenizer_source(const std::string& base_dir, const std::vector<WeightedAdapter>& adapters) {
  for (const WeightedAdapter& a : adapters)
    if (fs::exists(fs::path(a.dir) / "tokenizer.json") || fs::exists(fs::path(a.dir) / "tokenizer.model"))
      return a.dir;
  return base_dir;
}

std::vector<std::pair<int64_t, int64_t>> row_blocks(int64_t rows, int64_t row_bytes, int64_t multiple,
                                                    int64_t budget_bytes) {
  if (budget_bytes <= 0) {
    const char* env = std::getenv("ST_ROW_BLOCK_BYTES");
    budget_bytes = env && std::atoll(env) > 0 ? std::atoll(env) : 64ll << 20;
  }
  // Whole tiles of adapter terms and whole heads in every block.
  const int64_t unit = std::lcm(multiple, kRowTile);
  int64_t step = std::max<int64_t>(1, budget_bytes / std::max<int64_t>(1, row_bytes));
  step = std::max(unit, step / unit * unit);
  std::vector<std::pair<int64_t, int64_t>> blocks;
  for (int64_t begin = 0; begin < rows; begin += step) blocks.emplace_back(begin, std::min(rows, begin + step));
  return blocks;
}

MergedWeights::MergedWeights(const std::string& base_dir, const std::vector<WeightedAdapter>& adapters)
    : config_(load_model_config(base_dir)), table_(read_adapters(config_, adapters)) {
  const WeightFiles files = weight_files(base_dir);
  for (const std::string& path : files.files) {
    if (!fs::exists(path))
      fail(files.index_path.string(), ": names shard ", fs::path(path).filename().string(), " which does not exist");
    files_.push_back(std::make_unique<sf::File>(path));
  }
  std::map<std::string, bool> used;
  for (const auto& [key, _] : table_) used[key + ".weight"] = false;
  for (const auto& file : files_) {
    for (const sf::TensorInfo& info : file->tensors()) {
      // Buffers old converters saved; transformers never writes them.
      if (info.name.ends_with(".self_attn.rotary_emb.inv_freq")) continue;
      const std::string key = info.name.ends_with(".weight") ? info.name.substr(0, info.name.size() - 7) : "";
      auto it = table_.find(key);
      if (it != table_.end()) used[info.name] = true;
      by_name_[info.name] = entries_.size();
      entries_.push_back({file.get(), &info, it == table_.end() ? nullptr : &it->second});
    }
  }
  for (const auto& [name, found] : used)
    if (!found) fail(base_dir, ": the adapters adapt ", name, ", which the base's weights do not hold");
}

MergedWeights::~MergedWeights() {
  if (current_) release(*current_);
  for (const auto& [_, fd] : fds_) ::close(fd);
}

bool MergedWeights::write_unchanged(const Entry& entry, sf::DType dtype, Checksum& checksum, SerialWorker& hasher,
                                    const std::function<bool(int, uint64_t, uint64_t)>& copy,
                                    const std::function<void(const void*, size_t)>& write) {
  if (entry.adapters || entry.info->dtype != dtype) return false;
  const sf::File& file = *entry.file;
  const sf::TensorInfo& info = *entry.info;
  auto it = fds_.find(file.path());
  if (it == fds_.end()) {
    const int fd = ::open(file.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("cannot open ", file.path(), ": ", std::strerror(errno));
    it = fds_.emplace(file.path(), fd).first;
  }
  if (current_ == &entry) {
    stored_ = at::Tensor();
    current_ = nullptr;
  }
  // Hashed from the mapping on the worker while the kernel copies (hashed
  // after the copy, it added half of cp's time); the worker then drops the
  // pages. A fallback write() racing that drop only faults them back in.
  hasher.post([&file, &info, &checksum] {
    file.populate(info, 0, info.nbytes);
    checksum.update(info.data, info.nbytes);
    file.release(info);
  });
  if (!copy(it->second, file.file_offset(info), info.nbytes)) write(info.data, info.nbytes);
  return true;
}

const MergedWeights::Entry* MergedWeights::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

at::Tensor MergedWeights::rows(const Entry& entry, int64_t begin, int64_t end) {
  if (current_ != &entry) {
    if (current_) release(*current_);
    // Over the mapping (a copy only when the mapping is misaligned), kept
    // for the entry's next blocks.
    stored_ = stored_tensor(*entry.info, entry.file->path());
    current_ = &entry;
  }
  at::NoGradGuard no_grad;
  const at::Tensor base = stored_.dim() == 0 ? stored_ : stored_.narrow(0, begin, end - begin);
  if (stored_.dim() > 0 && stored_.data_ptr() == static_cast<const void*>(entry.info->data)) {
    const uint64_t row_bytes = entry.info->nbytes / static_cast<uint64_t>(std::max<int64_t>(1, stored_.size(0)));
    entry.file->populate(*entry.info, static_cast<uint64_t>(begin) * row_bytes,
                         static_cast<uint64_t>(end - begin) * row_bytes);
  }
  if (!entry.adapters) return base;
  // W + sum w_i dW_i in fp32, rounded once by the caller. DoRA's delta is
  // taken of the base weight W, whatever the other adapters add.
  // The terms are computed in tiles of kRowTile rows at fixed offsets, so
  // that the bytes do not depend on the block size (a GEMM's rounding can
  // depend on its row count).
  ST_CHECK(begin % kRowTile == 0, "row block at ", begin, " is not a whole number of tiles");
  const at::Tensor w = base.to(at::kFloat);
  at::Tensor sum = w.clone();
  for (int64_t tile = begin; tile < end; tile += kRowTile) {
    const int64_t rows = std::min(kRowTile, end - tile);
    const at::Tensor w_tile = w.narrow(0, tile - begin, rows);
    at::Tensor sum_tile = sum.narrow(0, tile - begin, rows);
    for (const ModuleAdapter& m : *entry.adapters) {
      const at::Tensor b = m.b.narrow(0, tile, rows);
      const at::Tensor magnitude = m.magnitude.defined() ? m.magnitude.narrow(0, tile, rows) : m.magnitude;
      sum_tile.add_(adapter_delta(w_tile, m.a, b, magnitude, m.shape.scale), m.weight);
    }
  }
  return sum;
}

void MergedWeights::release(const Entry& entry) {
  if (current_ == &entry) {
    stored_ = at::Tensor();
    current_ = nullptr;
  }
  entry.file->release(*entry.info);
}

}  // namespace st::lora
