// A micro-batch as tensors, and the summed negative log-likelihood of its
// trained targets through the chunked LM head (only trained positions go
// through it: no [tokens x vocab] logits, and no work for masked tokens):
// SFT's loss and every recipe's evaluation loss.
#pragma once

#include <ATen/core/Tensor.h>

#include "datasets/batching.h"
#include "model/llama.h"
#include "model/lm_head.h"

namespace st::train {

/// A micro-batch moved to tensors on `device`.
struct BatchTensors {
  at::Tensor ids;            // [B, T] int64
  at::Tensor position_ids;   // [B, T] int64
  at::Tensor attention_mask; // [B, 1, T, T] bool, or undefined (causal suffices)
  at::Tensor targets;        // [N] int64: the trained target ids
  at::Tensor target_rows;    // [N] int64: flat index b*T + t-1 of the position predicting each
  int64_t trained = 0;
};
BatchTensors to_tensors(const datasets::Batch& batch, const at::Device& device);

/// The final hidden states of the positions that predict the batch's trained
/// targets, [trained, hidden], in target order: what the LM head scores.
at::Tensor trained_hidden_states(const LlamaModel& model, const BatchTensors& batch);

/// -sum log p(target) over the batch's trained targets (fp32 scalar). With a
/// sink (StepScale::summed_loss_sink), the LM head's weight gradient goes
/// straight into it (lm_head.h).
at::Tensor summed_nll(const LlamaModel& model, const BatchTensors& batch, int64_t chunk_rows,
                      const WeightGradSink& sink = {});

}  // namespace st::train
