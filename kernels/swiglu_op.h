// SwiGLU (silu(gate) * up, the Llama MLP's activation) as the model calls
// it: the fused CUDA kernels (swiglu.cu) when enabled and applicable, else
// the ATen reference. See fused_switch.h for the switch.
#pragma once

#include <ATen/core/Tensor.h>

namespace st {

/// True when the fused kernels are compiled in and enabled (ST_FUSED_SWIGLU
/// or ST_FUSED_KERNELS; read once; on by default).
bool fused_swiglu_enabled();

/// The ATen reference and CPU path, as transformers' LlamaMLP computes it:
/// at::silu(gate) * up in the inputs' dtype; autograd derives the gradients.
at::Tensor swiglu_reference(const at::Tensor& gate, const at::Tensor& up);

/// The fused op: an autograd function with a hand-written backward that keeps
/// only gate and up. On CUDA fp32/bf16 it runs the kernels; elsewhere the same
/// formulas in ATen (fp32, or fp64 for fp64 inputs). gate and up must have
/// the same shape, dtype and device (st::Error otherwise).
at::Tensor fused_swiglu(const at::Tensor& gate, const at::Tensor& up);

/// True when fused_swiglu would run the CUDA kernels for these tensors.
bool fused_swiglu_applies(const at::Tensor& gate, const at::Tensor& up);

/// What the model calls: the fused op on CUDA when enabled and applicable, else the reference.
at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up);

}  // namespace st
