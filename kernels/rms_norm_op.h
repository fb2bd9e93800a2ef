// RMSNorm with the residual add fused in, as the model calls it: the fused
// CUDA kernels (forward and backward, rms_norm.cu) when enabled and
// applicable, else the ATen reference. See fused_switch.h for the switch.
#pragma once

#include <ATen/core/Tensor.h>

namespace st {

/// The reference RMSNorm, as transformers' LlamaRMSNorm: x * rsqrt(mean(x^2)
/// + eps) computed in fp32, cast back to x's dtype, times weight.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

/// The two outputs: the normalised rows and the residual stream after the add.
struct AddRmsNormOutput {
  at::Tensor normed;  // weight * rms_norm(sum)
  at::Tensor sum;     // residual + x in x's dtype (x itself when there is no residual)
};

/// True when the fused kernels are compiled in and enabled (ST_FUSED_RMS_NORM
/// or ST_FUSED_KERNELS; read once; on by default).
bool fused_rms_norm_enabled();

/// The ATen reference and CPU path: sum = residual + x (skipped when residual
/// is undefined), normed = st::rms_norm(sum) exactly as transformers'
/// LlamaRMSNorm; autograd derives the gradients.
AddRmsNormOutput add_rms_norm_reference(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& weight,
                                        double eps);

/// The fused op: an autograd function with a hand-written backward. On CUDA
/// fp32/bf16 (equal dtypes, width <= kRmsNormMaxCols) it runs the kernels;
/// elsewhere the same formulas in ATen (fp32 arithmetic, or fp64 for fp64
/// inputs), which is how the CPU tests check the backward. Checks shapes,
/// dtypes and devices and reports a mistake as st::Error.
AddRmsNormOutput fused_add_rms_norm(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& weight,
                                    double eps);

/// True when fused_add_rms_norm would run the CUDA kernels for these tensors.
bool fused_rms_norm_applies(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& weight);

/// What the model calls: the fused op on CUDA when enabled and applicable,
/// else the reference.
AddRmsNormOutput add_rms_norm(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& weight, double eps);

}  // namespace st
