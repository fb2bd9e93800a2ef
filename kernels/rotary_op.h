// Rotary position embedding of q and k as the model calls it: the fused CUDA
// kernel (rotary.cu), in place, when enabled and applicable; else the ATen
// reference (st::apply_rotary on tables). See fused_switch.h for the switch.
#pragma once

#include <ATen/core/Tensor.h>

#include <utility>


namespace st {

/// cos and sin tables [B, T, head_dim] for given position ids [B, T], in `dtype`.
/// The position ids and fp32 inverse frequencies they came from ride along
/// for the fused rotary kernel, which computes the angles itself (tables
/// built without them simply keep the ATen path).
struct RotaryTables {
  at::Tensor cos;
  at::Tensor sin;
  at::Tensor position_ids;         // [B or 1, T] integers, or undefined
  at::Tensor inverse_frequencies;  // [head_dim / 2] fp32, or undefined
};
RotaryTables rotary_tables(const at::Tensor& inverse_frequencies, const at::Tensor& position_ids,
                           at::ScalarType dtype);

/// Rotates x [B, heads, T, head_dim] by the tables (x*cos + rotate_half(x)*sin).
at::Tensor apply_rotary(const at::Tensor& x, const RotaryTables& tables);


/// True when the fused kernel is compiled in and enabled (ST_FUSED_ROTARY or
/// ST_FUSED_KERNELS; read once; on by default).
bool fused_rotary_enabled();

/// The ATen reference and CPU path: tables from rotary_tables(inverse
/// frequencies, position ids, q's dtype), then apply_rotary to q and to k
/// (out of place). q [B, Hq, T, D], k [B, Hk, T, D], positions [B or 1, T].
std::pair<at::Tensor, at::Tensor> rotary_reference(const at::Tensor& q, const at::Tensor& k,
                                                   const at::Tensor& position_ids,
                                                   const at::Tensor& inverse_frequencies);

/// The fused op, IN PLACE: rotates q and k and returns them (the same
/// tensors). Under autograd, one in-place autograd function per tensor
/// (mark_dirty; PyTorch allows in-place custom functions on views only with a
/// single output), so it works on the views the attention makes of the
/// projections' outputs; q and k must not be leaves that require grad
/// (autograd refuses in-place on those). Without gradients, one launch
/// rotates both. The backward rotates the incoming gradient by -angle (out of place). On CUDA
/// fp32/bf16 with a contiguous last dimension it runs the kernel; elsewhere
/// the same formulas in ATen (angles and their cos/sin in fp32, the rotation
/// in fp32, or fp64 for fp64 inputs). Shape, dtype and device mistakes are st::Error.
std::pair<at::Tensor, at::Tensor> fused_rotary_(const at::Tensor& q, const at::Tensor& k,
                                                const at::Tensor& position_ids,
                                                const at::Tensor& inverse_frequencies);

/// True when fused_rotary_ would run the CUDA kernel for these tensors.
bool fused_rotary_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& position_ids,
                          const at::Tensor& inverse_frequencies);

/// What the attention calls: the fused op (in place) on CUDA when enabled,
/// applicable and the tables carry their position ids and frequencies; else
/// {apply_rotary(q, tables), apply_rotary(k, tables)}.
std::pair<at::Tensor, at::Tensor> apply_rotary_qk(const at::Tensor& q, const at::Tensor& k,
                                                  const RotaryTables& tables);

}  // namespace st
