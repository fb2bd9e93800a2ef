// Fused RMSNorm forward for CUDA. Plain types only: the kernel file sees no
// torch headers (flash-attention's habit); rms_norm.cpp checks the tensors
// once and hands over this struct.
#pragma once

#include <cstdint>

namespace st::kernels {

/// Element type of the row data.
enum class RmsNormDType { kFloat32, kBFloat16 };

/// One launch: y[r, :] = w * cast(x[r, :] * rsqrt(mean(x[r, :]^2) + eps)).
struct RmsNormParams {
  const void* x;       // [rows, cols], contiguous
  const void* weight;  // [cols]
  void* y;             // [rows, cols], contiguous
  int64_t rows;
  int64_t cols;
  float eps;
  RmsNormDType dtype;
};

/// Launches on `stream` (a cudaStream_t); defined only in CUDA builds.
void launch_rms_norm_forward(const RmsNormParams& params, void* stream);

}  // namespace st::kernels
