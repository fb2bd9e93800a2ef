#include "train/step.h"

#include <ATen/ATen.h>

#include <cmath>

namespace st::train {

StepResult optimizer_step(AdamW& optimizer, const StepInput& input, double lr, double max_grad_norm) {
  StepResult result;
  double sum = 0;
  for (int64_t i = 0; i < input.micro_batches; ++i) {
    at::Tensor loss = input.summed_loss(i);
    if (!loss.defined()) continue;
    (loss / static_cast<double>(input.normalizer)).backward();
    optimizer.accumulate_gradients();
    sum += loss.item<double>();
  }
  result.loss = input.normalizer ? sum / static_cast<double>(input.normalizer) : 0.0;
  result.grad_norm = optimizer.gradient_norm();
  result.finite = std::isfinite(result.loss) && std::isfinite(result.grad_norm);
  if (result.finite) {
    // As torch.nn.utils.clip_grad_norm_: scale by max / (norm + 1e-6) when below 1.
    if (max_grad_norm > 0) {
      const double coef = max_grad_norm / (result.grad_norm + 1e-6);
      if (coef < 1.0) optimizer.scale_gradients(coef);
    }
    optimizer.step(lr);
  }
  optimizer.zero_gradients();
  return result;
}

}  // namespace st::train
