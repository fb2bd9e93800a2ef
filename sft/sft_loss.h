// The SFT loss of one micro-batch: the summed negative log-likelihood of its
// trained targets, through the chunked LM head (only trained positions go
// through it: no [tokens x vocab] logits, and no work for masked tokens).
#pragma once

#include <ATen/core/Tensor.h>

#include "datasets/batching.h"
#include "model/llama.h"

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

/// -sum log p(target) over the batch's trained targets (fp32 scalar).
at::Tensor summed_nll(const LlamaModel& model, const BatchTensors& batch, int64_t chunk_rows);

}  // namespace st::sft
