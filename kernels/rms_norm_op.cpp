// Checks, the autograd function and the ATen reference of the fused
// residual add + RMSNorm. Torch types stop here: rms_norm.cu gets plain
// pointers in a params struct.
#include "kernels/rms_norm_op.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "common/error.h"
#include "kernels/fused_switch.h"
#include "kernels/op_dtypes.h"
#include "kernels/rms_norm.h"

#ifdef ST_WITH_CUDA
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace st {

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  // As transformers' LlamaRMSNorm: statistics in fp32, the weight multiplies
  // the result after the cast back to the input dtype.
  at::Tensor x32 = x.to(at::kFloat);
  at::Tensor variance = x32.pow(2).mean(-1, /*keepdim=*/true);
  at::Tensor normed = x32 * at::rsqrt(variance + eps);
  return weight * normed.to(x.scalar_type());
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The forward's results; `s` is the row data that was normalised (kept for the backward).
struct ForwardResult {
  at::Tensor y, sum, rstd, s;
  bool kernel = false;  // the CUDA kernels ran (so the backward runs them too)
};

// ---------------------------------------------------------------- ATen formulas
// The kernels' arithmetic written with ATen ops: fp32 (fp64 for fp64 inputs),
// rounding to the storage dtype where the kernel rounds.

ForwardResult forward_aten(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& weight, double eps) {
  const at::ScalarType ct = arithmetic_dtype(x);
  at::Tensor s = residual.defined() ? residual + x : x;
  at::Tensor v = s.to(ct);
  at::Tensor rstd = at::rsqrt(v.pow(2).mean(-1, /*keepdim=*/true) + eps);
  at::Tensor y = (weight.to(ct) * (v * rstd).to(x.scalar_type()).to(ct)).to(x.scalar_type());
  return {y, residual.defined() ? s : at::Tensor(), rstd, s};
}

std::pair<at::Tensor, at::Tensor> backward_aten(const at::Tensor& dy, const at::Tensor& dsum, const at::Tensor& s,
                                                const at::Tensor& weight, const at::Tensor& rstd) {
  const at::ScalarType ct = arithmetic_dtype(s);
  at::Tensor n = s.to(ct) * rstd;
  at::Tensor g = dy.to(ct);
  at::Tensor dn = g * weight.to(ct);
  at::Tensor dx = rstd * (dn - n * (dn * n).mean(-1, /*keepdim=*/true));
  if (dsum.defined()) dx = dx + dsum.to(ct);
  at::Tensor dweight = (g * n).reshape({-1, s.size(-1)}).sum(0);
  return {dx.to(s.scalar_type()), dweight.to(weight.scalar_type())};
}

// ---------------------------------------------------------------- CUDA entry

bool kernel_applies(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& weight) {
#ifdef ST_WITH_CUDA
  const at::ScalarType t = x.scalar_type();
  return x.is_cuda() && (t == at::kFloat || t == at::kBFloat16) && weight.scalar_type() == t &&
         (!residual.defined() || residual.scalar_type() == t) && x.size(-1) > 0 &&
         x.size(-1) <= kernels::kRmsNormMaxCols;
#else
  (void)x, (void)residual, (void)weight;
  return false;
#endif
}

#ifdef ST_WITH_CUDA
ForwardResult forward_cuda(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& weight, double eps,
                           bool want_rstd) {
  c10::cuda::CUDAGuard guard(x.device());
  at::Tensor input = x.contiguous(), w = weight.contiguous();
  at::Tensor r = residual.defined() ? residual.contiguous() : at::Tensor();
  const int64_t cols = input.size(-1), rows = input.numel() / cols;
  ForwardResult out;
  out.y = at::empty_like(input);
  if (r.defined()) out.sum = at::empty_like(input);
  if (want_rstd) out.rstd = at::empty({rows}, input.options().dtype(at::kFloat));
  out.s = r.defined() ? out.sum : input;
  out.kernel = true;
  kernels::RmsNormForwardParams p{input.data_ptr(), r.defined() ? r.data_ptr() : nullptr, w.data_ptr(),
                                  out.y.data_ptr(), r.defined() ? out.sum.data_ptr() : nullptr,
                                  want_rstd ? out.rstd.data_ptr<float>() : nullptr, rows, cols,
                                  static_cast<float>(eps), kernel_dtype(input)};
  kernels::launch_rms_norm_forward(p, c10::cuda::getCurrentCUDAStream().stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

std::pair<at::Tensor, at::Tensor> backward_cuda(const at::Tensor& dy, const at::Tensor& dsum, const at::Tensor& s,
                                                const at::Tensor& weight, const at::Tensor& rstd) {
  c10::cuda::CUDAGuard guard(s.device());
  at::Tensor g = dy.contiguous(), extra = dsum.defined() ? dsum.contiguous() : at::Tensor();
  const int64_t cols = s.size(-1), rows = s.numel() / cols;
  const int64_t blocks = kernels::rms_norm_backward_blocks(rows, cols, kernel_dtype(s));
  at::Tensor workspace = at::empty({blocks, cols}, s.options().dtype(at::kFloat));
  at::Tensor dx = at::empty_like(s), dweight = at::empty_like(weight);
  kernels::RmsNormBackwardParams p{g.data_ptr(), extra.defined() ? extra.data_ptr() : nullptr, s.data_ptr(),
                                   weight.data_ptr(), rstd.data_ptr<float>(), dx.data_ptr(),
                                   workspace.data_ptr<float>(), dweight.data_ptr(), rows, cols, kernel_dtype(s)};
  kernels::launch_rms_norm_backward(p, c10::cuda::getCurrentCUDAStream().stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {dx, dweight};
}
#endif

ForwardResult forward_impl(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& weight, double eps) {
#ifdef ST_WITH_CUDA
  if (kernel_applies(x, residual, weight)) return forward_cuda(x, residual, weight.contiguous(), eps, true);
#endif
  return forward_aten(x, residual, weight, eps);
}

std::pair<at::Tensor, at::Tensor> backward_impl(bool kernel, const at::Tensor& dy, const at::Tensor& dsum,
                                                const at::Tensor& s, const at::Tensor& weight, const at::Tensor& rstd) {
#ifdef ST_WITH_CUDA
  if (kernel) return backward_cuda(dy, dsum, s, weight, rstd);
#else
  (void)kernel;
#endif
  return backward_aten(dy, dsum, s, weight, rstd);
}

// ---------------------------------------------------------------- autograd

class AddRmsNormFunction : public torch::autograd::Function<AddRmsNormFunction> {
 public:
  // Outputs: {normed, sum} with a residual, {normed} without.
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const std::optional<at::Tensor>& residual,
                               const at::Tensor& weight, double eps) {
    ctx->set_materialize_grads(false);
    const at::Tensor r = residual.value_or(at::Tensor());
    ForwardResult out = forward_impl(x, r, weight, eps);
    ctx->save_for_backward({out.s, weight.contiguous(), out.rstd});
    ctx->saved_data["residual"] = r.defined();
    ctx->saved_data["kernel"] = out.kernel;
    if (r.defined()) return {out.y, out.sum};
    return {out.y};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const bool has_residual = ctx->saved_data["residual"].toBool();
    const at::Tensor dy = grads[0];
    const at::Tensor dsum = has_residual ? grads[1] : at::Tensor();
    at::Tensor dx, dweight;
    if (dy.defined()) {
      std::tie(dx, dweight) = backward_impl(ctx->saved_data["kernel"].toBool(), dy, dsum, saved[0], saved[1], saved[2]);
    } else {
      dx = dsum;  // only the sum was used: it passes its gradient straight through
    }
    // The sum's gradient flows to x and to the residual alike (as AddBackward does).
    return {dx, has_residual ? dx : at::Tensor(), dweight, at::Tensor()};
  }
};

void check_inputs(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& weight) {
  if (!x.defined() || !weight.defined()) fail("add_rms_norm: x and weight must be defined tensors");
  if (x.dim() < 1) fail("add_rms_norm: x must have at least one dimension");
  if (weight.dim() != 1 || weight.size(0) != x.size(-1))
    fail("add_rms_norm: weight must be [", x.size(-1), "] to match x's last dimension, got ", weight.sizes());
  if (weight.device() != x.device()) fail("add_rms_norm: weight is on ", weight.device(), ", x on ", x.device());
  if (residual.defined()) {
    if (residual.sizes() != x.sizes())
      fail("add_rms_norm: residual ", residual.sizes(), " and x ", x.sizes(), " must have the same shape");
    if (residual.scalar_type() != x.scalar_type())
      fail("add_rms_norm: residual is ", residual.scalar_type(), " but x is ", x.scalar_type());
    if (residual.device() != x.device())
      fail("add_rms_norm: residual is on ", residual.device(), ", x on ", x.device());
  }
}

}  // namespace

bool fused_rms_norm_enabled() {
  // On by default: verified on an H100 (scripts/gpu_check.sh, 2026-11-26).
  static const FusedSwitch fused_switch("ST_FUSED_RMS_NORM", /*default_on=*/true);
  return fused_switch.enabled();
}

AddRmsNormOutput add_rms_norm_reference(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& weight,
                                        double eps) {
  at::Tensor sum = residual.defined() ? residual + x : x;
  return {rms_norm(sum, weight, eps), sum};
}

bool fused_rms_norm_applies(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& weight) {
  return kernel_applies(x, residual, weight);
}

AddRmsNormOutput fused_add_rms_norm(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& weight,
                                    double eps) {
  check_inputs(x, residual, weight);
  std::optional<at::Tensor> r;
  if (residual.defined()) r = residual;
  variable_list out = AddRmsNormFunction::apply(x, r, weight, eps);
  return {out[0], residual.defined() ? out[1] : x};
}

AddRmsNormOutput add_rms_norm(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& weight, double eps) {
  if (x.is_cuda() && fused_rms_norm_enabled() && kernel_applies(x, residual, weight))
    return fused_add_rms_norm(x, residual, weight, eps);
  return add_rms_norm_reference(x, residual, weight, eps);
}

}  // namespace st
