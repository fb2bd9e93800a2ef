// CPU (unit): the SwiGLU reference and the fused op's hand-written backward
// (its ATen formulas, the CPU side of the autograd function) against a plain
// autograd composition in fp64: values and the gradients of gate and up, at
// odd widths and the 2B/7B/40B intermediate sizes. The kernels themselves
// are tested in swiglu_gpu_test.cpp.
#include <gtest/gtest.h>

#include "common/error.h"
#include "kernels/swiglu_op.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/op_cases.h"

namespace st {
namespace {

using namespace kernel_test;


std::vector<std::vector<int64_t>> shapes() {
  std::vector<std::vector<int64_t>> out;
  for (int64_t n : kFfnWidths) out.push_back(n == 1001 ? std::vector<int64_t>{1, 3, n} : std::vector<int64_t>{3, n});
  return out;
}

TEST(SwiGluReference, MatchesPlainAutogradInFp32) {
  at::manual_seed(11);
  for (const auto& shape : shapes()) {
    SwiGluCase c = make_swiglu_case(shape, at::kFloat, at::kCPU);
    auto truth = run_swiglu(plain_swiglu, c, at::kDouble);
    auto ours = run_swiglu(swiglu_reference, c, at::kFloat);
    for (size_t i = 0; i < truth.size(); ++i) {
      const double scale = std::max(1.0, truth[i].abs().max().item<double>());
      EXPECT_LE(max_error(ours[i], truth[i]), 1e-5 * scale) << kSwiGluNames[i] << " width " << shape.back();
    }
  }
}

TEST(SwiGluFused, BackwardFormulasMatchPlainAutogradInFp64) {
  at::manual_seed(12);
  for (const auto& shape : shapes()) {
    SwiGluCase c = make_swiglu_case(shape, at::kDouble, at::kCPU);
    auto truth = run_swiglu(plain_swiglu, c, at::kDouble);
    auto ours = run_swiglu(fused_swiglu, c, at::kDouble);
    for (size_t i = 0; i < truth.size(); ++i) {
      const double scale = std::max(1.0, truth[i].abs().max().item<double>());
      EXPECT_LE(max_error(ours[i], truth[i]), 1e-12 * scale) << kSwiGluNames[i] << " width " << shape.back();
    }
  }
}

TEST(SwiGluFused, LowPrecisionWithinTwiceTheReferenceError) {
  at::manual_seed(13);
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    for (const auto& shape : shapes()) {
      SwiGluCase c = make_swiglu_case(shape, dtype, at::kCPU);
      auto truth = run_swiglu(plain_swiglu, c, at::kDouble);
      auto reference = run_swiglu(swiglu_reference, c, dtype);
      auto ours = run_swiglu(fused_swiglu, c, dtype);
      for (size_t i = 0; i < truth.size(); ++i)
        EXPECT_LE(max_error(ours[i], truth[i]), allowed_error(reference[i], truth[i]))
            << kSwiGluNames[i] << " " << dtype << " width " << shape.back();
    }
  }
}

TEST(SwiGluFused, RejectsMismatchedInputs) {
  EXPECT_THROW(fused_swiglu(at::randn({2, 8}), at::randn({2, 7})), Error);
  EXPECT_THROW(fused_swiglu(at::randn({2, 8}), at::randn({2, 8}, at::kDouble)), Error);
}

TEST(SwiGluDispatch, CpuAlwaysTakesTheReference) {
  at::Tensor gate = at::randn({3, 40}), up = at::randn({3, 40});
  EXPECT_TRUE(at::equal(swiglu(gate, up), swiglu_reference(gate, up)));
  EXPECT_FALSE(fused_swiglu_applies(gate, up));
}

}  // namespace
}  // namespace st
