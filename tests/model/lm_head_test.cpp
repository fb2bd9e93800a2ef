// CPU (unit): the LM head's chunked log-probs and summed NLL (model/lm_head.h)
// against plain autograd (linear, log_softmax, gather) in fp64: values and
// the gradients of hidden and weight, at odd sizes and the 2B/7B/40B hidden
// widths, with ignored rows and chunks that do not divide the rows; in fp32
// and bf16, at most 2x the plain composition's own error; the weight-
// gradient sinks and the scale they demand.
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "common/error.h"
#include "model/lm_head.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/model/lm_head_cases.h"

namespace st {
namespace {

using namespace kernel_test;

auto plain_nll = [](const at::Tensor& h, const at::Tensor& w, const at::Tensor& t) {
  return -plain_target_log_probs(h, w, t).sum();
};

// Hidden widths of every preset against a small vocabulary, a large-ish
// vocabulary against a small width; chunk sizes 1, 7 and all rows.
struct Shape {
  int64_t rows, width, vocab;
};
const std::vector<Shape> kShapes = {{13, 1, 7}, {13, 33, 1000}, {11, 2048, 61}, {11, 4096, 61}, {9, 8192, 37},
                                    {6, 64, 32001}};

// Both entry points (per-row log-probs, summed NLL) for chunks of 1, 7 and all rows.
TEST(LmHead, MatchesAutogradInFp64) {
  at::manual_seed(22);
  for (const Shape& s : kShapes) {
    LmHeadCase c = make_lm_head_case(s.rows, s.width, s.vocab, at::kDouble, at::kCPU);
    const auto truth_rows = run_target_log_probs(plain_target_log_probs, c, at::kDouble);
    const auto truth_nll = run_summed_nll(plain_nll, c, at::kDouble);
    for (int64_t chunk : {int64_t(1), int64_t(7), s.rows}) {
      auto per_row = [&](auto& h, auto& w, auto& t) { return target_log_probs(h, w, t, chunk); };
      auto summed = [&](auto& h, auto& w, auto& t) { return summed_target_nll(h, w, t, chunk); };
      const std::pair<std::vector<at::Tensor>, std::vector<at::Tensor>> results[] = {
          {run_target_log_probs(per_row, c, at::kDouble), truth_rows},
          {run_summed_nll(summed, c, at::kDouble), truth_nll}};
      for (const auto& [ours, truth] : results)
        for (size_t i = 0; i < truth.size(); ++i) {
          const double scale = std::max(1.0, truth[i].abs().max().item<double>());
          EXPECT_LE(max_error(ours[i], truth[i]), 1e-12 * scale) << kLmHeadNames[i] << " " << s.rows << "x"
                                                                  << s.width << " vocab " << s.vocab << " chunk "
                                                                  << chunk << (&truth == &truth_nll ? " nll" : "");
        }
    }
  }
}

TEST(LmHead, LowPrecisionWithinTwiceThePlainError) {
  at::manual_seed(24);
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    for (const Shape& s : kShapes) {
      LmHeadCase c = make_lm_head_case(s.rows, s.width, s.vocab, dtype, at::kCPU);
      auto per_row = [](auto& h, auto& w, auto& t) { return target_log_probs(h, w, t, 4); };
      auto summed = [](auto& h, auto& w, auto& t) { return summed_target_nll(h, w, t, 4); };
      auto truth = run_target_log_probs(plain_target_log_probs, c, at::kDouble);
      auto plain = run_target_log_probs(plain_target_log_probs, c, dtype);
      auto ours = run_target_log_probs(per_row, c, dtype);
      auto nll_truth = run_summed_nll(plain_nll, c, at::kDouble);
      auto nll_plain = run_summed_nll(plain_nll, c, dtype);
      auto nll_ours = run_summed_nll(summed, c, dtype);
      for (size_t i = 0; i < truth.size(); ++i) {
        EXPECT_LE(max_error(ours[i], truth[i]), allowed_error(plain[i], truth[i]))
            << "log-probs " << kLmHeadNames[i] << " " << dtype << " " << s.rows << "x" << s.width << " vocab "
            << s.vocab;
        EXPECT_LE(max_error(nll_ours[i], nll_truth[i]), allowed_error(nll_plain[i], nll_truth[i]))
            << "nll " << kLmHeadNames[i] << " " << dtype << " " << s.rows << "x" << s.width << " vocab " << s.vocab;
      }
    }
  }
}

TEST(LmHead, NoGradientWorkWithoutGradMode) {
  LmHeadCase c = make_lm_head_case(5, 16, 40, at::kFloat, at::kCPU);
  at::Tensor h = c.hidden.to(at::kFloat).requires_grad_(true), w = c.weight.to(at::kFloat);
  at::NoGradGuard no_grad;
  at::Tensor nll = summed_target_nll(h, w, c.targets, 2);
  EXPECT_FALSE(nll.requires_grad());
  EXPECT_NEAR(nll.item<double>(), -plain_target_log_probs(h, w, c.targets).sum().item<double>(), 1e-4);
}

// DPO's path with master weights: the per-row log-probs' weight gradient,
// for any upstream gradient, added into the optimizer's accumulator in backward.
TEST(LmHead, PerRowSinkReceivesTheWeightGradient) {
  at::manual_seed(26);
  for (at::ScalarType dtype : {at::kDouble, at::kBFloat16}) {
    LmHeadCase c = make_lm_head_case(11, 2048, 61, dtype, at::kCPU);
    const double scale = 0.5;
    auto truth = run_target_log_probs(plain_target_log_probs, c, at::kDouble);
    auto plain = run_target_log_probs(plain_target_log_probs, c, dtype);
    at::Tensor h = leaf(c.hidden, dtype), w = leaf(c.weight, dtype);
    const at::ScalarType acc = dtype == at::kDouble ? at::kDouble : at::kFloat;
    at::Tensor accumulator = at::ones(w.sizes(), at::TensorOptions().dtype(acc));  // adds, never overwrites
    at::Tensor log_probs = target_log_probs(h, w, c.targets, 4, {accumulator, scale});
    log_probs.backward(c.upstream.to(log_probs.scalar_type()));
    EXPECT_FALSE(w.grad().defined()) << "autograd must not also produce the weight gradient";
    at::Tensor received = (accumulator - 1) / scale;
    const double exact = 1e-12 * std::max(1.0, truth[2].abs().max().item<double>());
    EXPECT_LE(max_error(received, truth[2]), dtype == at::kDouble ? exact : allowed_error(plain[2], truth[2]));
    EXPECT_LE(max_error(h.grad(), truth[1]), dtype == at::kDouble ? 1e-12 : allowed_error(plain[1], truth[1]));
  }
  at::Tensor h = at::randn({3, 8}), w = at::randn({10, 8});
  EXPECT_THROW(target_log_probs(h, w, at::tensor({0, 1, 2}, at::kLong), 2, {at::zeros({10, 7}), 1.0}), Error);
}

// A frozen weight (LoRA's case) skips the weight-gradient products; the
// hidden gradient must still be plain autograd's.
TEST(LmHead, FrozenWeightStillGivesTheHiddenGradient) {
  LmHeadCase c = make_lm_head_case(5, 16, 40, at::kDouble, at::kCPU);
  at::Tensor h = leaf(c.hidden, at::kDouble), w = c.weight.clone();
  const at::Tensor truth = torch::autograd::grad({-plain_target_log_probs(h, w, c.targets).sum()}, {h})[0];
  for (at::Tensor out : {summed_target_nll(h, w, c.targets, 2), -target_log_probs(h, w, c.targets, 2).sum()})
    EXPECT_LE(max_error(torch::autograd::grad({out}, {h})[0], truth), 1e-12);
}

// The sink receives scale x the weight gradient autograd would have
// returned, in fp32, and autograd returns none for the weight.
TEST(LmHead, WeightGradientSinkReceivesTheScaledGradient) {
  at::manual_seed(25);
  for (at::ScalarType dtype : {at::kDouble, at::kBFloat16}) {
    LmHeadCase c = make_lm_head_case(11, 2048, 61, dtype, at::kCPU);
    const double scale = 0.125;
    auto truth = run_summed_nll(plain_nll, c, at::kDouble);  // upstream |c.upstream[0]|
    auto plain = run_summed_nll(plain_nll, c, dtype);
    const at::ScalarType acc = dtype == at::kDouble ? at::kDouble : at::kFloat;
    const at::Tensor ones = at::ones(c.weight.sizes(), at::TensorOptions().dtype(acc));  // adds, never overwrites
    const SinkRun run = run_summed_nll_into(c, dtype, 4, ones, scale);
    EXPECT_FALSE(run.weight_grad_seen) << "autograd must not also produce the weight gradient";
    at::Tensor received = (run.sink - 1) / scale;
    if (dtype == at::kDouble) {
      EXPECT_LE(max_error(received, truth[2]), 1e-12 * std::max(1.0, truth[2].abs().max().item<double>()));
    } else {
      // The sink's fp32 sum is more accurate than the plain bf16 gradient, never less.
      EXPECT_LE(max_error(received, truth[2]), allowed_error(plain[2], truth[2]));
    }
    EXPECT_LE(max_error(run.dhidden, truth[1]), dtype == at::kDouble ? 1e-12 : allowed_error(plain[1], truth[1]));
  }
  at::Tensor h = at::randn({3, 8}), w = at::randn({10, 8});
  EXPECT_THROW(summed_target_nll(h, w, at::tensor({0, 1, 2}, at::kLong), 2, {at::zeros({10, 7}), 1.0}), Error);
  EXPECT_THROW(summed_target_nll(h, w, at::tensor({0, 1, 2}, at::kLong), 2, {at::zeros({10, 8}, at::kDouble), 1.0}),
               Error);
}

// The sink is filled in forward at the scale the caller promises; a backward
// that brings another upstream factor (loss scaling, a loss built on top) is
// refused, never a silently wrong weight gradient.
TEST(LmHead, SinkRefusesAnUpstreamGradientOtherThanItsScale) {
  at::manual_seed(26);
  for (at::ScalarType dtype : {at::kDouble, at::kFloat}) {
    at::Tensor h = at::randn({6, 8}, dtype).requires_grad_(), w = at::randn({10, 8}, dtype).requires_grad_();
    const at::Tensor targets = at::tensor({0, 1, 2, 3, 4, 5}, at::kLong);
    at::Tensor sink = at::zeros({10, 8}, dtype);
    (summed_target_nll(h, w, targets, 4, {sink, 0.25}) * 0.25).backward();  // the promised scale: accepted
    EXPECT_GT(sink.abs().max().item<double>(), 0.0);
    at::Tensor mismatched = summed_target_nll(h, w, targets, 4, {sink, 0.25}) * 0.5;
    EXPECT_THROW(mismatched.backward(), Error) << dtype;
  }
}

// Without master weights the sink is the weight's own bf16 .grad: each
// chunk's product is added in fp32 and rounded into it, once per chunk.
// Over several chunks that must stay within 2x the error of the plain bf16
// composition (transformers' path). (That a sink adds rather than
// overwrites is the fp32 test's.)
TEST(LmHead, LowPrecisionSinkWithinTwiceTheCompositionsError) {
  at::manual_seed(26);
  for (const Shape& s : std::vector<Shape>{{13, 33, 1000}, {11, 2048, 61}, {40, 64, 3001}}) {
    LmHeadCase c = make_lm_head_case(s.rows, s.width, s.vocab, at::kBFloat16, at::kCPU);
    auto truth = run_summed_nll(plain_nll, c, at::kDouble);
    auto plain = run_summed_nll(plain_nll, c, at::kBFloat16);
    auto rows_truth = run_target_log_probs(plain_target_log_probs, c, at::kDouble);
    auto rows_plain = run_target_log_probs(plain_target_log_probs, c, at::kBFloat16);
    for (int64_t chunk : {4, 16}) {
      const auto bf16_grad = [&] { return at::zeros(c.weight.sizes(), at::TensorOptions().dtype(at::kBFloat16)); };
      const SinkRun nll = run_summed_nll_into(c, at::kBFloat16, chunk, bf16_grad());
      EXPECT_FALSE(nll.weight_grad_seen);
      EXPECT_LE(max_error(nll.sink, truth[2]), allowed_error(plain[2], truth[2])) << s.rows << "x" << s.vocab;
      EXPECT_LE(max_error(nll.dhidden, truth[1]), allowed_error(plain[1], truth[1])) << s.rows << "x" << s.vocab;
      // The per-row log-probs (DPO's path), any upstream, into a bf16 .grad too.
      const SinkRun rows = run_target_log_probs_into(c, at::kBFloat16, chunk, bf16_grad());
      EXPECT_FALSE(rows.weight_grad_seen);
      EXPECT_LE(max_error(rows.sink, rows_truth[2]), allowed_error(rows_plain[2], rows_truth[2]))
          << "per-row " << s.rows << "x" << s.vocab;
    }
  }
  at::Tensor h = at::randn({3, 8}).to(at::kBFloat16), w = at::randn({10, 8}).to(at::kBFloat16);
  EXPECT_THROW(summed_target_nll(h, w, at::tensor({0, 1, 2}, at::kLong), 2, {at::zeros({10, 8}, at::kHalf), 1.0}),
               Error);
}

TEST(LmHead, RejectsBadInputWithItsName) {
  at::Tensor h = at::randn({4, 8}), w = at::randn({10, 8});
  EXPECT_THROW(summed_target_nll(h, w, at::tensor({0, 1, 10, 2}, at::kLong), 4), Error);
  EXPECT_THROW(target_log_probs(h, w, at::tensor({0, 1, -5, 2}, at::kLong), 4), Error);
  EXPECT_THROW(target_log_probs(h, at::randn({10, 7}), at::tensor({0, 1, 2, 3}, at::kLong), 4), Error);
  EXPECT_THROW(summed_target_nll(h, w.to(at::kDouble), at::tensor({0, 1, 2, 3}, at::kLong), 4), Error);
  EXPECT_THROW(summed_target_nll(h, w, at::tensor({0, 1, 2, 3}, at::kLong), 0), Error);
  try {
    summed_target_nll(h, w, at::tensor({0, 1, 10, 2}, at::kLong), 4);
    ADD_FAILURE() << "a target id past the vocabulary must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("summed_target_nll"), std::string::npos) << e.what();
  }
}

// The summed NLL's gradients are computed in forward and serve one backward.
TEST(LmHead, SummedNllRefusesASecondAndADoubleBackward) {
  LmHeadCase c = make_lm_head_case(5, 16, 40, at::kFloat, at::kCPU);
  at::Tensor h = c.hidden.to(at::kFloat).requires_grad_(true), w = c.weight.to(at::kFloat).requires_grad_(true);
  at::Tensor nll = summed_target_nll(h, w, c.targets, 2);
  torch::autograd::grad({nll}, {h, w}, {}, /*retain_graph=*/true);
  EXPECT_THROW(torch::autograd::grad({nll}, {h, w}), Error);
  at::Tensor again = summed_target_nll(h, w, c.targets, 2);
  at::Tensor upstream = at::ones({}, again.options()).requires_grad_(true);
  EXPECT_THROW(torch::autograd::grad({again}, {h}, {upstream}, /*retain_graph=*/true, /*create_graph=*/true), Error);
}


}  // namespace
}  // namespace st
