// GPU: the LoRA projection (lora/lora_projection.h) on CUDA, where its
// matmuls are cuBLAS's, against PEFT's composition in fp64 (on the CPU):
// within 2x the composition's own error on CUDA, in fp32 and bf16, at the
// cases of the CPU test. Skips without a CUDA device.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <gtest/gtest.h>

#include "lora/lora_projection.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/lora/lora_projection_cases.h"

namespace st {
namespace {

using kernel_test::allowed_error;
using kernel_test::max_error;
using kernel_test::plain_lora_projection;

TEST(LoraProjectionGpu, WithinTwiceTheCompositionsErrorOnCuda) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  at::manual_seed(3);
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    for (const lora_test::Case& c : lora_test::kCases) {
      const lora_test::Inputs host = lora_test::make_inputs(c, dtype);
      const lora_test::Inputs device = lora_test::to_device(host, at::kCUDA);
      const auto truth = lora_test::run(plain_lora_projection, c, host, at::kDouble, 0.5);
      const auto plain = lora_test::run(plain_lora_projection, c, device, dtype, 0.5);
      const auto ours = lora_test::run(lora_projection, c, device, dtype, 0.5);
      ASSERT_EQ(ours.size(), truth.size());
      for (size_t i = 0; i < truth.size(); ++i) {
        EXPECT_TRUE(ours[i].is_cuda()) << i;
        EXPECT_LE(max_error(ours[i].cpu(), truth[i]), allowed_error(plain[i].cpu(), truth[i]))
            << "output " << i << " " << dtype << " x " << c.x_shape << " out " << c.out << " r " << c.rank;
      }
    }
  }
}

}  // namespace
}  // namespace st
