// A linear projection addressable by its Hugging Face name. The decoder holds
// every projection behind this interface so that later features can wrap one
// without touching the decoder: LoRA/DoRA (frozen base + trainable low-rank
// pair), a 4-bit frozen base, or sharded parameters gathered per layer. A
// wrapper describes its own tensors (parameter.h), so load, save, init, the
// optimizer and recomputation treat its adapters right without knowing it.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>

#include "model/parameter.h"

namespace st {

/// y = x W^T (+ b), or anything that behaves like it.
class Projection {
 public:
  virtual ~Projection() = default;
  /// Applies the projection to [..., in_features].
  virtual at::Tensor forward(const at::Tensor& x) const = 0;
  /// Appends this projection's tensors as prefix + "." + local name, in
  /// checkpoint order, marked with `layer`.
  virtual void describe(const std::string& prefix, int64_t layer, ParameterList& out) const = 0;
  virtual int64_t in_features() const = 0;
  virtual int64_t out_features() const = 0;
  /// The dense base weight [out, in] (what merge and DoRA's norm need; a
  /// quantized base returns a dequantized copy).
  virtual at::Tensor dense_weight() const = 0;
  /// Switches adapters on or off; off, the projection is its base alone
  /// (DPO's reference model without a second copy). Nothing to switch here.
  virtual void set_adapters_enabled(bool enabled) { (void)enabled; }
  /// Training or inference: what differs is a wrapper's randomness (LoRA's
  /// dropout acts only while training, as in PyTorch's train()/eval()).
  virtual void set_training(bool training) { (void)training; }
};

/// The plain dense projection of a checkpoint: weight [out, in], optional bias.
class DenseProjection : public Projection {
 public:
  DenseProjection(at::Tensor weight, at::Tensor bias) : weight_(std::move(weight)), bias_(std::move(bias)) {}
  at::Tensor forward(const at::Tensor& x) const override;
  void describe(const std::string& prefix, int64_t layer, ParameterList& out) const override;
  int64_t in_features() const override { return weight_.size(1); }
  int64_t out_features() const override { return weight_.size(0); }
  at::Tensor dense_weight() const override { return weight_; }

  const at::Tensor& weight() const { return weight_; }
  const at::Tensor& bias() const { return bias_; }

 private:
  at::Tensor weight_;
  at::Tensor bias_;  // undefined when the config has no bias
};

}  // namespace st
