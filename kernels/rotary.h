// Fused rotary position embedding for CUDA: rotates q and k in one launch,
// angles computed from explicit position ids (packing restarts them per
// document) and the inverse frequencies. Plain types only (see rms_norm.h).
#pragma once

#include <cstdint>

#include "kernels/kernel_types.h"

namespace st::kernels {

/// Largest head_dim the kernel takes (the angles of one token live in shared memory).
constexpr int64_t kRotaryMaxHeadDim = 512;

/// One tensor [batch, heads, steps, head_dim] with strides in elements; the
/// last dimension is contiguous. in == out rotates in place.
struct RotaryTensor {
  const void* in;
  void* out;
  int64_t heads;
  int64_t in_stride_batch, in_stride_head, in_stride_step;
  int64_t out_stride_batch, out_stride_head, out_stride_step;
};

/// With a = float(position) * inverse_frequencies[i] (fp32, as the reference
/// computes it) and pairs (x1, x2) = (x[i], x[i + head_dim/2]):
///   y1 = x1 cos(a) - x2 sign*sin(a),  y2 = x2 cos(a) + x1 sign*sin(a)
/// sign = +1 is the forward; sign = -1 rotates back by -a, the backward.
struct RotaryParams {
  RotaryTensor q;
  RotaryTensor k;                     // k.in == null: q only
  const int64_t* positions;           // [batch or 1, steps]
  int64_t positions_stride_batch;     // 0 when one row serves every batch entry
  int64_t positions_stride_step;
  const float* inverse_frequencies;   // [head_dim / 2], contiguous
  int64_t batch;
  int64_t steps;
  int64_t head_dim;
  float sign;
  KernelDType dtype;
};

/// Launch on `stream` (a cudaStream_t); defined only in CUDA builds.
void launch_rotary(const RotaryParams& params, void* stream);

}  // namespace st::kernels
