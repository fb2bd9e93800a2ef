// The LM head and the log-probability of given target ids, chunk by chunk.
// With a 256k vocabulary one bf16 row of logits per token is half a megabyte,
// so [tokens x vocab] never exists at once: per chunk of rows, the logits
// come from one matmul, the row-wise log-softmax (a fused CUDA kernel on the
// GPU, kernels/cross_entropy_op.h) reduces them to [rows] numbers and, when
// gradients are wanted, overwrites them with their gradient, which two more
// matmuls turn into the hidden and weight gradients. SFT's loss, DPO's
// sequence log-probs and `score` are all this one computation.
#pragma once

#include <ATen/core/Tensor.h>

#include "kernels/cross_entropy_op.h"  // kIgnoreTarget

namespace st {

/// Rows per LM-head chunk when nobody says otherwise: the training recipes'
/// default (training.lm_head_chunk) and score's. Why 2048: see
/// benchmarks/README.md (LM head).
inline constexpr int64_t kDefaultLmHeadChunk = 2048;

/// -sum of target_log_probs over the rows (an fp32 scalar; fp64 for fp64
/// weights): the summed cross-entropy SFT trains on. When gradients are
/// wanted it computes them during the forward pass, while each chunk's
/// logits exist anyway: three matmuls instead of four, nothing recomputed.
/// The weight gradient accumulates over chunks in fp32, and each gradient is
/// scaled by the upstream gradient and rounded once, in backward.
///
/// With a sink, the weight gradient times sink.scale is added straight into
/// sink.accumulator (shaped like the weight) during the forward pass, and
/// autograd gets none for the weight. That is Megatron's gradient-
/// accumulation fusion: no weight-sized temporary. The accumulator is
///  - fp32 (the arithmetic dtype; fp64 for fp64 weights): the optimizer's
///    fp32 gradient with master weights. Nothing is rounded to bf16 on the
///    way.
///  - the weight's own dtype: its .grad when the optimizer keeps none of its
///    own (bf16 without masters, the 7B recipe). Each chunk's product is
///    added in fp32 and rounded once into it, so the gradient is rounded once
///    per chunk rather than once per call; in exchange the call needs no
///    fp32 weight-sized sum (4 GB at 256k x 4096), which is what kept this
///    case above an eighth of the unfused path's memory.
/// The scale must be the factor backward brings (the trainer's 1 / items per
/// step, train/step.h's StepScale); backward refuses any other upstream
/// gradient with an error rather than leave the weight gradient wrong.
struct WeightGradSink {
  at::Tensor accumulator;  // undefined: the weight gradient goes through autograd
  double scale = 1.0;
};
at::Tensor summed_target_nll(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                             int64_t chunk_rows, const WeightGradSink& sink = {});

/// log softmax(hidden W^T)[target] per row, in fp32 (fp64 for fp64 weights),
/// for hidden [N, H], weight [V, H], targets [N] (int64; kIgnoreTarget rows
/// give 0). Differentiable in hidden and weight with any upstream gradient
/// (DPO weighs each sequence differently): backward recomputes each chunk's
/// logits, so the pair costs four matmuls. At most chunk_rows x V logits
/// exist at a time. With a sink (either dtype, as above), backward adds the
/// weight gradient times sink.scale (1 for exactly what autograd would give,
/// the upstream gradient being known by then) into sink.accumulator instead
/// of returning it: no weight-sized fp32 temporary.
at::Tensor target_log_probs(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                            int64_t chunk_rows, const WeightGradSink& sink = {});

}  // namespace st
