// Checks, the autograd function and the ATen reference of the fused rotary
// embedding of q and k. In place: the forward overwrites q and k and marks
// them dirty, which autograd supports on the views the attention makes of
// the projections' outputs (nothing saves those outputs for its backward),
// but only for a function with one output: with gradients recorded, q and k
// take one call (and one launch) each; without, one launch rotates both.
#include "kernels/rotary_op.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>

#include "common/error.h"
#include "kernels/fused_switch.h"
#include "kernels/op_dtypes.h"
#include "kernels/rotary.h"

#ifdef ST_WITH_CUDA
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace st {

RotaryTables rotary_tables(const at::Tensor& inverse_frequencies, const at::Tensor& position_ids,
                           at::ScalarType dtype) {
  at::Tensor freqs = position_ids.unsqueeze(-1).to(at::kFloat) * inverse_frequencies.to(at::kFloat);
  at::Tensor angles = at::cat({freqs, freqs}, -1);
  return {angles.cos().to(dtype), angles.sin().to(dtype), position_ids, inverse_frequencies.to(at::kFloat)};
}

at::Tensor apply_rotary(const at::Tensor& x, const RotaryTables& tables) {
  const int64_t half = x.size(-1) / 2;
  at::Tensor first = x.narrow(-1, 0, half);
  at::Tensor second = x.narrow(-1, half, half);
  at::Tensor rotated = at::cat({-second, first}, -1);
  // Tables are [B, T, D]; heads broadcast over dimension 1.
  return x * tables.cos.unsqueeze(1) + rotated * tables.sin.unsqueeze(1);
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// ---------------------------------------------------------------- ATen formulas

// Writes the rotation of `in` by sign * angle into `out` (which may be `in`):
// the kernel's arithmetic with ATen ops. Angles and cos/sin in fp32 as the
// reference's tables; the rotation in fp32 (fp64 for fp64 inputs).
void rotate_aten(const at::Tensor& in, const at::Tensor& out, const at::Tensor& positions,
                 const at::Tensor& inverse_frequencies, double sign) {
  const int64_t half = in.size(-1) / 2;
  const at::ScalarType ct = arithmetic_dtype(in);
  at::Tensor angles = positions.to(at::kFloat).unsqueeze(-1) * inverse_frequencies.to(at::kFloat);  // [B|1, T, D/2]
  at::Tensor c = angles.cos().to(ct).unsqueeze(1), s = (angles.sin() * sign).to(ct).unsqueeze(1);
  at::Tensor x1 = in.narrow(-1, 0, half).to(ct), x2 = in.narrow(-1, half, half).to(ct);
  at::Tensor y1 = x1 * c - x2 * s, y2 = x2 * c + x1 * s;  // both computed before `out` is touched
  out.narrow(-1, 0, half).copy_(y1);
  out.narrow(-1, half, half).copy_(y2);
}

// ---------------------------------------------------------------- CUDA entry

bool kernel_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& positions,
                    const at::Tensor& inverse_frequencies) {
#ifdef ST_WITH_CUDA
  const at::ScalarType t = q.scalar_type();
  return q.is_cuda() && (t == at::kFloat || t == at::kBFloat16) && k.scalar_type() == t && q.size(-1) > 0 &&
         q.size(-1) <= kernels::kRotaryMaxHeadDim && q.stride(-1) == 1 && k.stride(-1) == 1 &&
         positions.is_cuda() && inverse_frequencies.is_cuda();
#else
  (void)q, (void)k, (void)positions, (void)inverse_frequencies;
  return false;
#endif
}

#ifdef ST_WITH_CUDA
kernels::RotaryTensor describe(const at::Tensor& in, const at::Tensor& out) {
  if (!in.defined()) return {};
  return {in.data_ptr(), out.data_ptr(), in.size(1), in.stride(0), in.stride(1), in.stride(2),
          out.stride(0), out.stride(1), out.stride(2)};
}

// Rotates q_in into q_out and k_in into k_out (k_in may be undefined) in one launch.
void rotate_cuda(const at::Tensor& q_in, const at::Tensor& q_out, const at::Tensor& k_in, const at::Tensor& k_out,
                 const at::Tensor& positions, const at::Tensor& inverse_frequencies, float sign) {
  c10::cuda::CUDAGuard guard(q_in.device());
  at::Tensor pos = positions.to(at::kLong);
  at::Tensor freqs = inverse_frequencies.to(at::kFloat).contiguous();
  kernels::RotaryParams p{};
  p.q = describe(q_in, q_out);
  p.k = describe(k_in, k_out);
  p.positions = pos.data_ptr<int64_t>();
  p.positions_stride_batch = pos.size(0) == 1 ? 0 : pos.stride(0);
  p.positions_stride_step = pos.stride(1);
  p.inverse_frequencies = freqs.data_ptr<float>();
  p.batch = q_in.size(0);
  p.steps = q_in.size(2);
  p.head_dim = q_in.size(3);
  p.sign = sign;
  p.dtype = kernel_dtype(q_in);
  kernels::launch_rotary(p, c10::cuda::getCurrentCUDAStream().stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// The backward's input gradient with a unit last stride (the kernel's requirement).
at::Tensor unit_last_stride(const at::Tensor& t) { return t.stride(-1) == 1 ? t : t.contiguous(); }
#endif

// ---------------------------------------------------------------- autograd

// Rotates q and k (k may be undefined) in place by +angle: the kernel in one
// launch when it applies, else the ATen formulas.
void rotate_in_place(const at::Tensor& q, const at::Tensor& k, const at::Tensor& positions,
                     const at::Tensor& inverse_frequencies, bool kernel) {
#ifdef ST_WITH_CUDA
  if (kernel) return rotate_cuda(q, q, k, k, positions, inverse_frequencies, 1.f);
#else
  (void)kernel;
#endif
  rotate_aten(q, q, positions, inverse_frequencies, 1.0);
  if (k.defined()) rotate_aten(k, k, positions, inverse_frequencies, 1.0);
}

// One tensor rotated in place. Autograd allows an in-place custom function
// on a view (the attention's q and k are views) only with a single output,
// so q and k each go through their own call when gradients are recorded.
class RotaryFunction : public torch::autograd::Function<RotaryFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& positions,
                            const at::Tensor& inverse_frequencies, bool kernel) {
    ctx->set_materialize_grads(false);
    rotate_in_place(x, at::Tensor(), positions, inverse_frequencies, kernel);
    ctx->mark_dirty({x});
    ctx->save_for_backward({positions, inverse_frequencies});
    ctx->saved_data["kernel"] = kernel;
    return x;
  }

  // The transpose of a rotation is the rotation by -angle (out of place:
  // the incoming gradient may be shared).
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    const auto saved = ctx->get_saved_variables();
    at::Tensor dx;
#ifdef ST_WITH_CUDA
    if (ctx->saved_data["kernel"].toBool()) {
      at::Tensor g = unit_last_stride(grads[0]);
      dx = at::empty_like(g);
      rotate_cuda(g, dx, at::Tensor(), at::Tensor(), saved[0], saved[1], -1.f);
    }
#endif
    if (!dx.defined()) {
      dx = at::empty_like(grads[0]);
      rotate_aten(grads[0], dx, saved[0], saved[1], -1.0);
    }
    return {dx, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

void check_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& positions,
                  const at::Tensor& inverse_frequencies) {
  if (!q.defined() || !k.defined() || !positions.defined() || !inverse_frequencies.defined())
    fail("rotary: q, k, position ids and inverse frequencies must all be defined");
  if (q.dim() != 4 || k.dim() != 4)
    fail("rotary: q and k must be [batch, heads, steps, head_dim], got ", q.sizes(), " and ", k.sizes());
  if (q.size(0) != k.size(0) || q.size(2) != k.size(2) || q.size(3) != k.size(3))
    fail("rotary: q ", q.sizes(), " and k ", k.sizes(), " differ in batch, steps or head_dim");
  if (q.size(3) % 2 != 0) fail("rotary: head_dim must be even, got ", q.size(3));
  if (q.scalar_type() != k.scalar_type()) fail("rotary: q is ", q.scalar_type(), " but k is ", k.scalar_type());
  if (positions.dim() != 2 || positions.size(1) != q.size(2) || (positions.size(0) != 1 && positions.size(0) != q.size(0)))
    fail("rotary: position ids must be [", q.size(0), " or 1, ", q.size(2), "], got ", positions.sizes());
  if (!at::isIntegralType(positions.scalar_type(), /*includeBool=*/false))
    fail("rotary: position ids must be integers, got ", positions.scalar_type());
  if (inverse_frequencies.dim() != 1 || inverse_frequencies.size(0) != q.size(3) / 2)
    fail("rotary: inverse frequencies must be [", q.size(3) / 2, "], got ", inverse_frequencies.sizes());
  for (const at::Tensor* t : {&k, &positions, &inverse_frequencies})
    if (t->device() != q.device()) fail("rotary: q is on ", q.device(), " but another input is on ", t->device());
}

}  // namespace

bool fused_rotary_enabled() {
  // On by default: verified on an H100 (scripts/gpu_check.sh, 2026-11-26).
  static const FusedSwitch fused_switch("ST_FUSED_ROTARY", /*default_on=*/true);
  return fused_switch.enabled();
}

std::pair<at::Tensor, at::Tensor> rotary_reference(const at::Tensor& q, const at::Tensor& k,
                                                   const at::Tensor& position_ids,
                                                   const at::Tensor& inverse_frequencies) {
  RotaryTables tables = rotary_tables(inverse_frequencies, position_ids, q.scalar_type());
  return {apply_rotary(q, tables), apply_rotary(k, tables)};
}

bool fused_rotary_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& position_ids,
                          const at::Tensor& inverse_frequencies) {
  return kernel_applies(q, k, position_ids, inverse_frequencies);
}

