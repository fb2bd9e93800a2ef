// Preference pairs as rows, and the sequence log-probs of a batch of them.
//
// A pair is laid out as ONE row: prompt, chosen, rejected. The rejected
// tokens attend to the prompt and themselves, never to the chosen ones, and
// their positions continue from the prompt's end, so every token sees
// exactly what it would in TRL's two rows (prompt + chosen, prompt +
// rejected): the prompt is computed once, and exactly. Several pairs may
// share a row (packing); each pair is a document of its own.
//
// The row's mask byte tells the segments apart: kChosen or kRejected for
// completion tokens (0: prompt), plus kTrained for the tokens that carry
// loss. Log-probs go through the chunked LM head (model/lm_head.h) for the
// trained tokens only: never [tokens x vocabulary] logits.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "datasets/batching.h"
#include "datasets/sample_encoder.h"
#include "datasets/token_cache.h"
#include "model/llama.h"
#include "model/lm_head.h"
#include "train/run.h"

namespace st::dpo {

inline constexpr uint8_t kTrained = 1, kChosen = 2, kRejected = 4;

/// The pairs of a preference cache (3 sequences per sample: prompt, chosen,
/// rejected) as rows of prompt + chosen + rejected.
train::SampleRows pair_rows(const datasets::TokenCache& cache);

/// A batch of pair rows as tensors: what the model and the LM head take,
/// and which pair and side each trained target belongs to.
struct PairTensors {
  at::Tensor ids, position_ids, attention_mask;  // [B, T], [B, T], [B, 1, T, T] bool
  at::Tensor targets;      // [N] trained target ids
  at::Tensor target_rows;  // [N] flat index b*T + t of the position predicting each
  at::Tensor target_slot;  // [N] 2 * pair + (0 chosen, 1 rejected), or with prompts 2 * pairs + pair for a
                           // prompt token; pairs in batch.sequences order
  int64_t pairs = 0;
  at::Tensor tokens;               // [P, 2] fp32: trained completion tokens per pair, (chosen, rejected)
  int64_t completion_targets = 0;  // the targets before the prompt ones (those come last)
};
/// With `score_prompts`, the prompt's tokens after its first are targets too
/// (ORPO's NLL, which TRL takes over prompt and chosen completion).
PairTensors pair_tensors(const datasets::Batch& batch, const at::Device& device, bool score_prompts = false);

/// Per pair [P] (fp32): the summed log-probs of the chosen and rejected
/// trained tokens (and of the prompt's, when scored), their token counts,
/// and (with `logit_sums`, no graph) the sums over those tokens of the mean
/// logit over the vocabulary (TRL's logits/chosen and logits/rejected,
/// before dividing by the tokens).
struct PairLogps {
  at::Tensor chosen, rejected, prompt;  // prompt: undefined unless scored
  at::Tensor chosen_tokens, rejected_tokens;
  double chosen_logit_sum = 0, rejected_logit_sum = 0;
};
PairLogps pair_logps(const LlamaModel& model, const PairTensors& t, int64_t chunk_rows, const WeightGradSink& sink,
                     bool logit_sums);

/// The summed log-probs of one tokenized pair's chosen and rejected trained
/// tokens under `model`, without gradients (eval-tasks --pairs).
std::pair<double, double> score_pair(const LlamaModel& model, const datasets::TokenPair& pair, int64_t chunk_rows);

}  // namespace st::dpo
