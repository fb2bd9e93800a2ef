// The per-chunk half of the LM head's cross-entropy (model/lm_head.cpp runs
// the matmuls): log-softmax statistics of a chunk of logits and, optionally,
// the gradient written over the logits in place. On CUDA fp32/bf16 the fused
// kernel (cross_entropy.cu) when enabled; elsewhere the ATen reference with
// the same arithmetic (fp32, or fp64 for fp64 logits).
#pragma once

#include <ATen/core/Tensor.h>

namespace st {

/// Rows whose target is negative (-100 by convention) are ignored: log-prob 0, no gradient.
constexpr int64_t kIgnoreTarget = -100;

/// Per row of logits [rows, vocab]: the log-sum-exp and the target's log-prob
/// (0 for ignored rows), in the softmax dtype (fp32; fp64 for fp64 logits).
struct RowLogSoftmax {
  at::Tensor lse;
  at::Tensor target_log_prob;
};

/// Statistics only; the logits are untouched.
RowLogSoftmax log_softmax_rows(const at::Tensor& logits, const at::Tensor& targets);

/// Statistics, then logits[r, v] := coeff[r] * ([v == target[r]] - softmax(logits[r])[v])
/// in place: the gradient of sum_r coeff[r] * log_prob[r]. Ignored rows become 0.
RowLogSoftmax log_softmax_rows_with_grad_(at::Tensor& logits, const at::Tensor& targets, const at::Tensor& coeff);

/// The same two computations with ATen ops only (the CPU path, and what the kernel is tested against).
RowLogSoftmax log_softmax_rows_reference(const at::Tensor& logits, const at::Tensor& targets);
RowLogSoftmax log_softmax_rows_with_grad_reference_(at::Tensor& logits, const at::Tensor& targets,
                                                    const at::Tensor& coeff);

/// True when the fused kernel is compiled in and switched on (ST_FUSED_CROSS_ENTROPY / ST_FUSED_KERNELS).
bool fused_cross_entropy_enabled();

/// True when the kernel would run for these logits (CUDA, fp32/bf16, contiguous) and it is switched on.
bool fused_cross_entropy_applies(const at::Tensor& logits);

}  // namespace st
