// One optimizer step over accumulated micro-batches, shared by every recipe
// (SFT now; DPO supplies another loss callback).
//
// Each micro-batch's loss is a SUM over its items (trained tokens, pairs);
// the step owns the scale that turns sums into the mean over the whole
// step's items (across processes): it divides every loss by those items
// before backward and hands the same scale to the callback, for the LM head's
// weight-gradient sink, which adds its gradient during forward and so must
// know the factor backward will bring. N micro-batches thus produce exactly
// the gradient of one batch of the same items, whatever their sizes.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "model/lm_head.h"
#include "train/optimizer.h"
#include "train/process_group.h"
#include "train/sharded_model.h"

namespace st::train {

/// The step's gradient scale, as a loss callback sees it.
struct StepScale {
  /// 1 / the items of the whole step over all processes (0 for a step
  /// without items): each summed loss is divided by those items before
  /// backward, so this is the upstream gradient it receives.
  double factor = 0;
  /// The LM head weight's gradient accumulator (undefined: none; the
  /// weight's gradient then goes through autograd).
  at::Tensor lm_head_accumulator;
  /// The recipe's counts (RecipeHooks::counts) summed over the whole step
  /// and every process: normalizers other than the items (DPO's sft term
  /// is per chosen token).
  std::map<std::string, double> totals;
  /// The eval split's batch (no gradients): a recipe that keys data by
  /// sample (DPO's precomputed reference) looks it up in that split.
  bool evaluation = false;

  /// The sink for a loss that is the summed NLL itself (summed_target_nll):
  /// filled in forward at `factor`.
  WeightGradSink summed_loss_sink() const { return {lm_head_accumulator, factor}; }
  /// The sink for per-row log-probs (target_log_probs) under a loss built
  /// on top of them (DPO): filled in backward, where the upstream gradient
  /// already carries `factor`.
  WeightGradSink per_row_sink() const { return {lm_head_accumulator, 1.0}; }
};

/// What a loss callback returns for one micro-batch.
struct MicroBatchLoss {
  /// The summed loss (a scalar with a graph); undefined when the micro-batch
  /// has no items.
  at::Tensor summed;
  /// Named metrics summed over the micro-batch's items (e.g. DPO's
  /// rewards/chosen); the step reports each divided by the step's items.
  std::map<std::string, double> metric_sums;
};

struct StepInput {
  int64_t micro_batches = 0;
  /// This process's items (e.g. trained tokens) in the whole step.
  int64_t items = 0;
  /// The loss of micro-batch i under the step's scale.
  std::function<MicroBatchLoss(int64_t, const StepScale&)> loss;
  /// The optimizer name of the LM head weight, for the sink ("": no sink).
  std::string lm_head_weight;
  /// This process's other counts in the whole step (StepScale::totals).
  std::map<std::string, double> counts;
  /// Several processes: send gradient buckets during the last backward.
  bool overlap = true;
  /// Fully sharded training (sharded_model.h): gradients arrive
  /// reduce-scattered into the optimizer's shards, and the norm is summed
  /// over the processes' shards. Null: ddp or one process.
  ShardedModel* sharded = nullptr;
  /// Per micro-batch (empty: none): one this process runs only so that it
  /// gathers and scatters as often as the others (under fsdp every process
  /// runs as many micro-batches, each with a forward and a backward); its
  /// loss is weighted 0 and counted nowhere.
  std::vector<bool> filler;
};

struct StepResult {
  double loss = 0;       // summed loss / items (over all processes)
  double grad_norm = 0;  // global L2 norm before clipping
  bool finite = true;    // false: nothing was applied
  std::map<std::string, double> metrics;  // metric sums / items
  double all_reduce_s = 0;       // seconds waiting for the gradients' all-reduce after backward (several processes)
  int64_t buckets_in_backward = 0;  // gradient buckets sent during the last backward (overlap)
};

/// Adds, at 0, the metric names other processes report and this one lacks
/// (a process whose micro-batches held no items reports none), so that
/// every process sums the same list.
void agree_metric_names(ProcessGroup& group, std::map<std::string, double>& metric_sums);

/// Backward over every micro-batch, the gradients reduced over `group`,
/// clipping to max_grad_norm (0: none), and the AdamW update at `lr`, unless
/// the loss or the gradient is not finite on some process. Gradients are
/// cleared afterwards either way.
StepResult optimizer_step(AdamW& optimizer, ProcessGroup& group, const StepInput& input, double lr,
                          double max_grad_norm);

}  // namespace st::train
