#include "model/projection.h"

#include <ATen/ops/linear.h>

namespace st {

at::Tensor DenseProjection::forward(const at::Tensor& x) const {
  return at::linear(x, weight_, bias_.defined() ? std::optional<at::Tensor>(bias_) : std::nullopt);
}

void DenseProjection::describe(const std::string& prefix, int64_t layer, ParameterList& out) const {
  out.push_back({prefix + ".weight", weight_, TensorRole::kBase, true, layer, TensorInit::kNormal});
  if (bias_.defined()) out.push_back({prefix + ".bias", bias_, TensorRole::kBase, true, layer, TensorInit::kZeros});
}

}  // namespace st
