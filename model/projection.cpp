#include "model/projection.h"

#include <ATen/ops/linear.h>

namespace st {

at::Tensor DenseProjection::forward(const at::Tensor& x) const {
  return at::linear(x, weight_, bias_.defined() ? std::optional<at::Tensor>(bias_) : std::nullopt);
}

void DenseProjection::collect(const std::string& prefix, NamedTensors& out) const {
  out.emplace_back(prefix + ".weight", weight_);
  if (bias_.defined()) out.emplace_back(prefix + ".bias", bias_);
}

}  // namespace st
