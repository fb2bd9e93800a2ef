#include "lora/lora_linear.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>

#include "common/error.h"
#include "lora/lora_projection.h"

namespace st::lora {

LoraLinear::LoraLinear(std::shared_ptr<Projection> base, const ModuleShape& shape, double dropout, bool dora,
                       const at::TensorOptions& adapter_options)
    : base_(std::move(base)), shape_(shape), dropout_(dropout), dora_(dora) {
  ST_CHECK(base_ && shape.rank >= 1, "LoraLinear needs a base projection and a positive rank");
  lora_a_ = at::zeros({shape.rank, base_->in_features()}, adapter_options);
  lora_b_ = at::zeros({base_->out_features(), shape.rank}, adapter_options);
  if (dora_) magnitude_ = at::zeros({base_->out_features()}, adapter_options);
}

void LoraLinear::describe(const std::string& prefix, int64_t layer, ParameterList& out) const {
  base_->describe(prefix, layer, out);
  out.push_back({prefix + ".lora_A.weight", lora_a_, TensorRole::kAdapter, true, layer, TensorInit::kKeep});
  out.push_back({prefix + ".lora_B.weight", lora_b_, TensorRole::kAdapter, true, layer, TensorInit::kKeep});
  if (dora_)
    out.push_back({prefix + ".lora_magnitude_vector", magnitude_, TensorRole::kAdapter, true, layer,
                   TensorInit::kKeep});
}

void LoraLinear::init(LoraInit init, at::Generator& generator) {
  at::NoGradGuard no_grad;
  // Drawn in fp32 on the CPU, so a seed gives the same adapter everywhere.
  at::Tensor a = at::empty(lora_a_.sizes(), at::kFloat);
  if (init == LoraInit::kGaussian) {
    a.normal_(0.0, 1.0 / static_cast<double>(shape_.rank), generator);
  } else {
    // kaiming_uniform_(a = sqrt 5): gain sqrt(2 / 6), bound gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in).
    const double bound = 1.0 / std::sqrt(static_cast<double>(lora_a_.size(1)));
    a.uniform_(-bound, bound, generator);
  }
  lora_a_.copy_(a);
  lora_b_.zero_();
  if (dora_) init_magnitude();
}

at::Tensor LoraLinear::weight_norm() const {
  at::NoGradGuard no_grad;
  const at::Tensor w = base_->dense_weight().to(at::kFloat);
  const at::Tensor ba = at::mm(lora_b_.to(at::kFloat), lora_a_.to(at::kFloat));
  return at::linalg_vector_norm(w + shape_.scale * ba, 2, {1});
}

void LoraLinear::init_magnitude() {
  at::NoGradGuard no_grad;
  ST_CHECK(dora_, "init_magnitude on a LoRA adapter without DoRA");
  magnitude_.copy_(weight_norm());
}

at::Tensor adapter_delta(const at::Tensor& weight, const at::Tensor& lora_a, const at::Tensor& lora_b,
                         const at::Tensor& magnitude, double scale) {
  at::NoGradGuard no_grad;
  const at::Tensor ba = at::mm(lora_b.to(at::kFloat), lora_a.to(at::kFloat)).mul_(scale);
  if (!magnitude.defined()) return ba;
  const at::Tensor w = weight.to(at::kFloat);
  const at::Tensor factor = (magnitude.to(at::kFloat) / at::linalg_vector_norm(w + ba, 2, {1})).unsqueeze(1);
  return factor * (w + ba) - w;
}

at::Tensor LoraLinear::delta_weight() const {
  return adapter_delta(base_->dense_weight(), lora_a_, lora_b_, magnitude_, shape_.scale);
}

at::Tensor LoraLinear::forward(const at::Tensor& x) const {
  if (!enabled_) return base_->forward(x);
  const bool drop = training_ && dropout_ > 0;
  // The adapters in the activations' dtype, inside the graph (a no-op when equal).
  const at::Tensor a = lora_a_.to(x.scalar_type()), b = lora_b_.to(x.scalar_type());
  const double scale = shape_.scale * combination_weight_;
  const auto* dense = dynamic_cast<const DenseProjection*>(base_.get());
  if (!dora_ && !drop && dense) return lora_projection(x, dense->weight(), dense->bias(), a, b, scale);
  const at::Tensor base_out = base_->forward(x);
  const at::Tensor xd = drop ? at::dropout(x, dropout_, /*train=*/true) : x;
  const at::Tensor low_rank = at::linear(at::linear(xd, a), b);
  if (!dora_) return base_out + low_rank * scale;

  // DoRA, as PEFT's DoraLinearLayer.forward: the norm is detached, and W
  // drop(x) is recomputed from the dropped-out input when dropout acts.
  const at::Tensor w = base_->dense_weight();
  at::Tensor norm;
  {
    at::NoGradGuard no_grad;
    const at::Tensor ba = at::mm(b.detach(), a.detach());
    norm = at::linalg_vector_norm(w.to(x.scalar_type()) + shape_.scale * ba, 2, {1});
  }
  const at::Tensor mag_norm_scale = (magnitude_.to(x.scalar_type()) / norm).view({1, -1});
  at::Tensor base_term;
  if (drop || !dense) base_term = at::linear(xd, w.to(x.scalar_type()));
  else base_term = dense->bias().defined() ? base_out - dense->bias() : base_out;
  const at::Tensor added = (mag_norm_scale - 1) * base_term + mag_norm_scale * low_rank * shape_.scale;
  return combination_weight_ == 1 ? base_out + added : base_out + added * combination_weight_;
}

}  // namespace st::lora
