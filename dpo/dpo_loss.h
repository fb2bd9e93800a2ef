// DPO's loss callback for the training skeleton (train/run.h): one
// micro-batch of pair rows through the policy (and the reference), the
// weighted sum of the configured losses over its pairs, and TRL's metrics.
//
// The step divides the summed loss by the step's pairs; the "sft" term (and
// ORPO's NLL) is TRL's mean NLL per chosen token, so its sum is scaled by
// pairs / chosen tokens of the whole step (StepScale::totals). Metrics are
// sums over pairs that the step divides by its pairs: rewards/*, logps/*
// are means over pairs, logits/* means over completion tokens, as TRL
// logs them.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "datasets/batching.h"
#include "dpo/dpo_config.h"
#include "dpo/reference.h"
#include "model/llama.h"
#include "train/step.h"

namespace st::dpo {

/// Counts of a batch of pair rows, the step totals the loss needs: pairs,
/// chosen_tokens, rejected_tokens (trained completion tokens).
std::map<std::string, double> pair_counts(const datasets::Batch& batch);

/// The loss of one micro-batch. `reference` is null for simpo/orpo.
train::MicroBatchLoss dpo_loss(const LlamaModel& model, const datasets::Batch& batch, const train::StepScale& scale,
                               const DpoOptions& options, Reference* reference, int64_t chunk_rows);

}  // namespace st::dpo
