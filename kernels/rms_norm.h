// Fused (residual add +) RMSNorm for CUDA, forward and backward. Plain types
// only: the kernel file sees no torch headers (flash-attention's habit);
// rms_norm_op.cpp checks the tensors once and hands over these structs.
#pragma once

#include <cstdint>

#include "kernels/kernel_types.h"

namespace st::kernels {

/// Widest row the kernels take (the row or its weight gradient lives in shared memory).
constexpr int64_t kRmsNormMaxCols = 16384;

/// One forward launch over [rows, cols] row-major data, all of `dtype`:
///   s = residual ? round(x + residual) : x        (written to `sum` when residual is set)
///   y = round(weight * round(s * rstd)),  rstd = rsqrt(mean(s^2) + eps) in fp32
/// which is the order of casts of transformers' LlamaRMSNorm.
struct RmsNormForwardParams {
  const void* x;         // [rows, cols]
  const void* residual;  // [rows, cols] or null
  const void* weight;    // [cols]
  void* y;               // [rows, cols]
  void* sum;             // [rows, cols]; required when residual is set, else ignored
  float* rstd;           // [rows] fp32, or null when no backward will follow
  int64_t rows;
  int64_t cols;
  float eps;
  KernelDType dtype;
};

/// One backward launch: with n = s * rstd and dn = dy * weight (fp32),
///   ds = rstd * (dn - n * mean(dn * n)) + dsum      -> dx (the gradient of x and of residual)
///   dweight = sum over rows of dy * n               -> dweight (fp32 accumulation)
struct RmsNormBackwardParams {
  const void* dy;        // [rows, cols] gradient of y
  const void* dsum;      // [rows, cols] gradient of the sum output, or null (zero)
  const void* s;         // [rows, cols] the normalised input (the sum, or x)
  const void* weight;    // [cols]
  const float* rstd;     // [rows] saved by the forward
  void* dx;              // [rows, cols]
  float* workspace;      // [rms_norm_backward_blocks(rows, cols, dtype), cols] fp32 partial weight gradients
  void* dweight;         // [cols]
  int64_t rows;
  int64_t cols;
  KernelDType dtype;
};

/// Rows of the backward's workspace (one per block) for `rows` rows on the current device.
int64_t rms_norm_backward_blocks(int64_t rows, int64_t cols, KernelDType dtype);

/// Launch on `stream` (a cudaStream_t); defined only in CUDA builds.
void launch_rms_norm_forward(const RmsNormForwardParams& params, void* stream);
void launch_rms_norm_backward(const RmsNormBackwardParams& params, void* stream);

}  // namespace st::kernels
