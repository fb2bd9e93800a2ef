// The processes a run trains across: where a multi-process run reduces the
// step's normalizer, its gradients (before the norm and clipping), its
// metrics and its finite flag. Today one process (SingleProcess, where every
// reduction is the identity); the multi-process issue adds a c10d-backed
// group behind the same calls, and nothing else in the step changes.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace st::train {

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  /// Sums each tensor over the processes, in place.
  virtual void all_reduce_sum(const std::vector<at::Tensor>& tensors) = 0;
  /// The sum of `values` (element-wise) over the processes.
  virtual std::vector<double> sum_values(std::vector<double> values) = 0;
  /// True when `value` is true on every process.
  virtual bool all_true(bool value) = 0;
};

/// One process: rank 0 of 1; reductions return their input.
class SingleProcess : public ProcessGroup {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void all_reduce_sum(const std::vector<at::Tensor>&) override {}
  std::vector<double> sum_values(std::vector<double> values) override { return values; }
  bool all_true(bool value) override { return value; }
};

}  // namespace st::train
