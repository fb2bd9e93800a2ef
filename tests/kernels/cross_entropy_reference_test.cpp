// CPU (unit): the row-wise log-softmax reference under the LM head, against
// plain log_softmax + gather in fp64 (statistics and gradient), and its NaN
// behaviour; the fused-kernel switch. The kernel is tested in
// cross_entropy_gpu_test.cpp, the LM head that calls it in
// tests/model/lm_head_test.cpp.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "common/error.h"
#include "kernels/cross_entropy_op.h"
#include "kernels/fused_switch.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/op_cases.h"

namespace st {
namespace {

using namespace kernel_test;

TEST(LogSoftmaxRowsReference, StatisticsAndGradientMatchAutogradInFp64) {
  at::manual_seed(21);
  for (int64_t vocab : {1, 7, 1000, 32001}) {
    at::Tensor logits = 4 * at::randn({6, vocab}, at::kDouble);
    at::Tensor targets = at::randint(0, vocab, {6}, at::TensorOptions().dtype(at::kLong));
    targets[2] = kIgnoreTarget;
    at::Tensor coeff = at::randn({6}, at::kDouble);
    at::Tensor leaf_logits = logits.clone().requires_grad_(true);
    at::Tensor valid = targets.ge(0);
    at::Tensor truth = at::log_softmax(leaf_logits, 1).gather(1, targets.clamp_min(0).unsqueeze(1)).squeeze(1) *
                       valid.to(at::kDouble);
    at::Tensor truth_grad = torch::autograd::grad({(truth * coeff).sum()}, {leaf_logits})[0];

    RowLogSoftmax stats = log_softmax_rows_reference(logits, targets);
    EXPECT_LE(max_error(stats.target_log_prob, truth), 1e-12) << vocab;
    EXPECT_LE(max_error(stats.lse, at::logsumexp(logits, 1)), 1e-12) << vocab;
    at::Tensor in_place = logits.clone();
    RowLogSoftmax again = log_softmax_rows_with_grad_reference_(in_place, targets, coeff);
    EXPECT_TRUE(at::equal(again.lse, stats.lse));
    EXPECT_LE(max_error(in_place, truth_grad), 1e-12) << vocab;
    EXPECT_TRUE(at::equal(in_place[2], at::zeros({vocab}, at::kDouble))) << "ignored row " << vocab;
  }
}

// NaN logits: the reference's rows are NaN exactly where log_softmax's are
// (the GPU kernel is held to the same rule).
TEST(LogSoftmaxRowsReference, NanLogitsGiveNanRowsLikeLogSoftmax) {
  at::manual_seed(3);
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    at::Tensor logits = nan_logit_rows(1001).to(dtype);
    at::Tensor targets = at::full({5}, 1000, at::TensorOptions().dtype(at::kLong));
    const RowLogSoftmax stats = log_softmax_rows_reference(logits, targets);
    const at::Tensor plain = at::log_softmax(logits.to(at::kFloat), 1).select(1, 1000);
    EXPECT_TRUE(at::equal(at::isnan(stats.target_log_prob), at::isnan(plain))) << dtype;
    EXPECT_TRUE(at::equal(at::isnan(stats.lse), at::isnan(plain))) << dtype;
    EXPECT_TRUE(at::isnan(plain.narrow(0, 0, 3)).all().item<bool>());
    EXPECT_FALSE(at::isnan(plain.narrow(0, 3, 2)).any().item<bool>());
  }
}
TEST(FusedSwitch, RejectsAValueOtherThanOneOrZero) {
  setenv("ST_FUSED_SWITCH_TEST", "maybe", 1);
  EXPECT_THROW(FusedSwitch("ST_FUSED_SWITCH_TEST", false), Error);
  setenv("ST_FUSED_SWITCH_TEST", "0", 1);
  EXPECT_FALSE(FusedSwitch("ST_FUSED_SWITCH_TEST", true).enabled());
  unsetenv("ST_FUSED_SWITCH_TEST");
}

TEST(LmHeadDispatch, CpuAlwaysTakesTheReference) {
  EXPECT_FALSE(fused_cross_entropy_applies(at::randn({3, 40})));
}

}  // namespace
}  // namespace st
