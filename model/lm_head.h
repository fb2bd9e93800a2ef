// The LM head and the log-probability of given target ids, chunk by chunk.
// With a 256k vocabulary one bf16 row of logits per token is half a megabyte,
// so [tokens x vocab] must never exist at once: this computes, per chunk of
// rows, the logits, their fp32 log-sum-exp and the target's log-prob, keeps
// only [rows] numbers, and recomputes the chunk's logits in backward. SFT's
// loss, DPO's sequence log-probs and `score` are all this one computation.
#pragma once

#include <ATen/core/Tensor.h>

namespace st {

/// Rows whose target equals this are ignored: log-prob 0, no gradient.
constexpr int64_t kIgnoreTarget = -100;

/// log softmax(hidden W^T)[target] per row, in fp32 (fp64 for fp64 weights), for hidden [N, H],
/// weight [V, H], targets [N] (int64). Differentiable in hidden and weight
/// without storing logits; at most chunk_rows x V logits exist at a time.
at::Tensor target_log_probs(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                            int64_t chunk_rows = 1024);

}  // namespace st