std::pair<at::Tensor, at::Tensor> fused_rotary_(const at::Tensor& q, const at::Tensor& k,
                                                const at::Tensor& position_ids,
                                                const at::Tensor& inverse_frequencies) {
  check_inputs(q, k, position_ids, inverse_frequencies);
  const bool kernel = kernel_applies(q, k, position_ids, inverse_frequencies);
  if (at::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad())) {
    at::Tensor q_out = RotaryFunction::apply(q, position_ids, inverse_frequencies, kernel);
    at::Tensor k_out = RotaryFunction::apply(k, position_ids, inverse_frequencies, kernel);
    return {q_out, k_out};
  }
  rotate_in_place(q, k, position_ids, inverse_frequencies, kernel);  // one launch for both
  return {q, k};
}

std::pair<at::Tensor, at::Tensor> apply_rotary_qk(const at::Tensor& q, const at::Tensor& k,
                                                  const RotaryTables& tables) {
  if (q.is_cuda() && fused_rotary_enabled() && tables.position_ids.defined() &&
      tables.inverse_frequencies.defined() && q.dim() == 4 && k.dim() == 4 &&
      kernel_applies(q, k, tables.position_ids, tables.inverse_frequencies))
    return fused_rotary_(q, k, tables.position_ids, tables.inverse_frequencies);
  return {apply_rotary(q, tables), apply_rotary(k, tables)};
}

}  // namespace st
