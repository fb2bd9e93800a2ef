#include "train/step.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "train/gradient_hooks.h"

namespace st::train {

void agree_metric_names(ProcessGroup& group, std::map<std::string, double>& metric_sums) {
  if (group.world_size() == 1) return;
  std::string names;
  for (const auto& [name, value] : metric_sums) names += name + '\n';
  for (const std::string& theirs : group.all_gather_strings(names))
    for (size_t at = 0, end; (end = theirs.find('\n', at)) != std::string::npos; at = end + 1)
      metric_sums.emplace(theirs.substr(at, end - at), 0.0);
}

StepResult optimizer_step(AdamW& optimizer, ProcessGroup& group, const StepInput& input, double lr,
                          double max_grad_norm) {
  StepResult result;
  std::vector<double> counts{static_cast<double>(input.items)};
  for (const auto& [name, value] : input.counts) counts.push_back(value);
  counts = group.sum_values(counts);
  const double items = counts[0];
  StepScale scale;
  size_t c = 1;
  for (const auto& [name, value] : input.counts) scale.totals[name] = counts[c++];
  scale.factor = items > 0 ? 1.0 / items : 0.0;
  if (!input.lm_head_weight.empty()) scale.lm_head_accumulator = optimizer.gradient_accumulator(input.lm_head_weight);

  // Several processes sum the gradients: with overlap, each bucket is sent
  // during the last micro-batch's backward as soon as its gradients are
  // final (the LM head's, which its sink adds outside autograd, at the end).
  const bool collective = group.collective() && !input.sharded;
  std::unique_ptr<GradientSync> sync;
  std::vector<size_t> late;
  if (collective) {
    const NamedTensors parameters = optimizer.parameters();
    for (size_t i = 0; i < parameters.size(); ++i)
      if (parameters[i].first == input.lm_head_weight) late.push_back(i);
    sync = group.start_gradient_sync(optimizer.gradients(), late);
  }
  double sum = 0;
  std::map<std::string, double> metric_sums;
  for (int64_t i = 0; i < input.micro_batches; ++i) {
    const MicroBatchLoss loss = input.loss(i, scale);
    // A filler runs the same forward and backward as a real micro-batch,
    // adding nothing. Under fsdp a micro-batch without a forward would leave
    // this process a gather short: such micro-batches are fillers instead.
    const bool filler = !input.filler.empty() && input.filler[static_cast<size_t>(i)];
    ST_CHECK(loss.summed.defined() || !input.sharded, "a fully sharded micro-batch without items");
    if (!loss.summed.defined()) continue;
    {
      std::optional<GradientHooks> hooks;
      if (collective && input.overlap && i == input.micro_batches - 1)
        hooks.emplace(optimizer, *sync, late);
      // Divided, not multiplied by the factor: the same rounding as before the
      // step owned the scale (resumed runs and the demo stay bit-identical).
      (filler ? loss.summed * 0.0 : loss.summed / items).backward();
    }
    if (input.sharded) input.sharded->reduce_outside_gradients();
    optimizer.accumulate_gradients();
    if (filler) continue;
    sum += loss.summed.item<double>();
    for (const auto& [name, value] : loss.metric_sums) metric_sums[name] += value;
  }
  // Every process sends the same buckets in the same order before any other
  // collective (one whose last micro-batch had no items sends them all here).
  if (collective) {
    const auto start = std::chrono::steady_clock::now();
    result.buckets_in_backward = static_cast<int64_t>(sync->finish());
    result.all_reduce_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  // Everything else that crosses processes: the loss and metric sums, the
  // finite flag. A process whose micro-batches held no items has no
  // metrics: the names are agreed first.
  agree_metric_names(group, metric_sums);
  std::vector<double> sums{sum};
  for (const auto& [name, value] : metric_sums) sums.push_back(value);
  sums = group.sum_values(sums);
  result.loss = items > 0 ? sums[0] / items : 0.0;
  size_t k = 1;
  for (const auto& [name, value] : metric_sums) result.metrics[name] = items > 0 ? sums[k++] / items : 0.0;
  result.grad_norm = optimizer.gradient_norm();
  if (input.sharded) {
    // The norm of the shards' norms: each process holds a disjoint part.
    result.grad_norm = std::sqrt(group.sum_values({result.grad_norm * result.grad_norm})[0]);
  }
  result.finite = group.all_true(std::isfinite(result.loss) && std::isfinite(result.grad_norm));
  if (result.finite) {
    // As torch.nn.utils.clip_grad_norm_: scale by max / (norm + 1e-6) when below 1.
    if (max_grad_norm > 0) {
      const double coef = max_grad_norm / (result.grad_norm + 1e-6);
      if (coef < 1.0) optimizer.scale_gradients(coef);
    }
    optimizer.step(lr);
  }
  optimizer.zero_gradients();
  // The whole weights (the outside ones, kept through the step) are stale.
  if (input.sharded) input.sharded->release_all();
  return result;
}

}  // namespace st::train
