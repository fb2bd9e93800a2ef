// Fully sharded data parallelism (ZeRO-3, as PyTorch's FSDP): each of N
// processes keeps 1/N of every weight (the flattened tensor padded to a
// multiple of N, rank r's slice), and the optimizer updates those shards
// only, so weights, gradients and optimizer state all shrink N-fold.
//
// The model's own tensors keep their shapes but hold no memory between uses
// (model/layer_residency.h): a decoder layer's weights are all-gathered just
// before its forward, and again before its recomputation in backward
// (fully sharded training always recomputes), and let go after. Each layer
// weight's gradient is reduce-scattered into its shard as soon as autograd
// has accumulated it (a post-accumulate hook), so one layer's gradients are
// whole at a time. The embedding, final norm and LM head are gathered at
// the first forward of a step and kept to its end; their gradients are
// reduce-scattered after each micro-batch's backward.
//
// The tensors to shard come from the model's description (parameter.h):
// base weights and adapters, layer by layer; buffers stay whole.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/named_tensors.h"
#include "model/layer_residency.h"
#include "model/llama.h"
#include "train/process_group.h"

namespace st::train {

class ShardedModel : public LayerResidency {
 public:
  /// Shards `model`'s tensors across `group` onto `device` and lets the
  /// whole tensors go; the model (which may have been loaded into host
  /// memory) then computes on `device`, gathering through this object.
  /// Turns on recomputation.
  ShardedModel(LlamaModel& model, ProcessGroup& group, const at::Device& device);
  /// Unhooks the model, whose tensors stay empty (no collectives here: it
  /// may run while unwinding after a failure).
  ~ShardedModel() override;
  ShardedModel(const ShardedModel&) = delete;
  ShardedModel& operator=(const ShardedModel&) = delete;

  void acquire(int64_t layer) override;
  void release(int64_t layer) override;
  /// Every tensor whole in host memory, to write a checkpoint: every
  /// process takes part, tensor by tensor, so a device holds one whole
  /// tensor at a time; only with `keep` (rank 0, which writes) are the
  /// tensors kept. The model computes nothing until release_all().
  void gather_all_to_host(bool keep);
  /// Lets every whole tensor go (those in host memory back to the device,
  /// empty): after a step, an evaluation or a checkpoint.
  void release_all();

  /// The trainable tensors' shards, named as the model's tensors: what the
  /// optimizer updates (AdamW over them); their .grad() receives the
  /// reduce-scattered gradients.
  NamedTensors trainable_shards() const;
  /// Whether each of trainable_shards() decays, decided on the whole tensor.
  std::vector<bool> trainable_decay() const;
  /// This process's shard of a whole tensor of the model (a checkpoint's
  /// fp32 masters), by the same split.
  at::Tensor shard_of(const std::string& name, const at::Tensor& whole) const;
  /// After a micro-batch's backward: the outside tensors' gradients (whole,
  /// accumulated by autograd) reduce-scattered into their shards. Every
  /// process calls it the same number of times.
  void reduce_outside_gradients();
  /// Elements each process holds, over all sharded tensors, and those of
  /// the whole tensors.
  int64_t shard_elements() const;
  int64_t whole_elements() const;

 private:
  struct Entry {
    std::string name;
    at::Tensor whole;  // the model's tensor (memory only while acquired)
    at::Tensor shard;  // [per] this rank's slice, zero-padded at the end
    int64_t numel = 0, per = 0;
    int64_t layer = kOutside;
    bool trainable = false;
  };
  void gather(Entry& e);
  void scatter_gradient(Entry& e, const at::Tensor& gradient);
  friend struct ShardGradientHook;

  LlamaModel& model_;
  ProcessGroup& group_;
  std::vector<Entry> entries_;
  std::map<int64_t, std::vector<size_t>> by_layer_;
  std::map<int64_t, bool> whole_;  // by layer: gathered now
  at::Device device_;
  bool on_host_ = false;  // gather_all_to_host(keep = true) left the tensors in host memory
  std::vector<at::Tensor> hooked_;
};

}  // namespace st::train
