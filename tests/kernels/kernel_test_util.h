// Shared by the fused-kernel tests (CPU and GPU): the plain autograd
// compositions that serve as the fp64 truth, the Salamandra shapes, and the
// derived tolerance rule.
//
// Tolerance (DESIGN.md, the flash-attention habit): a low-precision result
// may be at most 2x as far from the fp64 truth as the ATen reference run at
// the same dtype. The bound has a floor so that a reference which happens to
// be exact does not demand exactness: 16 fp32 ulps of the largest truth value
// for fp32, 1e-6 of it for bf16 (far below one bf16 ulp, so only an exact
// reference meets it).
#pragma once

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

namespace st::kernel_test {

// ---------------------------------------------------------------- shapes

/// Row widths: odd sizes that are multiples of no block or pack size, then
/// the hidden sizes of the 2B, 7B and 40B presets (model/config.cpp).
inline const std::vector<int64_t> kHiddenWidths = {1, 7, 33, 1000, 2048, 4096, 8192};

/// SwiGLU widths: odd sizes, then the intermediate sizes of 2B, 7B and 40B.
inline const std::vector<int64_t> kFfnWidths = {1, 7, 37, 1001, 5440, 11008, 24576};

/// Attention shapes: heads, KV heads, head_dim (128 for every preset).
struct AttentionShape {
  int64_t heads, kv_heads, head_dim;
};
inline const std::vector<AttentionShape> kAttentionShapes = {
    {16, 16, 128},  // 2B
    {32, 8, 128},   // 7B
    {64, 8, 128},   // 40B
    {3, 1, 6},      // odd: head_dim/2 = 3 fits no pack
    {2, 2, 2},      // the smallest head
};

/// Packed position ids [2, 7]: documents restart at 0 within a row; the
/// second row sits late in an 8192 context (large angles).
inline at::Tensor packed_positions(const at::Device& device) {
  return at::tensor({0, 1, 2, 0, 1, 2, 3, 8000, 8001, 0, 1, 8189, 8190, 8191},
                    at::TensorOptions().dtype(at::kLong))
      .view({2, 7})
      .to(device);
}

/// The Salamandra inverse frequencies (theta 10000) in fp32 for head_dim.
inline at::Tensor inverse_frequencies(int64_t head_dim, const at::Device& device) {
  at::Tensor exponents = at::arange(0, head_dim, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) /
                         static_cast<double>(head_dim);
  return (1.0 / at::pow(10000.0, exponents)).to(at::kFloat).to(device);
}

// ---------------------------------------------------------------- plain compositions
// Written from the formulas, in the inputs' dtype (fp64 for the truth).

/// sum = residual + x; normed = weight * sum / sqrt(mean(sum^2) + eps).
inline std::pair<at::Tensor, at::Tensor> plain_add_rms_norm(const at::Tensor& x, const at::Tensor& residual,
                                                            const at::Tensor& weight, double eps) {
  at::Tensor sum = residual.defined() ? x + residual : x;
  at::Tensor normed = weight * sum / at::sqrt((sum * sum).mean(-1, true) + eps);
  return {normed, sum};
}

/// gate * sigmoid(gate) * up.
inline at::Tensor plain_swiglu(const at::Tensor& gate, const at::Tensor& up) {
  return gate / (1 + at::exp(-gate)) * up;
}

/// Pairs (x[i], x[i + D/2]) rotated by angle = fp32(position) * fp32 inverse
/// frequency (rounded to fp32, as the model defines it), cos/sin in x's dtype.
inline at::Tensor plain_rotary(const at::Tensor& x, const at::Tensor& positions, const at::Tensor& inverse_frequencies) {
  const int64_t half = x.size(-1) / 2;
  at::Tensor angles = (positions.to(at::kFloat).unsqueeze(-1) * inverse_frequencies.to(at::kFloat))
                          .to(x.scalar_type())
                          .unsqueeze(1);
  at::Tensor c = at::cos(angles), s = at::sin(angles);
  at::Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  return at::cat({x1 * c - x2 * s, x2 * c + x1 * s}, -1);
}

/// Log-prob of each row's target under softmax(hidden weight^T), the way
/// transformers computes it: logits in the inputs' dtype, upcast to fp32
/// (fp64 stays fp64), log_softmax, gather; negative targets give 0.
inline at::Tensor plain_target_log_probs(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets) {
  const at::ScalarType up = hidden.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor logits = at::linear(hidden, weight).to(up);
  at::Tensor valid = targets.ge(0);
  at::Tensor picked = at::log_softmax(logits, 1).gather(1, targets.masked_fill(valid.logical_not(), 0).unsqueeze(1));
  return picked.squeeze(1) * valid.to(up);
}

/// A LoRA-adapted projection as PEFT's LoraLayer composes it (lora_dropout 0):
/// base(x) + lora_B(lora_A(x)) * scaling.
inline at::Tensor plain_lora_projection(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                       const at::Tensor& lora_a, const at::Tensor& lora_b, double scale) {
  const auto b = bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt;
  return at::linear(x, weight, b) + at::linear(at::linear(x, lora_a), lora_b) * scale;
}

// ---------------------------------------------------------------- errors

/// Largest |a - truth| in fp64.
inline double max_error(const at::Tensor& a, const at::Tensor& truth) {
  return (a.to(at::kDouble) - truth.to(at::kDouble)).abs().max().item<double>();
}

/// The error a result at `reference`'s dtype may have against `truth`.
inline double allowed_error(const at::Tensor& reference, const at::Tensor& truth) {
  const double scale = truth.to(at::kDouble).abs().max().item<double>();
  const double floor = reference.scalar_type() == at::kFloat ? 16 * 1.1920929e-7 * scale : 1e-6 * scale;
  return std::max(2 * max_error(reference, truth), floor);
}

/// Gradients of sum_i <outputs[i], upstream[i]> with respect to `inputs`.
inline std::vector<at::Tensor> gradients(const std::vector<at::Tensor>& outputs,
                                         const std::vector<at::Tensor>& upstream,
                                         const std::vector<at::Tensor>& inputs) {
  at::Tensor loss;
  for (size_t i = 0; i < outputs.size(); ++i) {
    at::Tensor term = (outputs[i].to(at::kDouble) * upstream[i].to(at::kDouble)).sum();
    loss = loss.defined() ? loss + term : term;
  }
  return torch::autograd::grad({loss}, inputs);
}

/// A leaf copy of `t` in `dtype` that records gradients.
inline at::Tensor leaf(const at::Tensor& t, at::ScalarType dtype) {
  return t.to(dtype).detach().requires_grad_(true);
}

}  // namespace st::kernel_test
