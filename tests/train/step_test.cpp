// One optimizer step: N micro-batches equal one batch of the same rows
// (fp64, so only summation order separates them); clipping and AdamW match
// their formulas; a non-finite loss applies nothing.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "datasets/batching.h"
#include "model/llama.h"
#include "tests/common/owned_sequences.h"
#include "tests/common/test_model.h"
#include "train/batch_tensors.h"
#include "train/schedule.h"
#include "train/step.h"

namespace st {
namespace {

using Rows = test::OwnedSequences;

Rows random_rows() {
  Rows rows;
  datasets::Shuffler rng(5);
  for (uint32_t length : {9u, 4u, 13u, 7u}) {
    rows.ids.emplace_back();
    rows.masks.emplace_back();
    for (uint32_t t = 0; t < length; ++t) {
      rows.ids.back().push_back(static_cast<uint32_t>(rng.below(97)));
      rows.masks.back().push_back(t > 1 && rng.below(3) != 0);  // uneven trained counts per row
    }
  }
  return rows;
}

// How after_one_step runs its step.
struct StepCase {
  // The LM head's weight gradient goes straight into the optimizer's
  // accumulator (here, without masters, the weight's own .grad), as the
  // trainer does.
  bool sink = false;
  // The LM head tied to the embedding (both gradients meet in one .grad).
  bool tied = false;
  // The loss built on the per-row log-probs (DPO's path, the sink filled in
  // backward) instead of the summed NLL.
  bool per_row = false;
  train::ProcessGroup* group = nullptr;  // the processes; one when null
  double* grad_norm = nullptr;           // receives the step's gradient norm
};

// The loss of one micro-batch as -sum of its per-row target log-probs.
at::Tensor per_row_nll(const LlamaModel& model, const train::BatchTensors& t, const WeightGradSink& sink) {
  return -target_log_probs(train::trained_hidden_states(model, t), model.lm_head_weight(), t.targets, 5, sink).sum();
}

// Parameters after one step over `split` micro-batches of the 4 rows.
std::vector<at::Tensor> after_one_step(const std::vector<std::vector<uint32_t>>& split, double* loss,
                                       const StepCase& how = {}) {
  ModelConfig config = test::small_model_config(97);
  config.tie_word_embeddings = how.tied;
  LlamaModel model(config, at::TensorOptions().dtype(at::kDouble));
  model.init_random(8);
  model.require_grads();
  train::AdamW optimizer(model.trainable_parameters(), {.lr = 1e-2, .weight_decay = 0.1}, false);
  const Rows rows = random_rows();
  const datasets::BatchOptions options{.mode = datasets::BatchMode::kPadded, .row_tokens = 16, .rows = 4};
  std::vector<datasets::Batch> batches;
  int64_t trained = 0;
  for (const auto& micro : split) {
    datasets::BatchLayout layout;
    for (uint32_t r : micro) layout.rows.push_back({r});
    batches.push_back(datasets::materialize(layout, rows.view(), options, 0));
    trained += static_cast<int64_t>(batches.back().trained_tokens());
  }
  train::StepInput input{static_cast<int64_t>(batches.size()), trained,
                         [&](int64_t i, const train::StepScale& scale) {
                           if (how.sink && !scale.lm_head_accumulator.defined())
                             ADD_FAILURE() << "no accumulator for the LM head";
                           const train::BatchTensors t = train::to_tensors(batches[i], at::kCPU);
                           if (how.per_row)
                             return train::MicroBatchLoss{
                                 per_row_nll(model, t, how.sink ? scale.per_row_sink() : WeightGradSink{}), {}};
                           return train::MicroBatchLoss{
                               train::summed_nll(model, t, 5, how.sink ? scale.summed_loss_sink() : WeightGradSink{}),
                               {}};
                         },
                         model.lm_head_weight_name()};
  train::SingleProcess single;
  const train::StepResult result =
      train::optimizer_step(optimizer, how.group ? *how.group : single, input, 1e-2, /*max_grad_norm=*/0.5);
  *loss = result.loss;
  if (how.grad_norm) *how.grad_norm = result.grad_norm;
  std::vector<at::Tensor> out;
  for (auto& [name, p] : model.checkpoint_tensors()) out.push_back(p.detach().clone());
  return out;
}

// DPO's path through the step: a loss built on the per-row log-probs, with
// the sink filled in backward (StepScale::per_row_sink), gives the step
// without a sink; and both give the summed NLL's step.
TEST(OptimizerStep, PerRowSinkThroughTheStepEqualsAutogradsGradient) {
  for (bool tied : {false, true}) {
    double summed_loss, plain_loss, sink_loss;
    const auto summed = after_one_step({{0, 1}, {2, 3}}, &summed_loss, {.tied = tied});
    const auto plain = after_one_step({{0, 1}, {2, 3}}, &plain_loss, {.tied = tied, .per_row = true});
    const auto sunk = after_one_step({{0, 1}, {2, 3}}, &sink_loss, {.sink = true, .tied = tied, .per_row = true});
    EXPECT_NEAR(plain_loss, summed_loss, 1e-12 * summed_loss);
    EXPECT_NEAR(sink_loss, plain_loss, 1e-12 * plain_loss);
    for (size_t i = 0; i < plain.size(); ++i) {
      EXPECT_TRUE(at::allclose(plain[i], summed[i], 1e-10, 1e-12)) << "parameter " << i << " tied " << tied;
      EXPECT_TRUE(at::allclose(sunk[i], plain[i], 1e-10, 1e-12)) << "parameter " << i << " tied " << tied;
    }
  }
}

// Stands for `copies` processes that hold the same micro-batches: every sum
// over processes is `copies` times this one's; `others_finite` false makes
// another process report a non-finite step.
class MirroredProcesses : public train::ProcessGroup {
 public:
  explicit MirroredProcesses(int copies, bool others_finite = true) : copies_(copies), others_finite_(others_finite) {}
  int rank() const override { return 0; }
  int world_size() const override { return copies_; }
  void all_reduce_sum(const std::vector<at::Tensor>& tensors) override {
    for (const at::Tensor& t : tensors) t.mul_(copies_);
  }
  std::vector<double> sum_values(std::vector<double> values) override {
    for (double& v : values) v *= copies_;
    return values;
  }
  void all_gather(const at::Tensor& whole, const at::Tensor& shard) override {
    for (int r = 0; r < copies_; ++r) whole.narrow(0, r * shard.numel(), shard.numel()).copy_(shard);
  }
  void reduce_scatter_sum(const at::Tensor& shard, const at::Tensor& whole) override {
    shard.copy_(whole.narrow(0, 0, shard.numel())).mul_(copies_);
  }
  bool all_true(bool value) override { return value && others_finite_; }
  std::string description() const override { return "mirrored processes"; }
  std::vector<std::string> all_gather_strings(const std::string& text) override {
    return std::vector<std::string>(static_cast<size_t>(copies_), text);
  }
  void barrier() override {}
  void announce(const std::string&) override {}
  void wait_for_rank0(const std::string&) override {}
  void report_failure(const std::string&) override {}
  std::string peer_failure() override { return ""; }

