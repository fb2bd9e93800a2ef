// GPU (label gpu): the row-wise log-softmax kernel (statistics, and the
// gradient written in place) against its ATen reference, fp32 and bf16,
// vocabularies from 1 to Salamandra's 256,000 with ignored rows and a
// misaligned base; then the LM head's per-row log-probs and summed NLL with
// the kernel, including a 2B-width head over the full vocabulary, against
// transformers' plain composition. Rule (kernel_test_util.h): at most 2x the
// reference's error against the fp64 truth. Skips cleanly without a CUDA device.
#include <ATen/Context.h>
#include <gtest/gtest.h>

#include "kernels/fused_switch.h"
#include "model/lm_head.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/op_cases.h"
#include "tests/model/lm_head_cases.h"

namespace st {
namespace {

using namespace kernel_test;

// {lse, log_prob, gradient} of `op` on a copy of `logits`.
template <typename Op>
std::vector<at::Tensor> run_rows(Op op, const at::Tensor& logits, const at::Tensor& targets, const at::Tensor& coeff) {
  at::Tensor work = logits.clone();
  RowLogSoftmax stats = op(work, targets, coeff);
  return {stats.lse, stats.target_log_prob, work};
}

TEST(FusedCrossEntropyGpu, RowsMatchReferenceWithinTwiceItsError) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  ScopedFusedKernels on(true);
  at::manual_seed(0);
  const char* names[] = {"lse", "log_prob", "gradient"};
  auto fused = [](at::Tensor& l, const at::Tensor& t, const at::Tensor& c) {
    EXPECT_TRUE(fused_cross_entropy_applies(l));
    return log_softmax_rows_with_grad_(l, t, c);
  };
  auto stats_only = [](at::Tensor& l, const at::Tensor& t, const at::Tensor&) { return log_softmax_rows(l, t); };
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    for (int64_t vocab : {1, 7, 1001, 32000, 256000}) {
      for (int64_t rows : {1, 5, 64}) {
        for (int64_t skip : {0, 1}) {
          at::Tensor flat = representable(6 * at::randn({rows * vocab + skip}), dtype, at::kCUDA);
          at::Tensor logits64 = flat.narrow(0, skip, rows * vocab).view({rows, vocab});
          at::Tensor targets = at::randint(0, vocab, {rows}, at::TensorOptions().dtype(at::kLong)).to(at::kCUDA);
          if (rows > 1) targets[rows / 2] = kIgnoreTarget;
          at::Tensor coeff = at::randn({rows}, at::TensorOptions().device(at::kCUDA));
          // The dtype tensor keeps the skip, so its base is misaligned.
          at::Tensor stored = flat.to(dtype).narrow(0, skip, rows * vocab).view({rows, vocab});
          auto truth = run_rows(log_softmax_rows_with_grad_reference_, logits64, targets, coeff.to(at::kDouble));
          auto ref = run_rows(log_softmax_rows_with_grad_reference_, stored, targets, coeff);
          auto ours = run_rows(fused, stored, targets, coeff);
          auto ours_stats = run_rows(stats_only, stored, targets, coeff);
          for (size_t i = 0; i < truth.size(); ++i)
            EXPECT_LE(max_error(ours[i], truth[i]), allowed_error(ref[i], truth[i]))
                << names[i] << " " << dtype << " " << rows << "x" << vocab << " skip " << skip;
          EXPECT_TRUE(at::equal(ours_stats[0], ours[0]) && at::equal(ours_stats[1], ours[1]));
          EXPECT_TRUE(at::equal(ours_stats[2], stored)) << "statistics alone must not write the logits";
          if (rows > 1) {  // the ignored row: exactly no log-prob and no gradient
            EXPECT_EQ(ours[1][rows / 2].item<double>(), 0.0);
            EXPECT_TRUE(at::equal(ours[2][rows / 2], at::zeros_like(ours[2][rows / 2])));
          }
        }
      }
    }
  }
}

// A NaN logit makes its row's statistics and gradient NaN, as in the
// reference (log_softmax), wherever it sits (op_cases.h: nan_logit_rows).
TEST(FusedCrossEntropyGpu, NanLogitsGiveNanRowsLikeTheReference) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  ScopedFusedKernels on(true);
  at::manual_seed(3);
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    for (int64_t vocab : {1001, 256000}) {
      at::Tensor logits = nan_logit_rows(vocab);
      at::Tensor stored = logits.to(dtype).to(at::kCUDA);
      at::Tensor targets = at::full({5}, vocab - 1, at::TensorOptions().dtype(at::kLong).device(at::kCUDA));
      at::Tensor coeff = at::ones({5}, at::TensorOptions().device(at::kCUDA));
      auto fused = [](at::Tensor& l, const at::Tensor& t, const at::Tensor& c) {
        return log_softmax_rows_with_grad_(l, t, c);
      };
      auto ref = run_rows(log_softmax_rows_with_grad_reference_, stored, targets, coeff);
      auto ours = run_rows(fused, stored, targets, coeff);
      for (size_t i = 0; i < ref.size(); ++i)
        EXPECT_TRUE(at::equal(at::isnan(ours[i]), at::isnan(ref[i]))) << i << " " << dtype << " vocab " << vocab;
      EXPECT_TRUE(at::isnan(ref[0].narrow(0, 0, 3)).all().item<bool>()) << "the reference's NaN rows";
      EXPECT_FALSE(at::isnan(ref[0].narrow(0, 3, 2)).any().item<bool>());
    }
  }
}

