// Fused SwiGLU for CUDA, forward and backward: out = silu(gate) * up,
// elementwise over n values. Plain types only (see rms_norm.h).
#pragma once

#include <cstdint>

#include "kernels/kernel_types.h"

namespace st::kernels {

/// out = round(silu(gate) * up), silu(g) = g / (1 + exp(-g)), all in fp32.
struct SwiGluForwardParams {
  const void* gate;  // [n], contiguous
  const void* up;    // [n]
  void* out;         // [n]
  int64_t n;
  KernelDType dtype;
};

/// dgate = dout * up * silu'(gate), dup = dout * silu(gate), with
/// silu'(g) = sigmoid(g) * (1 + g * (1 - sigmoid(g))), all in fp32.
struct SwiGluBackwardParams {
  const void* dout;  // [n]
  const void* gate;  // [n]
  const void* up;    // [n]
  void* dgate;       // [n]
  void* dup;         // [n]
  int64_t n;
  KernelDType dtype;
};

/// Launch on `stream` (a cudaStream_t); defined only in CUDA builds.
void launch_swiglu_forward(const SwiGluForwardParams& params, void* stream);
void launch_swiglu_backward(const SwiGluBackwardParams& params, void* stream);

}  // namespace st::kernels
