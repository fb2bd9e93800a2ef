// GPU (label gpu): the fused residual add + RMSNorm kernels against the ATen
// reference over odd widths, the 2B/7B/40B hidden sizes, 1..129 rows, with
// and without the residual, fp32 and bf16: outputs and the gradients of x,
// residual and weight. Rule (kernel_test_util.h): the kernel's error against
// the fp64 truth is at most 2x the reference's at the same dtype. Skips
// cleanly without a CUDA device.
#include <ATen/Context.h>
#include <gtest/gtest.h>

#include "kernels/rms_norm_op.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/op_cases.h"

namespace st {
namespace {

using namespace kernel_test;

constexpr double kEps = 1e-5;


TEST(FusedRmsNormGpu, MatchesReferenceWithinTwiceItsError) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  at::manual_seed(0);
  auto reference = [](const at::Tensor& x, const at::Tensor& r, const at::Tensor& w) {
    auto out = add_rms_norm_reference(x, r, w, kEps);
    return std::pair{out.normed, out.sum};
  };
  auto fused = [](const at::Tensor& x, const at::Tensor& r, const at::Tensor& w) {
    EXPECT_TRUE(fused_rms_norm_applies(x, r, w));
    auto out = fused_add_rms_norm(x, r, w, kEps);
    return std::pair{out.normed, out.sum};
  };
  auto plain = [](const at::Tensor& x, const at::Tensor& r, const at::Tensor& w) {
    return plain_add_rms_norm(x, r, w, kEps);
  };
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    for (int64_t cols : kHiddenWidths) {
      for (int64_t rows : {1, 3, 129}) {
        for (bool with_residual : {true, false}) {
          RmsNormCase c = make_rms_norm_case({rows, cols}, dtype, at::kCUDA);
          auto truth = run_rms_norm(plain, c, at::kDouble, with_residual);
          auto ref = run_rms_norm(reference, c, dtype, with_residual);
          auto ours = run_rms_norm(fused, c, dtype, with_residual);
          for (size_t i = 0; i < truth.size(); ++i)
            EXPECT_LE(max_error(ours[i], truth[i]), allowed_error(ref[i], truth[i]))
                << kRmsNormNames[i] << " " << dtype << " " << rows << "x" << cols << " residual " << with_residual;
        }
      }
    }
  }
}

TEST(FusedRmsNormGpu, NonContiguousAndThreeDimensionalInputs) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  at::Tensor base = at::randn({2, 5, 4096}, at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16));
  at::Tensor x = base.transpose(0, 1);  // [5, 2, 4096], not contiguous
  at::Tensor r = at::randn_like(x), w = at::randn({4096}, base.options());
  auto fused = fused_add_rms_norm(x, r, w, kEps);
  auto reference = add_rms_norm_reference(x, r, w, kEps);
  EXPECT_EQ(fused.normed.sizes(), x.sizes());
  EXPECT_TRUE(at::equal(fused.sum, reference.sum));
  EXPECT_LE(max_error(fused.normed, reference.normed), 2 * 0.0078125 * reference.normed.abs().max().item<double>());
}

}  // namespace
}  // namespace st
