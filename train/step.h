// One optimizer step over accumulated micro-batches, shared by every recipe
// (SFT now; DPO supplies another summed loss).
//
// Each micro-batch's loss is a SUM over its items (tokens, pairs); the step
// divides every one by the item count of the whole step before backward, so
// N micro-batches produce exactly the gradient of one batch of the same
// items, whatever their sizes.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>

#include "train/optimizer.h"

namespace st::train {

struct StepInput {
  int64_t micro_batches = 0;
  /// Items (e.g. trained tokens) in the whole step: the loss divisor.
  int64_t normalizer = 0;
  /// The summed loss of micro-batch i (a scalar with a graph), or an
  /// undefined tensor when it has no items.
  std::function<at::Tensor(int64_t)> summed_loss;
};

struct StepResult {
  double loss = 0;       // summed loss / normalizer
  double grad_norm = 0;  // global L2 norm before clipping
  bool finite = true;    // false: nothing was applied
};

/// Backward over every micro-batch, clipping to max_grad_norm (0: none), and
/// the AdamW update at `lr`, unless the loss or the gradient is not finite.
/// Gradients are cleared afterwards either way.
StepResult optimizer_step(AdamW& optimizer, const StepInput& input, double lr, double max_grad_norm);

}  // namespace st::train