struct Shape {
  int64_t rows, width, vocab, chunk;
};

TEST(FusedCrossEntropyGpu, LmHeadMatchesTransformersWithinTwiceItsError) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  ScopedFusedKernels on(true);
  at::manual_seed(1);
  const std::vector<Shape> shapes = {{13, 33, 1000, 4},    {37, 2048, 32000, 16}, {37, 4096, 32000, 37},
                                     {21, 8192, 5003, 8},  {96, 2048, 256000, 40}};
  auto nll_plain = [](const at::Tensor& h, const at::Tensor& w, const at::Tensor& t) {
    return -plain_target_log_probs(h, w, t).sum();
  };
  for (at::ScalarType dtype : {at::kBFloat16, at::kFloat}) {
    for (const Shape& s : shapes) {
      LmHeadCase c = make_lm_head_case(s.rows, s.width, s.vocab, dtype, at::kCUDA);
      auto per_row = [&](auto& h, auto& w, auto& t) { return target_log_probs(h, w, t, s.chunk); };
      auto summed = [&](auto& h, auto& w, auto& t) { return summed_target_nll(h, w, t, s.chunk); };
      auto check = [&](const char* what, const auto& truth, const auto& plain, const auto& ours) {
        for (size_t i = 0; i < truth.size(); ++i)
          EXPECT_LE(max_error(ours[i], truth[i]), allowed_error(plain[i], truth[i]))
              << what << " " << kLmHeadNames[i] << " " << dtype << " " << s.rows << "x" << s.width << " vocab "
              << s.vocab;
      };
      check("log-probs", run_target_log_probs(plain_target_log_probs, c, at::kDouble),
            run_target_log_probs(plain_target_log_probs, c, dtype), run_target_log_probs(per_row, c, dtype));
      check("nll", run_summed_nll(nll_plain, c, at::kDouble), run_summed_nll(nll_plain, c, dtype),
            run_summed_nll(summed, c, dtype));
    }
  }
}

// The trainer's path with master weights: the weight gradient added into an
// fp32 accumulator (cuBLAS's widening addmm with the scale as alpha), for the
// summed NLL and for the per-row log-probs; and without masters, into the
// weight's bf16 .grad.
TEST(FusedCrossEntropyGpu, WeightGradientSinkWithinTwiceTheReferenceError) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  ScopedFusedKernels on(true);
  at::manual_seed(2);
  auto nll_plain = [](const at::Tensor& h, const at::Tensor& w, const at::Tensor& t) {
    return -plain_target_log_probs(h, w, t).sum();
  };
  for (const Shape& s : std::vector<Shape>{{37, 2048, 32000, 16}, {96, 2048, 256000, 40}}) {
    LmHeadCase c = make_lm_head_case(s.rows, s.width, s.vocab, at::kBFloat16, at::kCUDA);
    auto truth = run_summed_nll(nll_plain, c, at::kDouble);
    auto plain = run_summed_nll(nll_plain, c, at::kBFloat16);
    const auto zeros = [&](at::ScalarType dtype) { return at::zeros(c.weight.sizes(), c.weight.options().dtype(dtype)); };
    const SinkRun fp32 = run_summed_nll_into(c, at::kBFloat16, s.chunk, zeros(at::kFloat));
    EXPECT_FALSE(fp32.weight_grad_seen);
    EXPECT_LE(max_error(fp32.sink, truth[2]), allowed_error(plain[2], truth[2])) << s.rows << "x" << s.vocab;
    EXPECT_LE(max_error(fp32.dhidden, truth[1]), allowed_error(plain[1], truth[1])) << s.rows << "x" << s.vocab;

    // Without masters: the weight's own bf16 .grad as the sink (rounded once per chunk).
    const SinkRun bf16 = run_summed_nll_into(c, at::kBFloat16, s.chunk, zeros(at::kBFloat16));
    EXPECT_FALSE(bf16.weight_grad_seen);
    EXPECT_LE(max_error(bf16.sink, truth[2]), allowed_error(plain[2], truth[2])) << "bf16 sink " << s.rows << "x"
                                                                                 << s.vocab;

    // The per-row log-probs (DPO's path) with the fp32 sink, any upstream.
    auto rows_truth = run_target_log_probs(plain_target_log_probs, c, at::kDouble);
    auto rows_plain = run_target_log_probs(plain_target_log_probs, c, at::kBFloat16);
    const SinkRun rows = run_target_log_probs_into(c, at::kBFloat16, s.chunk, zeros(at::kFloat));
    EXPECT_FALSE(rows.weight_grad_seen);
    EXPECT_LE(max_error(rows.sink, rows_truth[2]), allowed_error(rows_plain[2], rows_truth[2]))
        << "per-row " << s.rows << "x" << s.vocab;
    EXPECT_LE(max_error(rows.dhidden, rows_truth[1]), allowed_error(rows_plain[1], rows_truth[1]))
        << "per-row " << s.rows << "x" << s.vocab;
  }
}

}  // namespace
}  // namespace st
