// The LM head's test cases, shared by its CPU tests (lm_head_test.cpp) and
// the cross-entropy kernel's GPU test: hidden rows, a weight, targets with
// ignored rows and per-row upstream factors, and runners that return the
// outputs followed by the input gradients (or what a sink received).
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "model/lm_head.h"
#include "tests/kernels/op_cases.h"

namespace st::kernel_test {

struct LmHeadCase {
  at::Tensor hidden, weight, targets, upstream;  // upstream: one factor per row
};

/// Rows of hidden [rows, width], a weight [vocab, width] scaled so that the
/// softmax is far from uniform, targets with every fifth row ignored, and
/// per-row upstream factors.
inline LmHeadCase make_lm_head_case(int64_t rows, int64_t width, int64_t vocab, at::ScalarType dtype,
                                    const at::Device& device) {
  auto r = [&](const at::Tensor& t) { return representable(t, dtype, device); };
  at::Tensor targets = at::randint(0, vocab, {rows}, at::TensorOptions().dtype(at::kLong));
  for (int64_t i = 4; i < rows; i += 5) targets[i] = kIgnoreTarget;
  return {r(at::randn({rows, width})), r(at::randn({vocab, width}) * (3.0 / std::sqrt(double(width)))),
          targets.to(device), r(at::randn({rows}))};
}

/// {log_probs, dhidden, dweight} of `op(hidden, weight, targets)` -> per-row log-probs.
template <typename Op>
std::vector<at::Tensor> run_target_log_probs(Op op, const LmHeadCase& c, at::ScalarType dtype) {
  at::Tensor h = leaf(c.hidden, dtype), w = leaf(c.weight, dtype);
  at::Tensor out = op(h, w, c.targets);
  auto grads = gradients({out}, {c.upstream}, {h, w});
  return {out, grads[0], grads[1]};
}

/// {nll, dhidden, dweight} of `op(hidden, weight, targets)` -> the summed NLL,
/// with upstream factor c.upstream[0] (as the trainer's 1/tokens).
template <typename Op>
std::vector<at::Tensor> run_summed_nll(Op op, const LmHeadCase& c, at::ScalarType dtype) {
  at::Tensor h = leaf(c.hidden, dtype), w = leaf(c.weight, dtype);
  at::Tensor out = op(h, w, c.targets);
  auto grads = gradients({out}, {c.upstream[0].abs()}, {h, w});
  return {out, grads[0], grads[1]};
}

/// What a weight-gradient sink received and what autograd still returned.
struct SinkRun {
  at::Tensor sink;        // the accumulator after the call
  at::Tensor dhidden;     // autograd's hidden gradient
  bool weight_grad_seen;  // autograd also produced a weight gradient (it must not)
};

/// The summed NLL at `dtype` (upstream c.upstream[0], as run_summed_nll)
/// with its weight gradient added into `sink`, scaled by the upstream factor
/// as the trainer's sink is (times `factor`). Backward brings that same
/// factor, as the sink demands; dhidden is divided by `factor` again, so it
/// compares with run_summed_nll's.
inline SinkRun run_summed_nll_into(const LmHeadCase& c, at::ScalarType dtype, int64_t chunk, at::Tensor sink,
                                   double factor = 1.0) {
  at::Tensor h = leaf(c.hidden, dtype), w = leaf(c.weight, dtype);
  const double upstream = c.upstream[0].abs().item<double>();
  at::Tensor nll = summed_target_nll(h, w, c.targets, chunk, {sink, factor * upstream});
  nll.backward(at::full({}, factor * upstream, nll.options()));
  return {sink, factor == 1.0 ? h.grad() : h.grad() / factor, w.grad().defined()};
}

/// The per-row log-probs at `dtype` (upstream c.upstream, as
/// run_target_log_probs) with the weight gradient added into `sink`.
inline SinkRun run_target_log_probs_into(const LmHeadCase& c, at::ScalarType dtype, int64_t chunk,
                                         at::Tensor sink) {
  at::Tensor h = leaf(c.hidden, dtype), w = leaf(c.weight, dtype);
  at::Tensor log_probs = target_log_probs(h, w, c.targets, chunk, {sink, 1.0});
  log_probs.backward(c.upstream.to(log_probs.scalar_type()));
  return {sink, h.grad(), w.grad().defined()};
}

inline const char* kLmHeadNames[] = {"value", "dhidden", "dweight"};

}  // namespace st::kernel_test
