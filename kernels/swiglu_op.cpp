// Checks, the autograd function and the ATen reference of the fused SwiGLU.
#include "kernels/swiglu_op.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "common/error.h"
#include "kernels/fused_switch.h"
#include "kernels/op_dtypes.h"
#include "kernels/swiglu.h"

#ifdef ST_WITH_CUDA
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace st {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// ---------------------------------------------------------------- ATen formulas
// The kernels' arithmetic with ATen ops: fp32 (fp64 for fp64 inputs), one rounding per output.

at::Tensor forward_aten(const at::Tensor& gate, const at::Tensor& up) {
  const at::ScalarType ct = arithmetic_dtype(gate);
  at::Tensor g = gate.to(ct);
  return (g * at::sigmoid(g) * up.to(ct)).to(gate.scalar_type());
}

std::pair<at::Tensor, at::Tensor> backward_aten(const at::Tensor& dout, const at::Tensor& gate, const at::Tensor& up) {
  const at::ScalarType ct = arithmetic_dtype(gate);
  at::Tensor d = dout.to(ct), g = gate.to(ct), u = up.to(ct);
  at::Tensor sg = at::sigmoid(g);
  at::Tensor dup = d * g * sg;
  at::Tensor dgate = d * u * sg * (1 + g * (1 - sg));
  return {dgate.to(gate.scalar_type()), dup.to(up.scalar_type())};
}

// ---------------------------------------------------------------- CUDA entry

bool kernel_applies(const at::Tensor& gate, const at::Tensor& up) {
#ifdef ST_WITH_CUDA
  const at::ScalarType t = gate.scalar_type();
  return gate.is_cuda() && (t == at::kFloat || t == at::kBFloat16) && up.scalar_type() == t;
#else
  (void)gate, (void)up;
  return false;
#endif
}

#ifdef ST_WITH_CUDA
at::Tensor forward_cuda(const at::Tensor& gate, const at::Tensor& up) {
  c10::cuda::CUDAGuard guard(gate.device());
  at::Tensor g = gate.contiguous(), u = up.contiguous();
  at::Tensor out = at::empty_like(g);
  kernels::SwiGluForwardParams p{g.data_ptr(), u.data_ptr(), out.data_ptr(), g.numel(), kernel_dtype(g)};
  kernels::launch_swiglu_forward(p, c10::cuda::getCurrentCUDAStream().stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

std::pair<at::Tensor, at::Tensor> backward_cuda(const at::Tensor& dout, const at::Tensor& gate, const at::Tensor& up) {
  c10::cuda::CUDAGuard guard(gate.device());
  at::Tensor d = dout.contiguous(), g = gate.contiguous(), u = up.contiguous();
  at::Tensor dgate = at::empty_like(g), dup = at::empty_like(u);
  kernels::SwiGluBackwardParams p{d.data_ptr(), g.data_ptr(), u.data_ptr(), dgate.data_ptr(), dup.data_ptr(),
                                  g.numel(), kernel_dtype(g)};
  kernels::launch_swiglu_backward(p, c10::cuda::getCurrentCUDAStream().stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {dgate, dup};
}
#endif

// ---------------------------------------------------------------- autograd

class SwiGluFunction : public torch::autograd::Function<SwiGluFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate, const at::Tensor& up) {
    ctx->set_materialize_grads(false);
    const bool kernel = kernel_applies(gate, up);
    ctx->saved_data["kernel"] = kernel;
    ctx->save_for_backward({gate, up});
#ifdef ST_WITH_CUDA
    if (kernel) return forward_cuda(gate, up);
#endif
    return forward_aten(gate, up);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor()};
    const auto saved = ctx->get_saved_variables();
#ifdef ST_WITH_CUDA
    if (ctx->saved_data["kernel"].toBool()) {
      auto [dgate, dup] = backward_cuda(grads[0], saved[0], saved[1]);
      return {dgate, dup};
    }
#endif
    auto [dgate, dup] = backward_aten(grads[0], saved[0], saved[1]);
    return {dgate, dup};
  }
};

}  // namespace

bool fused_swiglu_enabled() {
  // On by default: verified on an H100 (scripts/gpu_check.sh, 2026-11-26).
  static const FusedSwitch fused_switch("ST_FUSED_SWIGLU", /*default_on=*/true);
  return fused_switch.enabled();
}

at::Tensor swiglu_reference(const at::Tensor& gate, const at::Tensor& up) { return at::silu(gate) * up; }

bool fused_swiglu_applies(const at::Tensor& gate, const at::Tensor& up) { return kernel_applies(gate, up); }

at::Tensor fused_swiglu(const at::Tensor& gate, const at::Tensor& up) {
  if (!gate.defined() || !up.defined()) fail("swiglu: gate and up must be defined tensors");
  if (gate.sizes() != up.sizes()) fail("swiglu: gate ", gate.sizes(), " and up ", up.sizes(), " must have the same shape");
  if (gate.scalar_type() != up.scalar_type())
    fail("swiglu: gate is ", gate.scalar_type(), " but up is ", up.scalar_type());
  if (gate.device() != up.device()) fail("swiglu: gate is on ", gate.device(), ", up on ", up.device());
  return SwiGluFunction::apply(gate, up);
}

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up) {
  if (gate.is_cuda() && fused_swiglu_enabled() && gate.sizes() == up.sizes() && kernel_applies(gate, up))
    return fused_swiglu(gate, up);
  return swiglu_reference(gate, up);
}

}  // namespace st
