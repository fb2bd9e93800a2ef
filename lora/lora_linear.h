// A projection with a LoRA (or DoRA) adapter: the frozen base projection,
// held by pointer (never copied: the base exists in memory once), plus the
// trainable low-rank pair A [r, in], B [out, r] and, for DoRA, a magnitude
// per output row. Computes exactly PEFT's lora.Linear forward:
//   LoRA   y = base(x) + s B A drop(x)
//   DoRA   y = base(x) + (m/n - 1) W drop(x) + (m/n) s B A drop(x),
//          n = ||W + s B A||_row, detached (DoRA paper, section 4.3)
// where drop is the dropout on the adapter's input while training (with
// dropout off and a dense base, W drop(x) is base(x) minus its bias, as PEFT
// reuses it; W is always the dense base weight, also when the base is
// another adapter's projection).
//
// Without dropout and DoRA the forward is the fused op lora_projection
// (lora_projection.h: the low-rank term added by the matmuls themselves);
// otherwise PEFT's composition. The adapters keep their own dtype (fp32 by
// default, as PEFT's autocast_adapter_dtype); on a bf16 base they are cast
// to the activations' dtype inside the graph, so the matmuls run in bf16
// and their gradients arrive in fp32.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/Generator.h>
#include <c10/core/TensorOptions.h>

#include <memory>
#include <string>

#include "lora/lora_config.h"
#include "model/projection.h"

namespace st::lora {

/// What an adapter adds to a dense weight W [out, in], in fp32: s B A, or
/// with a DoRA magnitude m (defined) (m/n)(W + s B A) - W, n its row norms.
/// merged = W + delta is PEFT's merge of one adapter.
at::Tensor adapter_delta(const at::Tensor& weight, const at::Tensor& lora_a, const at::Tensor& lora_b,
                         const at::Tensor& magnitude, double scale);

class LoraLinear : public Projection {
 public:
  /// Wraps `base` with an adapter of `shape`; the adapter's tensors are
  /// allocated with `adapter_options` and left unfilled (init() or a load fills them).
  LoraLinear(std::shared_ptr<Projection> base, const ModuleShape& shape, double dropout, bool dora,
             const at::TensorOptions& adapter_options);

  at::Tensor forward(const at::Tensor& x) const override;
  /// The base's tensors under `prefix` (its Hugging Face names: a checkpoint
  /// loads into the wrapped model unchanged), then the adapter's as PEFT
  /// names them without the "base_model.model." prefix and adapter name:
  /// prefix.lora_A.weight, prefix.lora_B.weight, prefix.lora_magnitude_vector.
  void describe(const std::string& prefix, int64_t layer, ParameterList& out) const override;
  int64_t in_features() const override { return base_->in_features(); }
  int64_t out_features() const override { return base_->out_features(); }
  at::Tensor dense_weight() const override { return base_->dense_weight(); }
  void set_adapters_enabled(bool enabled) override { enabled_ = enabled; }
  void set_training(bool training) override { training_ = training; }
  /// The adapter's weight w in a combination of adapters (merge's W + sum
  /// w_i dW_i): multiplies everything the adapter adds to its base's output
  /// (1 by default). Adapters combine by wrapping one another.
  void set_combination_weight(double weight) { combination_weight_ = weight; }

  /// Fills A and B as PEFT's init_lora_weights does (B zero), then DoRA's
  /// magnitude as the row norms of W + s B A.
  void init(LoraInit init, at::Generator& generator);
  /// Sets DoRA's magnitude to the row norms of W + s B A (after A and B are set).
  void init_magnitude();

  /// What the adapter adds to the dense weight, in fp32: merged - W, that is
  /// s B A, or for DoRA (m/n)(W + s B A) - W.
  at::Tensor delta_weight() const;

  const std::shared_ptr<Projection>& base() const { return base_; }
  const ModuleShape& shape() const { return shape_; }
  bool dora() const { return dora_; }
  const at::Tensor& lora_a() const { return lora_a_; }
  const at::Tensor& lora_b() const { return lora_b_; }
  const at::Tensor& magnitude() const { return magnitude_; }  // undefined without DoRA

 private:
  // n = ||W + s B A|| per row in fp32, without gradient.
  at::Tensor weight_norm() const;

  std::shared_ptr<Projection> base_;
  ModuleShape shape_;
  double dropout_;
  bool dora_;
  at::Tensor lora_a_, lora_b_, magnitude_;  // magnitude_: DoRA only
  bool enabled_ = true;
  bool training_ = false;
  double combination_weight_ = 1;
};

}  // namespace st::lora
