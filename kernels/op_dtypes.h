// The two dtype rules every fused op's .cpp applies (rms_norm_op, swiglu_op,
// rotary_op, cross_entropy_op, and the LM head that drives the latter):
//  - its ATen formulas, reductions and accumulators run in fp32, or in fp64
//    for fp64 inputs (the CPU tests compare summation orders in fp64);
//  - its kernels get the storage dtype as a plain KernelDType (they see no
//    torch types; only fp32 and bf16 reach them).
#pragma once

#include <ATen/core/Tensor.h>

#include "kernels/kernel_types.h"

namespace st {

/// fp64 for fp64 tensors, else fp32.
inline at::ScalarType arithmetic_dtype(const at::Tensor& t) {
  return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

/// The kernels' name for t's dtype (fp32 or bf16; callers check which dtypes reach a kernel).
inline kernels::KernelDType kernel_dtype(const at::Tensor& t) {
  return t.scalar_type() == at::kFloat ? kernels::KernelDType::kFloat32 : kernels::KernelDType::kBFloat16;
}

}  // namespace st
