// CPU (unit): the residual add + RMSNorm reference and the fused op's
// hand-written backward (its ATen formulas, the CPU side of the autograd
// function) against a plain autograd composition in fp64: values and the
// gradients of x, residual and weight, at odd widths and the 2B/7B/40B
// hidden sizes. The kernels themselves are tested in rms_norm_gpu_test.cpp.
#include <gtest/gtest.h>

#include "common/error.h"
#include "kernels/rms_norm_op.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/op_cases.h"

namespace st {
namespace {

using namespace kernel_test;

constexpr double kEps = 1e-5;

auto reference_op = [](const at::Tensor& x, const at::Tensor& r, const at::Tensor& w) {
  auto out = add_rms_norm_reference(x, r, w, kEps);
  return std::pair{out.normed, out.sum};
};
auto fused_op = [](const at::Tensor& x, const at::Tensor& r, const at::Tensor& w) {
  auto out = fused_add_rms_norm(x, r, w, kEps);
  return std::pair{out.normed, out.sum};
};
auto plain_op = [](const at::Tensor& x, const at::Tensor& r, const at::Tensor& w) {
  return plain_add_rms_norm(x, r, w, kEps);
};

// Shapes: 3 rows (one case as [1, 3, cols]) at every width.
std::vector<std::vector<int64_t>> shapes() {
  std::vector<std::vector<int64_t>> out;
  for (int64_t cols : kHiddenWidths) out.push_back(cols == 1000 ? std::vector<int64_t>{1, 3, cols}
                                                                : std::vector<int64_t>{3, cols});
  return out;
}

TEST(RmsNormReference, MatchesPlainAutogradInFp32) {
  // The reference computes its statistics in fp32 (as transformers does), so
  // fp32 agreement is the bar: 1e-5 of the largest value.
  at::manual_seed(1);
  for (const auto& shape : shapes()) {
    for (bool with_residual : {true, false}) {
      RmsNormCase c = make_rms_norm_case(shape, at::kFloat, at::kCPU);
      auto truth = run_rms_norm(plain_op, c, at::kDouble, with_residual);
      auto ours = run_rms_norm(reference_op, c, at::kFloat, with_residual);
      for (size_t i = 0; i < truth.size(); ++i) {
        const double scale = std::max(1.0, truth[i].abs().max().item<double>());
        EXPECT_LE(max_error(ours[i], truth[i]), 1e-5 * scale)
            << kRmsNormNames[i] << " width " << shape.back() << " residual " << with_residual;
      }
    }
  }
}

TEST(RmsNormFused, BackwardFormulasMatchPlainAutogradInFp64) {
  at::manual_seed(2);
  for (const auto& shape : shapes()) {
    for (bool with_residual : {true, false}) {
      RmsNormCase c = make_rms_norm_case(shape, at::kDouble, at::kCPU);
      auto truth = run_rms_norm(plain_op, c, at::kDouble, with_residual);
      auto ours = run_rms_norm(fused_op, c, at::kDouble, with_residual);
      for (size_t i = 0; i < truth.size(); ++i) {
        const double scale = std::max(1.0, truth[i].abs().max().item<double>());
        EXPECT_LE(max_error(ours[i], truth[i]), 1e-12 * scale)
            << kRmsNormNames[i] << " width " << shape.back() << " residual " << with_residual;
      }
    }
  }
}

TEST(RmsNormFused, LowPrecisionWithinTwiceTheReferenceError) {
  at::manual_seed(3);
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    for (const auto& shape : shapes()) {
      RmsNormCase c = make_rms_norm_case(shape, dtype, at::kCPU);
      auto truth = run_rms_norm(plain_op, c, at::kDouble, true);
      auto reference = run_rms_norm(reference_op, c, dtype, true);
      auto ours = run_rms_norm(fused_op, c, dtype, true);
      for (size_t i = 0; i < truth.size(); ++i)
        EXPECT_LE(max_error(ours[i], truth[i]), allowed_error(reference[i], truth[i]))
            << kRmsNormNames[i] << " " << dtype << " width " << shape.back();
    }
  }
}

TEST(RmsNormFused, OnlyTheSumUsedPassesItsGradientThrough) {
  at::Tensor x = at::randn({2, 5}, at::kDouble).requires_grad_(), r = at::randn({2, 5}, at::kDouble).requires_grad_();
  at::Tensor w = at::ones({5}, at::kDouble).requires_grad_();
  auto out = fused_add_rms_norm(x, r, w, kEps);
  at::Tensor upstream = at::randn({2, 5}, at::kDouble);
  auto grads = torch::autograd::grad({(out.sum * upstream).sum()}, {x, r, w}, {}, {}, false, /*allow_unused=*/true);
  EXPECT_TRUE(at::equal(grads[0], upstream));
  EXPECT_TRUE(at::equal(grads[1], upstream));
  EXPECT_FALSE(grads[2].defined() && grads[2].abs().max().item<double>() != 0);
}

TEST(RmsNormFused, RejectsMismatchedInputs) {
  at::Tensor x = at::randn({2, 8});
  EXPECT_THROW(fused_add_rms_norm(x, at::Tensor(), at::ones({7}), kEps), Error);
  EXPECT_THROW(fused_add_rms_norm(x, at::randn({2, 7}), at::ones({8}), kEps), Error);
  EXPECT_THROW(fused_add_rms_norm(x, at::randn({2, 8}, at::kDouble), at::ones({8}), kEps), Error);
}

TEST(RmsNormDispatch, CpuAlwaysTakesTheReference) {
  at::Tensor x = at::randn({3, 64}), r = at::randn({3, 64}), w = at::randn({64});
  auto chosen = add_rms_norm(x, r, w, kEps);
  auto reference = add_rms_norm_reference(x, r, w, kEps);
  EXPECT_TRUE(at::equal(chosen.normed, reference.normed));
  EXPECT_TRUE(at::equal(chosen.sum, reference.sum));
  EXPECT_FALSE(fused_rms_norm_applies(x, r, w));
}

}  // namespace
}  // namespace st
