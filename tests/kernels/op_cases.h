// The test cases of the fused ops, shared by the CPU reference tests and the
// GPU kernel tests: inputs drawn so that they are exactly representable in
// the dtype under test (held in fp64 on `device`), and the runner that
// returns an op's outputs followed by its input gradients.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <vector>

#include "kernels/cross_entropy_op.h"  // kIgnoreTarget
#include "tests/kernels/kernel_test_util.h"

namespace st::kernel_test {

// Random fp64 values rounded through `dtype`, on `device`.
inline at::Tensor representable(const at::Tensor& t, at::ScalarType dtype, const at::Device& device) {
  return t.to(dtype).to(at::kDouble).to(device);
}

// ---------------------------------------------------------------- RMSNorm

struct RmsNormCase {
  at::Tensor x, residual, weight, dnormed, dsum;
};

inline RmsNormCase make_rms_norm_case(const std::vector<int64_t>& shape, at::ScalarType dtype,
                                      const at::Device& device) {
  auto r = [&](const at::Tensor& t) { return representable(t, dtype, device); };
  return {r(at::randn(shape)), r(at::randn(shape)), r(1 + 0.1 * at::randn({shape.back()})), r(at::randn(shape)),
          r(at::randn(shape))};
}

/// {normed, sum, dx, dweight[, dresidual]} of `op(x, residual, weight)` on leaves of `dtype`.
template <typename Op>
std::vector<at::Tensor> run_rms_norm(Op op, const RmsNormCase& c, at::ScalarType dtype, bool with_residual) {
  at::Tensor x = leaf(c.x, dtype), w = leaf(c.weight, dtype);
  at::Tensor r = with_residual ? leaf(c.residual, dtype) : at::Tensor();
  auto [normed, sum] = op(x, r, w);
  std::vector<at::Tensor> inputs = {x, w};
  if (with_residual) inputs.push_back(r);
  std::vector<at::Tensor> result = {normed, sum};
  for (auto& g : gradients({normed, sum}, {c.dnormed, c.dsum}, inputs)) result.push_back(g);
  return result;
}

inline const char* kRmsNormNames[] = {"normed", "sum", "dx", "dweight", "dresidual"};

// ---------------------------------------------------------------- SwiGLU

struct SwiGluCase {
  at::Tensor gate, up, dout;
};

inline SwiGluCase make_swiglu_case(const std::vector<int64_t>& shape, at::ScalarType dtype,
                                   const at::Device& device) {
  auto r = [&](const at::Tensor& t) { return representable(t, dtype, device); };
  // Gates spread over silu's curved region and its tails.
  return {r(3 * at::randn(shape)), r(at::randn(shape)), r(at::randn(shape))};
}

/// {out, dgate, dup} of `op(gate, up)` on leaves of `dtype`. `skip` > 0 hands
/// the op views that start mid-pack (misaligned pointers).
template <typename Op>
std::vector<at::Tensor> run_swiglu(Op op, const SwiGluCase& c, at::ScalarType dtype, int64_t skip = 0) {
  at::Tensor gate = leaf(c.gate, dtype), up = leaf(c.up, dtype);
  auto cut = [&](const at::Tensor& t) { return skip ? t.flatten().narrow(0, skip, t.numel() - skip) : t; };
  at::Tensor out = op(cut(gate), cut(up));
  auto grads = gradients({out}, {cut(c.dout)}, {gate, up});
  return {out, grads[0], grads[1]};
}

inline const char* kSwiGluNames[] = {"out", "dgate", "dup"};

// ---------------------------------------------------------------- LM head + cross-entropy

/// Five rows of fp64 logits of which the first three hold a NaN: filling
/// the first 32 entries; after only -inf; in the middle. Row 3 starts with
/// 32 -inf (no NaN), row 4 is plain. Every row's statistics must be NaN
/// exactly where log_softmax's are.
inline at::Tensor nan_logit_rows(int64_t vocab) {
  const double nan = std::nan(""), inf = INFINITY;
  at::Tensor logits = at::randn({5, vocab}, at::TensorOptions().dtype(at::kDouble));
  logits[0].narrow(0, 0, 32).fill_(nan);
  logits[1].narrow(0, 0, 32).fill_(-inf);
  logits[1][5] = nan;
  logits[2][vocab / 2] = nan;
  logits[3].narrow(0, 0, 32).fill_(-inf);
  return logits;
}

}  // namespace st::kernel_test
