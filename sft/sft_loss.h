// The SFT loss of one micro-batch: the summed negative log-likelihood of its
// trained targets, through the chunked LM head (only trained positions go
// through it: no [tokens x vocab] logits, and no work for masked tokens).
#pragma once

#include <ATen/core/Tensor.h>

#include "datasets/batching.h"
#include "model/llama.h"
#include "model/lm_head.h"
#include "train/optimizer.h"

namespace st::sft {

/// A micro-batch moved to tensors on `device`.
struct BatchTensors {
  at::Tensor ids;            // [B, T] int64
  at::Tensor position_ids;   // [B, T] int64
  at::Tensor attention_mask; // [B, 1, T, T] bool, or undefined (causal suffices)
  at::Tensor targets;        // [N] int64: the trained target ids
  at::Tensor target_rows;    // [N] int64: flat index b*T + t-1 of the position predicting each
  int64_t trained = 0;
};
BatchTensors to_tensors(const data::Batch& batch, const at::Device& device);

/// -sum log p(target) over the batch's trained targets (fp32 scalar). With a
/// sink, the LM head's weight gradient goes straight into it (lm_head.h).
at::Tensor summed_nll(const LlamaModel& model, const BatchTensors& batch, int64_t chunk_rows,
                      const WeightGradSink& sink = {});

/// The sink for a training step: the optimizer's fp32 gradient of the LM
/// head weight (the embedding when tied) and the step's 1 / normalizer;
/// empty without master weights.
WeightGradSink lm_head_sink(const LlamaModel& model, const train::AdamW& optimizer, int64_t normalizer);

}  // namespace st::sft
