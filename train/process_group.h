// The processes a run trains across: where a multi-process run reduces the
// step's normalizer, its gradients (before the norm and clipping), its
// metrics and its finite flag, agrees on stopping, and orders the work only
// one process does (rank 0 prepares the shared caches and writes the run
// dir; the others wait). SingleProcess is one process, where every
// reduction is the identity; distributed/c10d_group.h is the c10d-backed
// group of a torchrun or srun launch.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace st::train {

/// A sum of gradients over the processes that may start while the last
/// backward still runs: distributed/c10d_group.h sends a bucket as soon as
/// all its gradients are final; the default sends everything at finish().
class GradientSync {
 public:
  virtual ~GradientSync() = default;
  /// Accumulator i holds its final gradient (from autograd's hooks, on the
  /// thread that runs backward).
  virtual void ready(size_t i) = 0;
  /// Once every accumulator is final: sends what is not sent yet, waits,
  /// and leaves each sum in its accumulator. Returns how many buckets had
  /// been sent before (during backward).
  virtual size_t finish() = 0;
};

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  /// "1 process", or how many, over which backend, launched by what.
  virtual std::string description() const = 0;
  /// Whether gradients go through the group's collectives: several
  /// processes, or a c10d job of one (torchrun --nproc-per-node 1).
  virtual bool collective() const { return world_size() > 1; }
  /// Sums each tensor over the processes, in place.
  virtual void all_reduce_sum(const std::vector<at::Tensor>& tensors) = 0;
  /// all_reduce_sum of `accumulators` as a GradientSync (the default
  /// starts nothing before finish()). `late`: the indices made final only
  /// at the end (their buckets go last).
  virtual std::unique_ptr<GradientSync> start_gradient_sync(std::vector<at::Tensor> accumulators,
                                                            const std::vector<size_t>& late) {
    (void)late;
    struct AtFinish : GradientSync {
      AtFinish(ProcessGroup& g, std::vector<at::Tensor> t) : group(g), tensors(std::move(t)) {}
      void ready(size_t) override {}
      size_t finish() override {
        group.all_reduce_sum(tensors);
        return 0;
      }
      ProcessGroup& group;
      std::vector<at::Tensor> tensors;
    };
    return std::make_unique<AtFinish>(*this, std::move(accumulators));
  }
  /// Fills the contiguous 1-D `whole` with every process's `shard` in rank
  /// order (whole has world_size x shard's elements): fully sharded
  /// training's gather of a weight.
  virtual void all_gather(const at::Tensor& whole, const at::Tensor& shard) = 0;
  /// Sets `shard` to the sum over the processes of their `whole`'s
  /// rank-th slice (of shard's length): a gradient's reduce-scatter.
  virtual void reduce_scatter_sum(const at::Tensor& shard, const at::Tensor& whole) = 0;
  /// The sum of `values` (element-wise) over the processes.
  virtual std::vector<double> sum_values(std::vector<double> values) = 0;
  /// True when `value` is true on every process.
  virtual bool all_true(bool value) = 0;
  /// Every process's `text`, by rank.
  virtual std::vector<std::string> all_gather_strings(const std::string& text) = 0;
  /// Returns when every process has called it.
  virtual void barrier() = 0;
  /// Marks `what` done on this process (rank 0's shared setup) ...
  virtual void announce(const std::string& what) = 0;
  /// ... and waits, however long it takes, until rank 0 announced `what`;
  /// throws st::Error with its message if a process reported a failure.
  virtual void wait_for_rank0(const std::string& what) = 0;
  /// Leaves this process's failure for the others to name (best effort).
  virtual void report_failure(const std::string& message) = 0;
  /// "rank R: message" of a process that reported a failure, or "".
  virtual std::string peer_failure() = 0;
};

/// One process: rank 0 of 1; reductions return their input.
class SingleProcess : public ProcessGroup {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string description() const override { return "1 process"; }
  void all_reduce_sum(const std::vector<at::Tensor>&) override {}
  void all_gather(const at::Tensor& whole, const at::Tensor& shard) override { whole.copy_(shard); }
  void reduce_scatter_sum(const at::Tensor& shard, const at::Tensor& whole) override { shard.copy_(whole); }
  std::vector<double> sum_values(std::vector<double> values) override { return values; }
  bool all_true(bool value) override { return value; }
  std::vector<std::string> all_gather_strings(const std::string& text) override { return {text}; }
  void barrier() override {}
  void announce(const std::string&) override {}
  void wait_for_rank0(const std::string&) override {}
  void report_failure(const std::string&) override {}
  std::string peer_failure() override { return ""; }
};

}  // namespace st::train
