// The fused LoRA projection (lora/lora_projection.h) against PEFT's
// composition (kernel_test_util.h: plain_lora_projection) with autograd's
// gradients: in fp64 to rounding (the same
// function, other summation order), and in fp32/bf16 within 2x the
// composition's own error against fp64 (kernel_test_util.h's rule), at odd
// sizes and the Salamandra widths, with and without bias and trainable base.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "lora/lora_projection.h"
#include "tests/common/expect_error.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/lora/lora_projection_cases.h"

namespace st {
namespace {

using kernel_test::allowed_error;
using kernel_test::leaf;
using kernel_test::max_error;
using kernel_test::plain_lora_projection;
using lora_test::Case;
using lora_test::Inputs;
using lora_test::kCases;
using lora_test::make_inputs;
using lora_test::run;
using test::expect_error;

TEST(LoraProjection, MatchesPeftCompositionInFp64) {
  at::manual_seed(0);
  for (const Case& c : kCases) {
    const Inputs in = make_inputs(c, at::kDouble);
    const auto truth = run(plain_lora_projection, c, in, at::kDouble, 2.0);
    const auto ours = run(lora_projection, c, in, at::kDouble, 2.0);
    ASSERT_EQ(ours.size(), truth.size());
    for (size_t i = 0; i < truth.size(); ++i) {
      ASSERT_EQ(ours[i].sizes(), truth[i].sizes()) << i;
      const double scale = truth[i].abs().max().item<double>();
      EXPECT_LE(max_error(ours[i], truth[i]), 1e-12 * std::max(scale, 1.0)) << "output " << i << " in " << c.x_shape;
    }
  }
}

TEST(LoraProjection, LowPrecisionWithinTwiceTheCompositionsError) {
  at::manual_seed(1);
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    for (const Case& c : kCases) {
      const Inputs in = make_inputs(c, dtype);
      const auto truth = run(plain_lora_projection, c, in, at::kDouble, 0.5);
      const auto plain = run(plain_lora_projection, c, in, dtype, 0.5);
      const auto ours = run(lora_projection, c, in, dtype, 0.5);
      for (size_t i = 0; i < truth.size(); ++i)
        EXPECT_LE(max_error(ours[i], truth[i]), allowed_error(plain[i], truth[i]))
            << "output " << i << " " << dtype << " x " << c.x_shape << " out " << c.out << " r " << c.rank;
    }
  }
}

TEST(LoraProjection, FrozenBaseGetsNoGradient) {
  at::manual_seed(2);
  const Case c{{6, 40}, 24, 4, true, false};
  const Inputs in = make_inputs(c, at::kFloat);
  at::Tensor x = leaf(in.x, at::kFloat), a = leaf(in.a, at::kFloat), b = leaf(in.b, at::kFloat);
  at::Tensor w = in.weight.to(at::kFloat), bias = in.bias.to(at::kFloat);
  lora_projection(x, w, bias, a, b, 1.0).sum().backward();
  EXPECT_FALSE(w.grad().defined());
  EXPECT_FALSE(bias.grad().defined());
  EXPECT_TRUE(x.grad().defined() && a.grad().defined() && b.grad().defined());
}

TEST(LoraProjection, BadShapesNameTheOpAndTensors) {
  const at::Tensor x = at::randn({3, 8}), w = at::randn({5, 8}), a = at::randn({2, 8}), b = at::randn({5, 2});
  expect_error([&] { lora_projection(x, w, {}, at::randn({2, 7}), b, 1.0); }, {"lora_projection", "lora_a"});
  expect_error([&] { lora_projection(x, w, {}, a, at::randn({5, 3}), 1.0); }, {"lora_projection", "lora_b"});
  expect_error([&] { lora_projection(at::randn({3, 9}), w, {}, a, b, 1.0); }, {"lora_projection", "x "});
  expect_error([&] { lora_projection(x, w, at::randn({4}), a, b, 1.0); }, {"lora_projection", "bias"});
  expect_error([&] { lora_projection(x, w.to(at::kDouble), {}, a, b, 1.0); }, {"lora_projection", "dtype"});
}

}  // namespace
}  // namespace st
