// Hooks that tell a GradientSync when a parameter's gradient is final
// during the last micro-batch's backward, so that its bucket's all-reduce
// overlaps the rest of the backward pass (as PyTorch's DDP does). Each hook
// runs after autograd has added the parameter's gradient (a post-accumulate
// hook), folds it into the optimizer's accumulator and marks it ready.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "train/optimizer.h"
#include "train/process_group.h"

namespace st::train {

class GradientHooks {
 public:
  /// On every parameter of `optimizer` but the `late` ones (by index in
  /// its gradients(): those whose gradient also arrives outside autograd,
  /// the LM head's sink).
  GradientHooks(AdamW& optimizer, GradientSync& sync, const std::vector<size_t>& late);
  ~GradientHooks();  // removes the hooks
  GradientHooks(const GradientHooks&) = delete;
  GradientHooks& operator=(const GradientHooks&) = delete;

 private:
  std::vector<at::Tensor> hooked_;
};

}  // namespace st::train
