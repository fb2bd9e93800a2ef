// GPU (label gpu): the fused SwiGLU kernels against the ATen reference over
// odd widths and the 2B/7B/40B intermediate sizes, fp32 and bf16, values and
// the gradients of gate and up; plus a misaligned view (the one-element
// path). Rule: at most 2x the reference's error against the fp64 truth.
// Skips cleanly without a CUDA device.
#include <ATen/Context.h>
#include <gtest/gtest.h>

#include "model/kernels/swiglu_op.h"
#include "tests/kernels/kernel_test_util.h"

namespace st {
namespace {

using namespace kernel_test;

struct Case {
  at::Tensor gate, up, dout;
};

Case make_case(std::vector<int64_t> shape, at::ScalarType dtype) {
  auto make = [&](at::Tensor t) { return t.to(dtype).to(at::kDouble).to(at::kCUDA); };
  return {make(3 * at::randn(shape)), make(at::randn(shape)), make(at::randn(shape))};
}

template <typename Op>
std::vector<at::Tensor> run(Op op, const Case& c, at::ScalarType dtype, int64_t skip = 0) {
  at::Tensor gate = leaf(c.gate, dtype), up = leaf(c.up, dtype);
  // `skip` > 0 hands the op views that start mid-pack (misaligned pointers).
  at::Tensor g = skip ? gate.flatten().narrow(0, skip, gate.numel() - skip) : gate;
  at::Tensor u = skip ? up.flatten().narrow(0, skip, up.numel() - skip) : up;
  at::Tensor out = op(g, u);
  at::Tensor d = skip ? c.dout.flatten().narrow(0, skip, c.dout.numel() - skip) : c.dout;
  auto grads = gradients({out}, {d}, {gate, up});
  return {out, grads[0], grads[1]};
}

const char* kNames[] = {"out", "dgate", "dup"};

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
          Case c = make_case({rows, n}, dtype);
          auto truth = run(plain_swiglu, c, at::kDouble, skip);
          auto ref = run(swiglu_reference, c, dtype, skip);
          auto ours = run(fused, c, dtype, skip);
          for (size_t i = 0; i < truth.size(); ++i)
            EXPECT_LE(max_error(ours[i], truth[i]), allowed_error(ref[i], truth[i]))
                << kNames[i] << " " << dtype << " " << rows << "x" << n << " skip " << skip;
        }
      }
    }
  }
}

}  // namespace
}  // namespace st
