// The pairwise preference losses, per pair, each with its formula and paper
// above its code. Definitions follow TRL 1.x (DPOTrainer's loss_type, and
// the CPO/ORPO trainers for SimPO and ORPO), so losses and metrics match
// TRL's on the same log-probs.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

#include "dpo/dpo_config.h"

namespace st::dpo {

/// What the losses are computed from, one entry per pair ([P], fp32).
struct PairScores {
  at::Tensor chosen_logps, rejected_logps;          // summed over trained completion tokens (with the graph)
  at::Tensor ref_chosen_logps, ref_rejected_logps;  // the reference's; undefined for simpo/orpo
  at::Tensor chosen_tokens, rejected_tokens;        // trained completion tokens (float)
};

/// The loss `type` of every pair, [P] (not weighted). "sft" is not a pair
/// loss (it is per token: see dpo_loss.h); "orpo" here is only its
/// odds-ratio term.
at::Tensor pair_loss(const std::string& type, const PairScores& s, const DpoOptions& o);

/// The rewards TRL logs: beta (pi - pi_ref), or for simpo/orpo beta
/// (lambda) times the length-normalised log-prob. [P] each, without graph.
std::pair<at::Tensor, at::Tensor> pair_rewards(const PairScores& s, const DpoOptions& o);

/// The log-probs TRL logs: summed, or length-normalised for simpo/orpo.
std::pair<at::Tensor, at::Tensor> logged_logps(const PairScores& s, const DpoOptions& o);

/// ORPO's log odds ratio per pair: log(p_c / (1 - p_c)) - log(p_r / (1 - p_r))
/// with p the length-normalised sequence probability.
at::Tensor orpo_log_odds(const PairScores& s);

}  // namespace st::dpo
