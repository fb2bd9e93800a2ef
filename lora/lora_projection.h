// A LoRA-adapted linear projection as one op: y = x W^T (+ b) + s (x A^T) B^T
// (PEFT's LoraLayer with lora_dropout 0; s = lora_alpha / r, or
// lora_alpha / sqrt(r) with rsLoRA). The profile behind it
// (benchmarks/bench_lora.cpp; figures in benchmarks/README.md): PEFT's
// composition adds 27% to 125% to the frozen projection's time at the
// Salamandra widths, much of it in passes over [tokens x out] and
// [tokens x in] that only scale and add. Here the low-rank term is added by
// the matmul itself (addmm's beta = 1, alpha = s), in both directions:
//   forward   y = x W^T;        y += s (x A^T) B^T
//   backward  dx = g W;         dx += (s g B) A
//             dA = (s g B)^T x,  dB = s g^T (x A^T),  dW = g^T x (when W trains)
// so no elementwise pass over a full activation remains, and only x and
// x A^T (tokens x r) are saved. On the H100 (benchmarks/README.md) this
// takes 11% to 32% less time than PEFT's composition at the Salamandra
// shapes (rank 16, 8192 tokens, bf16); what remains above the frozen
// projection is the rank-r products, which cuBLAS runs far below bandwidth.
// LoraLinear (lora_linear.h) calls it for every adapted projection without
// dropout or DoRA; dropout on the LoRA input is not fused (PEFT's
// composition serves that case).
#pragma once

#include <ATen/core/Tensor.h>

namespace st {

/// The fused op (autograd function with a hand-written backward). x
/// [..., in], weight [out, in], bias [out] or undefined, lora_a [r, in],
/// lora_b [out, r], all of one floating dtype and device. Gradients flow to
/// whichever of x, weight, bias, lora_a, lora_b require them. Bad shapes or
/// dtypes raise st::Error naming the op and the tensors.
at::Tensor lora_projection(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                           const at::Tensor& lora_a, const at::Tensor& lora_b, double scale);

}  // namespace st
