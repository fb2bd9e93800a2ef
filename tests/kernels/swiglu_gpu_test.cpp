// GPU (label gpu): the fused SwiGLU kernels against the ATen reference over
// odd widths and the 2B/7B/40B intermediate sizes, fp32 and bf16, values and
// the gradients of gate and up; plus a misaligned view (the one-element
// path). Rule: at most 2x the reference's error against the fp64 truth.
// Skips cleanly without a CUDA device.
#include <ATen/Context.h>
#include <gtest/gtest.h>

#include "kernels/swiglu_op.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/op_cases.h"

namespace st {
namespace {

using namespace kernel_test;


TEST(FusedSwiGluGpu, MatchesReferenceWithinTwiceItsError) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  at::manual_seed(0);
  auto fused = [](const at::Tensor& g, const at::Tensor& u) {
    EXPECT_TRUE(fused_swiglu_applies(g, u));
    return fused_swiglu(g, u);
  };
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    for (int64_t n : kFfnWidths) {
      for (int64_t rows : {1, 3, 65}) {
        for (int64_t skip : {0, 1}) {
          if (skip && rows * n < 2) continue;
          SwiGluCase c = make_swiglu_case({rows, n}, dtype, at::kCUDA);
          auto truth = run_swiglu(plain_swiglu, c, at::kDouble, skip);
          auto ref = run_swiglu(swiglu_reference, c, dtype, skip);
          auto ours = run_swiglu(fused, c, dtype, skip);
          for (size_t i = 0; i < truth.size(); ++i)
            EXPECT_LE(max_error(ours[i], truth[i]), allowed_error(ref[i], truth[i]))
                << kSwiGluNames[i] << " " << dtype << " " << rows << "x" << n << " skip " << skip;
        }
      }
    }
  }
}

}  // namespace
}  // namespace st
