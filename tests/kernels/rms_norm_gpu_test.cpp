// The fused RMSNorm kernel against its ATen reference (st::rms_norm on the
// same GPU data) over odd widths, the Salamandra widths and both dtypes.
// Tolerance: fp32 1e-5 relative; bf16 at most 2x the reference's own bf16
// error against an fp32 evaluation. Skips cleanly without a CUDA device.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <gtest/gtest.h>

#include "model/kernels/rms_norm_op.h"
#include "model/layers.h"

namespace st {
namespace {

TEST(FusedRmsNorm, MatchesReference) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  at::manual_seed(0);
  for (int64_t cols : {1, 7, 33, 255, 1000, 2048, 4096, 8192}) {
    for (int64_t rows : {1, 3, 129}) {
      at::Tensor x32 = at::randn({rows, cols}, at::TensorOptions().device(at::kCUDA));
      at::Tensor w32 = 1 + 0.1 * at::randn({cols}, x32.options());
      at::Tensor exact = rms_norm(x32.to(at::kDouble), w32.to(at::kDouble), 1e-5);
      at::Tensor fused32 = fused_rms_norm_forward(x32, w32, 1e-5);
      EXPECT_TRUE(at::allclose(fused32.to(at::kDouble), exact, 1e-5, 1e-5)) << rows << "x" << cols;
      at::Tensor xb = x32.to(at::kBFloat16), wb = w32.to(at::kBFloat16);
      at::Tensor ref_error = (rms_norm(xb, wb, 1e-5).to(at::kDouble) - exact).abs().max();
      at::Tensor our_error = (fused_rms_norm_forward(xb, wb, 1e-5).to(at::kDouble) - exact).abs().max();
      EXPECT_LE(our_error.item<double>(), 2 * ref_error.item<double>()) << rows << "x" << cols;
    }
  }
}

}  // namespace
}  // namespace st