 private:
  int copies_;
  bool others_finite_;
};

TEST(OptimizerStep, MicroBatchesEqualOneBatchOfTheSameRows) {
  double whole_loss, split_loss, uneven_loss;
  const auto whole = after_one_step({{0, 1, 2, 3}}, &whole_loss);
  const auto split = after_one_step({{0, 1}, {2, 3}}, &split_loss);
  const auto uneven = after_one_step({{2}, {0, 3, 1}}, &uneven_loss);
  EXPECT_NEAR(split_loss, whole_loss, 1e-12 * whole_loss);
  EXPECT_NEAR(uneven_loss, whole_loss, 1e-12 * whole_loss);
  for (size_t i = 0; i < whole.size(); ++i) {
    EXPECT_TRUE(at::allclose(split[i], whole[i], 1e-10, 1e-12)) << "parameter " << i;
    EXPECT_TRUE(at::allclose(uneven[i], whole[i], 1e-10, 1e-12)) << "parameter " << i;
  }
}

TEST(OptimizerStep, LmHeadSinkIntoTheGradEqualsAutogradsGradient) {
  for (bool tied : {false, true}) {
    double plain_loss, sink_loss;
    const auto plain = after_one_step({{0, 1}, {2, 3}}, &plain_loss, {.tied = tied});
    const auto sunk = after_one_step({{0, 1}, {2, 3}}, &sink_loss, {.sink = true, .tied = tied});
    EXPECT_NEAR(sink_loss, plain_loss, 1e-12 * plain_loss);
    for (size_t i = 0; i < plain.size(); ++i)
      EXPECT_TRUE(at::allclose(sunk[i], plain[i], 1e-10, 1e-12)) << "parameter " << i << " tied " << tied;
  }
}

// The step reduces through its process group: the normalizer (so the scale
// and the LM head's sink), the loss, the gradients before their norm, the
// finite flag. Two identical processes give one process's update.
TEST(OptimizerStep, ReducesTheNormalizerGradientsAndFiniteFlagThroughTheGroup) {
  for (bool sink : {false, true}) {
    double single_loss, mirrored_loss, stopped_loss, single_norm, mirrored_norm;
    const auto single = after_one_step({{0, 1}, {2, 3}}, &single_loss, {.sink = sink, .grad_norm = &single_norm});
    MirroredProcesses two(2);
    const auto mirrored =
        after_one_step({{0, 1}, {2, 3}}, &mirrored_loss, {.sink = sink, .group = &two, .grad_norm = &mirrored_norm});
    EXPECT_NEAR(mirrored_loss, single_loss, 1e-12 * single_loss);
    // Adam's update hardly sees a gradient's scale; its norm does.
    EXPECT_NEAR(mirrored_norm, single_norm, 1e-12 * single_norm);
    for (size_t i = 0; i < single.size(); ++i)
      EXPECT_TRUE(at::allclose(mirrored[i], single[i], 1e-10, 1e-12)) << "parameter " << i << " sink " << sink;
    // Another process's non-finite step applies nothing here either.
    MirroredProcesses stopped(2, /*others_finite=*/false);
    const auto unchanged = after_one_step({{0, 1}, {2, 3}}, &stopped_loss, {.sink = sink, .group = &stopped});
    LlamaModel initial(test::small_model_config(97), at::TensorOptions().dtype(at::kDouble));
    initial.init_random(8);
    const NamedTensors start = initial.checkpoint_tensors();
    for (size_t i = 0; i < start.size(); ++i) EXPECT_TRUE(at::equal(unchanged[i], start[i].second)) << start[i].first;
  }
}

// Named metrics come back summed over the step and divided by its items.
TEST(OptimizerStep, MetricsAreMeansOverTheStepsItems) {
  at::Tensor w = at::tensor(std::vector<float>{1.0f}).requires_grad_(true);
  train::AdamW optimizer({{"w", w}}, {.lr = 0.1}, false);
  train::StepInput input{2, 4, [&](int64_t i, const train::StepScale& scale) {
                           EXPECT_DOUBLE_EQ(scale.factor, 0.25);
                           return train::MicroBatchLoss{(w * w).sum(), {{"rewards/chosen", 1.0 + i}, {"n", 2.0}}};
                         }};
  train::SingleProcess group;
  const train::StepResult r = train::optimizer_step(optimizer, group, input, 0.1, 0.0);
  EXPECT_DOUBLE_EQ(r.loss, 0.5);  // (1 + 1) / 4
  EXPECT_DOUBLE_EQ(r.metrics.at("rewards/chosen"), 0.75);  // (1 + 2) / 4
  EXPECT_DOUBLE_EQ(r.metrics.at("n"), 1.0);
}

TEST(OptimizerStep, ClippingAndAdamWFollowTheirFormulas) {
  // One parameter, gradient g = 2 * w from loss sum(w^2): norm 2 * |w|.
  at::Tensor w = at::tensor(std::vector<float>{3.0f, 4.0f}).requires_grad_(true);
  train::AdamW optimizer({{"w", w}}, {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8}, false);
  train::StepInput input{1, 1, [&](int64_t, const train::StepScale&) {
                           return train::MicroBatchLoss{(w * w).sum(), {}};
                         }};
  train::SingleProcess group;
  const train::StepResult r = train::optimizer_step(optimizer, group, input, 0.1, /*max_grad_norm=*/1.0);
  EXPECT_NEAR(r.grad_norm, 10.0, 1e-5);
  // Clipped gradient g' = g / (10 + 1e-6); Adam's first step moves each
  // weight by lr * m_hat / (sqrt(v_hat) + eps) = lr * sign(g') (nearly).
  const float g0 = 6.0f / (10.0f + 1e-6f);
  EXPECT_NEAR(w[0].item<float>(), 3.0f - 0.1f * g0 / (std::fabs(g0) + 1e-8f), 1e-6);
  EXPECT_NEAR(w[1].item<float>(), 4.0f - 0.1f, 1e-6);
}

TEST(OptimizerStep, NonFiniteLossAppliesNothing) {
  at::Tensor w = at::tensor(std::vector<float>{1.0f}).requires_grad_(true);
  train::AdamW optimizer({{"w", w}}, {.lr = 0.1}, false);
  train::StepInput input{1, 1, [&](int64_t, const train::StepScale&) {
                           return train::MicroBatchLoss{(w * std::nan("")).sum(), {}};
                         }};
  train::SingleProcess group;
  const train::StepResult r = train::optimizer_step(optimizer, group, input, 0.1, 1.0);
  EXPECT_FALSE(r.finite);
  EXPECT_EQ(w.item<float>(), 1.0f);
  EXPECT_EQ(optimizer.steps(), 0);
}

TEST(Schedule, MatchesTransformersDefinitions) {
  train::Schedule cosine{train::ScheduleKind::kCosine, 10, 110, 0.1};
  EXPECT_DOUBLE_EQ(cosine.factor(0), 0.0);
  EXPECT_DOUBLE_EQ(cosine.factor(5), 0.5);
  EXPECT_DOUBLE_EQ(cosine.factor(10), 1.0);
  EXPECT_NEAR(cosine.factor(60), 0.1 + 0.9 * 0.5, 1e-12);
  EXPECT_NEAR(cosine.factor(110), 0.1, 1e-12);
  train::Schedule linear{train::ScheduleKind::kLinear, 0, 100, 0.0};
  EXPECT_DOUBLE_EQ(linear.factor(25), 0.75);
  train::Schedule constant{train::ScheduleKind::kConstant, 4, 100, 0.0};
  EXPECT_DOUBLE_EQ(constant.factor(2), 0.5);
  EXPECT_DOUBLE_EQ(constant.factor(50), 1.0);
}

}  // namespace
}  // namespace st
