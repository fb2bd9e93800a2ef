// The RMSNorm op as the model calls it: the fused CUDA kernel when it is
// enabled and applies, else the ATen reference (st::rms_norm).
#pragma once

#include <ATen/core/Tensor.h>

namespace st {

/// True when the fused kernel is compiled in and enabled (ST_FUSED_RMS_NORM=1).
bool fused_rms_norm_enabled();

/// Forward-only fused RMSNorm on CUDA; checks its inputs (contiguous CUDA
/// tensors of fp32 or bf16, weight [cols] of the same dtype).
at::Tensor fused_rms_norm_forward(const at::Tensor& x, const at::Tensor& weight, double eps);

}  // namespace st
