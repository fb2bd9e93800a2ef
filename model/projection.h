// A linear projection addressable by its Hugging Face name. The decoder holds
// every projection behind this interface so that later features can wrap one
// without touching the decoder: LoRA (frozen base + trainable low-rank pair),
// a 4-bit frozen base, or sharded parameters gathered per layer.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

namespace st {

/// (Hugging Face name, tensor) pairs in checkpoint order.
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

/// y = x W^T (+ b), or anything that behaves like it.
class Projection {
 public:
  virtual ~Projection() = default;
  /// Applies the projection to [..., in_features].
  virtual at::Tensor forward(const at::Tensor& x) const = 0;
  /// Appends this projection's parameters as prefix + "." + local name.
  virtual void collect(const std::string& prefix, NamedTensors& out) const = 0;
};

/// The plain dense projection of a checkpoint: weight [out, in], optional bias.
class DenseProjection : public Projection {
 public:
  DenseProjection(at::Tensor weight, at::Tensor bias) : weight_(std::move(weight)), bias_(std::move(bias)) {}
  at::Tensor forward(const at::Tensor& x) const override;
  void collect(const std::string& prefix, NamedTensors& out) const override;

  const at::Tensor& weight() const { return weight_; }
  const at::Tensor& bias() const { return bias_; }

 private:
  at::Tensor weight_;
  at::Tensor bias_;  // undefined when the config has no bias
};

}  // namespace st
