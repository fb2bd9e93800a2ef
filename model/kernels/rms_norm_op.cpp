#include "model/kernels/rms_norm_op.h"

#include <ATen/ATen.h>

#include <cstdlib>
#include <cstring>

#include "common/error.h"
#include "model/kernels/rms_norm.h"

#ifdef ST_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

namespace st {

bool fused_rms_norm_enabled() {
#ifdef ST_WITH_CUDA
  static const bool enabled = [] {
    const char* flag = std::getenv("ST_FUSED_RMS_NORM");
    return flag && std::strcmp(flag, "1") == 0;
  }();
  return enabled;
#else
  return false;
#endif
}

at::Tensor fused_rms_norm_forward(const at::Tensor& x, const at::Tensor& weight, double eps) {
#ifdef ST_WITH_CUDA
  if (!x.is_cuda() || !weight.is_cuda()) fail("fused_rms_norm_forward: tensors must be on a CUDA device");
  if (x.scalar_type() != weight.scalar_type()) fail("fused_rms_norm_forward: x and weight dtypes differ");
  if (x.scalar_type() != at::kFloat && x.scalar_type() != at::kBFloat16)
    fail("fused_rms_norm_forward: only float32 and bfloat16 are supported");
  if (weight.dim() != 1 || weight.size(0) != x.size(-1))
    fail("fused_rms_norm_forward: weight must be [", x.size(-1), "]");
  at::Tensor input = x.contiguous();
  at::Tensor w = weight.contiguous();
  at::Tensor out = at::empty_like(input);
  kernels::RmsNormParams params{input.data_ptr(), w.data_ptr(), out.data_ptr(), input.numel() / input.size(-1),
                                input.size(-1), static_cast<float>(eps),
                                x.scalar_type() == at::kFloat ? kernels::RmsNormDType::kFloat32
                                                              : kernels::RmsNormDType::kBFloat16};
  kernels::launch_rms_norm_forward(params, c10::cuda::getCurrentCUDAStream().stream());
  return out;
#else
  (void)x, (void)weight, (void)eps;
  fail("fused_rms_norm_forward: this build has no CUDA kernels");
#endif
}

}  // namespace st
