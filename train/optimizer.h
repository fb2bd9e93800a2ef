// AdamW with decoupled weight decay over named parameters, optionally with
// fp32 master weights for low-precision models.
//
// The update is ATen's fused AdamW (torch.optim.AdamW(fused=True)): one
// kernel over all tensors of a group, the same formula as the reference
// optimizer. Weight decay applies to matrices (dim >= 2) and DoRA's
// magnitude vectors, never to norms and biases, as TRL/transformers'
// Trainer groups them (by name: everything but "bias" and "*norm*").
//
// Precision, per model dtype:
//  - fp32 model: weights, gradients and moments in fp32.
//  - bf16 model with masters (the default): fp32 master weights; gradients
//    are accumulated in fp32, the step updates the masters, and the model
//    gets their rounded copy. 16 bytes per parameter beyond the weights.
//  - bf16 model without masters: weights, gradients and moments all bf16,
//    updated in place (6 bytes per parameter in all). This is what fits a
//    7B model's full fine-tuning into 80 GB; updates smaller than bf16's
//    resolution are lost, so use it with lr high enough (or with masters
//    when memory allows).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "common/named_tensors.h"

namespace st::train {

struct AdamWOptions {
  double lr = 1e-4;  // the base lr; each step passes the scheduled lr
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

class AdamW {
 public:
  /// `parameters` are the model's (their .grad() receives gradients).
  /// master_weights: keep fp32 masters (for bf16 models); without them a
  /// low-precision model keeps its gradients and moments in its own dtype.
  /// initial_masters (by name, with masters only): the values masters start
  /// from where the model's own were rounded on loading -- an fp32 source
  /// trained in bf16 keeps its fp32 weights as masters, as transformers'
  /// mixed precision does; a parameter not named there starts from itself.
  /// decay (one per parameter): whether each decays, where the tensors
  /// are not the weights' own shapes (fully sharded shards); empty: by
  /// decays().
  AdamW(NamedTensors parameters, AdamWOptions options, bool master_weights,
        const NamedTensors& initial_masters = {}, const std::vector<bool>& decay = {});

  /// Whether weight decay applies to the weight `name` of `dim` dimensions.
  static bool decays(const std::string& name, int64_t dim);

  /// Adds every parameter's current .grad() into the accumulators and
  /// clears it; call after each micro-batch's backward.
  void accumulate_gradients();
  /// accumulate_gradients for parameter i alone (in gradients()' order),
  /// once autograd has added its last gradient: the gradient sync's hooks.
  void accumulate_gradient(size_t i);
  /// The model's tensors by name, in gradients()' order.
  NamedTensors parameters() const;
  /// The accumulated gradient of every parameter (zeros for one without):
  /// what a process group reduces before the norm.
  std::vector<at::Tensor> gradients() const;
  /// The global L2 norm of the accumulated gradients (computed in fp32).
  double gradient_norm() const;
  /// Multiplies the accumulated gradients (clipping).
  void scale_gradients(double factor);
  /// Where a parameter's gradient accumulates, for ops that add their
  /// gradient into it directly (lm_head.h's WeightGradSink): with masters the
  /// fp32 accumulator; without, the parameter's own .grad (created as zeros
  /// if autograd has not made it yet). Undefined for an unknown name.
  at::Tensor gradient_accumulator(const std::string& name) const;
  /// Zeroes the accumulators.
  void zero_gradients();
  /// One update with the accumulated gradients at learning rate `lr`.
  void step(double lr);

  int64_t steps() const { return steps_; }
  const AdamWOptions& options() const { return options_; }

  /// Optimizer state by name ("exp_avg.<param>", "exp_avg_sq.<param>",
  /// "master.<param>"), for checkpoints; load_state restores it exactly.
  NamedTensors state() const;
  void load_state(const NamedTensors& state, int64_t steps);

 private:
  struct Slot {
    std::string name;
    at::Tensor param;    // the model's tensor
    at::Tensor master;   // fp32 weights (== param when no masters)
    at::Tensor grad;     // fp32 accumulated gradient (with masters only)
    at::Tensor exp_avg, exp_avg_sq;
    bool decay;
  };
  // The accumulated gradient of a slot (zeros if it has none yet).
  at::Tensor gradient(const Slot& s) const;
  // Where a slot's gradient accumulates (see gradient_accumulator).
  at::Tensor accumulator(const Slot& s) const;

  std::vector<Slot> slots_;
  AdamWOptions options_;
  bool masters_;
  int64_t steps_ = 0;
};

}  // namespace st::train
