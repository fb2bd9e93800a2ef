// Checks, dispatch and the ATen reference of the row-wise log-softmax of the
// LM head's chunks (cross_entropy_op.h).
#include "kernels/cross_entropy_op.h"

#include <ATen/ATen.h>

#include <limits>

#include "common/error.h"
#include "kernels/cross_entropy.h"
#include "kernels/fused_switch.h"
#include "kernels/op_dtypes.h"

#ifdef ST_WITH_CUDA
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace st {
namespace {

void check(const at::Tensor& logits, const at::Tensor& targets) {
  if (logits.dim() != 2 || targets.dim() != 1 || logits.size(0) != targets.size(0))
    fail("log_softmax_rows: expected logits [rows, vocab] and targets [rows], got ", logits.sizes(), " and ",
         targets.sizes());
  if (targets.scalar_type() != at::kLong) fail("log_softmax_rows: targets must be int64, got ", targets.scalar_type());
  if (logits.device() != targets.device())
    fail("log_softmax_rows: logits on ", logits.device(), " but targets on ", targets.device());
}

#ifdef ST_WITH_CUDA
RowLogSoftmax launch(at::Tensor& logits, const at::Tensor& targets, const at::Tensor& coeff) {
  c10::cuda::CUDAGuard guard(logits.device());
  const at::Tensor t = targets.contiguous();
  const at::Tensor c = coeff.defined() ? coeff.to(at::kFloat).contiguous() : at::Tensor();
  RowLogSoftmax out{at::empty({logits.size(0)}, logits.options().dtype(at::kFloat)),
                    at::empty({logits.size(0)}, logits.options().dtype(at::kFloat))};
  kernels::LogSoftmaxRowsParams p{logits.data_ptr(),
                                  t.data_ptr<int64_t>(),
                                  c.defined() ? c.data_ptr<float>() : nullptr,
                                  out.lse.data_ptr<float>(),
                                  out.target_log_prob.data_ptr<float>(),
                                  logits.size(0),
                                  logits.size(1),
                                  kernel_dtype(logits)};
  kernels::launch_log_softmax_rows(p, c10::cuda::getCurrentCUDAStream().stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}
#endif

bool kernel_applies(const at::Tensor& logits) {
#ifdef ST_WITH_CUDA
  const at::ScalarType t = logits.scalar_type();
  return logits.is_cuda() && logits.dim() == 2 && logits.is_contiguous() && (t == at::kFloat || t == at::kBFloat16) &&
         logits.size(0) <= std::numeric_limits<int32_t>::max();
#else
  (void)logits;
  return false;
#endif
}

// The statistics from one fused log_softmax (faster on the CPU than
// logsumexp), which is returned too: the gradient pass reuses it. The
// log-sum-exp is recovered as target logit - target log-prob.
struct ReferenceRows {
  RowLogSoftmax stats;
  at::Tensor log_softmax;  // [rows, vocab] in the arithmetic dtype
};

ReferenceRows reference_rows(const at::Tensor& logits, const at::Tensor& targets) {
  const at::Tensor valid = targets.ge(0);
  const at::Tensor safe = targets.masked_fill(valid.logical_not(), 0).unsqueeze(1);
  const at::Tensor x = logits.to(arithmetic_dtype(logits));
  at::Tensor log_softmax = at::log_softmax(x, 1);
  const at::Tensor log_prob = log_softmax.gather(1, safe).squeeze(1);
  const at::Tensor lse = x.gather(1, safe).squeeze(1) - log_prob;
  return {{lse, log_prob.masked_fill(valid.logical_not(), 0.0)}, log_softmax};
}

}  // namespace

RowLogSoftmax log_softmax_rows_reference(const at::Tensor& logits, const at::Tensor& targets) {
  check(logits, targets);
  return reference_rows(logits, targets).stats;
}

RowLogSoftmax log_softmax_rows_with_grad_reference_(at::Tensor& logits, const at::Tensor& targets,
                                                    const at::Tensor& coeff) {
  check(logits, targets);
  ReferenceRows rows = reference_rows(logits, targets);
  const at::ScalarType acc = arithmetic_dtype(logits);
  const at::Tensor valid = targets.ge(0);
  const at::Tensor c = (coeff.to(acc) * valid.to(acc)).unsqueeze(1);
  // coeff * (onehot - softmax), the softmax being exp(log_softmax) in place.
  at::Tensor grad = rows.log_softmax.exp_().mul_(c.neg());
  grad.scatter_add_(1, targets.masked_fill(valid.logical_not(), 0).unsqueeze(1), c);
  logits.copy_(grad);
  return rows.stats;
}

RowLogSoftmax log_softmax_rows(const at::Tensor& logits, const at::Tensor& targets) {
  check(logits, targets);
#ifdef ST_WITH_CUDA
  if (fused_cross_entropy_applies(logits)) {
    at::Tensor mutable_logits = logits;  // read only: no coefficients
    return launch(mutable_logits, targets, at::Tensor());
  }
#endif
  return log_softmax_rows_reference(logits, targets);
}

RowLogSoftmax log_softmax_rows_with_grad_(at::Tensor& logits, const at::Tensor& targets, const at::Tensor& coeff) {
  check(logits, targets);
  if (coeff.dim() != 1 || coeff.size(0) != logits.size(0))
    fail("log_softmax_rows: expected coeff [", logits.size(0), "], got ", coeff.sizes());
  if (coeff.device() != logits.device())
    fail("log_softmax_rows: logits on ", logits.device(), " but coeff on ", coeff.device());
#ifdef ST_WITH_CUDA
  if (fused_cross_entropy_applies(logits)) return launch(logits, targets, coeff);
#endif
  return log_softmax_rows_with_grad_reference_(logits, targets, coeff);
}

bool fused_cross_entropy_enabled() {
  // On by default: verified on an H100 (scripts/gpu_check.sh, 2026-11-26).
  static const FusedSwitch fused_switch("ST_FUSED_CROSS_ENTROPY", /*default_on=*/true);
  return fused_switch.enabled();
}

bool fused_cross_entropy_applies(const at::Tensor& logits) {
  return fused_cross_entropy_enabled() && kernel_applies(logits);
}

}  // namespace st
