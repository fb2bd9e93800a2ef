// A base model's weights with LoRA adapters merged in, read tensor by tensor
// and in blocks of rows from the memory-mapped safetensors: what merge and
// export stream from. A tensor an adapter adapts reads as
// W + sum_i w_i dW_i in fp32 (dW of adapter_delta); any other as stored.
// Every adapter term is row-separable (s B[rows] A; DoRA's norms are per
// output row), so a block of rows merges on its own and the whole tensor is
// never held: memory stays at one block plus the (small) adapters.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/checksum.h"
#include "common/serial_worker.h"
#include "lora/lora_config.h"
#include "model/config.h"
#include "model/safetensors.h"

namespace st::lora {

struct WeightedAdapter {
  std::string dir;    // a PEFT adapter dir
  double weight = 1;  // w_i
};

/// One adapter's tensors for one projection, read whole (adapters are small).
struct ModuleAdapter {
  at::Tensor a, b, magnitude;  // fp32 CPU; magnitude undefined without DoRA
  ModuleShape shape;
  double weight = 1;
};
/// Projection key ("model.layers.0.self_attn.q_proj") -> its adapters, in argument order.
using AdapterTable = std::map<std::string, std::vector<ModuleAdapter>>;

/// Each adapter dir read and checked against the base's shapes (applied to
/// a model on the meta device: shapes without memory).
AdapterTable read_adapters(const ModelConfig& config, const std::vector<WeightedAdapter>& adapters);

/// Where a model made from a base and adapters takes its tokenizer files
/// and generation defaults: the first adapter dir that carries tokenizer
/// files (ours do, as PEFT and TRL save them), else the base.
std::string tokenizer_source(const std::string& base_dir, const std::vector<WeightedAdapter>& adapters);

/// The row tile adapter terms are computed in (see MergedWeights::rows).
inline constexpr int64_t kRowTile = 32;

/// About `budget_bytes` of rows at a time (default: 64 MB, or
/// ST_ROW_BLOCK_BYTES from the environment, which tests set small to
/// cross block boundaries on tiny models), a multiple of `multiple` rows
/// (whole heads, for the exporter's q/k permutation) and of kRowTile:
/// [begin, end) pairs.
std::vector<std::pair<int64_t, int64_t>> row_blocks(int64_t rows, int64_t row_bytes, int64_t multiple = 1,
                                                    int64_t budget_bytes = 0);

class MergedWeights {
 public:
  /// Opens the base's safetensors (st::Error for a shard the index names
  /// that is missing) and reads the adapters; an adapter on a tensor the
  /// base does not hold is an error naming it.
  MergedWeights(const std::string& base_dir, const std::vector<WeightedAdapter>& adapters);
  ~MergedWeights();

  struct Entry {
    const safetensors::File* file;
    const safetensors::TensorInfo* info;
    const std::vector<ModuleAdapter>* adapters;  // null: read as stored
  };
  /// Every stored tensor, in file order (old converters' rotary_emb.inv_freq buffers left out).
  const std::vector<Entry>& entries() const { return entries_; }
  /// The entry of a tensor name, or null.
  const Entry* find(const std::string& name) const;
  /// Rows [begin, end) of an entry (of a 1-D tensor: its values): as stored
  /// (over the mapping, no copy) without adapters, else merged in fp32, in
  /// tiles of kRowTile rows, so the bytes are the same whatever the blocks
  /// (`begin` a multiple of kRowTile, as row_blocks' blocks are).
  at::Tensor rows(const Entry& entry, int64_t begin, int64_t end);
  /// Done with the entry: its pages are dropped from memory.
  void release(const Entry& entry);
  /// Where the entry goes out exactly as stored (no adapter, stored as
  /// `dtype`): hands its bytes over with `copy` (fd, offset, bytes: the
  /// kernel's copy from the source file, as cp copies) or, where that
  /// cannot, with `write` from the mapping; adds them to `checksum` on
  /// `hasher`, which then releases the entry, and returns true (`checksum`
  /// is complete after hasher.finish()). Otherwise does nothing and
  /// returns false: the caller converts it in blocks of rows.
  bool write_unchanged(const Entry& entry, safetensors::DType dtype, Checksum& checksum, SerialWorker& hasher,
                       const std::function<bool(int, uint64_t, uint64_t)>& copy,
                       const std::function<void(const void*, size_t)>& write);

  const ModelConfig& config() const { return config_; }
  const AdapterTable& adapters() const { return table_; }
  int64_t adapted_tensors() const { return static_cast<int64_t>(table_.size()); }

 private:
  ModelConfig config_;
  AdapterTable table_;
  std::vector<std::unique_ptr<safetensors::File>> files_;
  std::vector<Entry> entries_;
  std::map<std::string, size_t> by_name_;
  std::map<std::string, int> fds_;  // source files opened for copies, by path
  const Entry* current_ = nullptr;  // the entry `stored_` holds
  at::Tensor stored_;
};

}  // namespace st::lora
