#include "dpo/preference_losses.h"

#include <ATen/ATen.h>

#include <cmath>

#include "common/error.h"

namespace st::dpo {
namespace {

at::Tensor logsig(const at::Tensor& x) { return at::log_sigmoid(x); }

// Per-token averages, as TRL divides by each completion's token count (at least 1).
at::Tensor per_token(const at::Tensor& logps, const at::Tensor& tokens) { return logps / tokens.clamp_min(1.0); }

// log(1 - exp(x)) for x < 0, stable at both ends (TRL's log1mexp).
at::Tensor log1mexp(const at::Tensor& x) {
  return at::where(x > -std::log(2.0), at::log(-at::expm1(x)), at::log1p(-at::exp(x)));
}

}  // namespace

at::Tensor pair_loss(const std::string& type, const PairScores& s, const DpoOptions& o) {
  const double beta = o.beta, eps = o.label_smoothing;
  if (type == "simpo") {
    // SimPO (Meng et al. 2024, arXiv:2405.14734, eq. 6), as TRL's CPOTrainer:
    //   m = avg log pi(y_w) - avg log pi(y_l) - gamma / beta
    //   L = -(1 - eps) log sigma(beta m) - eps log sigma(-beta m)
    const at::Tensor m = per_token(s.chosen_logps, s.chosen_tokens) - per_token(s.rejected_logps, s.rejected_tokens) -
                         o.simpo_gamma / beta;
    return -(1 - eps) * logsig(beta * m) - eps * logsig(-beta * m);
  }
  if (type == "orpo") {
    // ORPO (Hong et al. 2024, arXiv:2403.07691, eqs. 4-7): the odds-ratio
    // term -lambda log sigma(log odds(y_w) - log odds(y_l)); the NLL term is
    // the "sft" part that orpo always carries.
    return -o.orpo_lambda * logsig(orpo_log_odds(s));
  }
  ST_CHECK(s.ref_chosen_logps.defined(), "loss ", type, " needs the reference log-probs");
  // The implicit rewards' arguments: log pi - log pi_ref per completion.
  const at::Tensor chosen = s.chosen_logps - s.ref_chosen_logps;
  const at::Tensor rejected = s.rejected_logps - s.ref_rejected_logps;
  const at::Tensor delta = chosen - rejected;
  if (type == "sigmoid") {
    // DPO (Rafailov et al. 2023, arXiv:2305.18290, eq. 7): -log sigma(beta delta).
    return -logsig(beta * delta);
  }
  if (type == "hinge") {
    // SLiC-HF's hinge (Zhao et al. 2023, arXiv:2305.10425): max(0, 1 - beta delta).
    return at::relu(1 - beta * delta);
  }
  if (type == "ipo") {
    // IPO (Azar et al. 2023, arXiv:2310.12036, eq. 17), on per-token
    // averages as TRL computes it: (delta_avg - 1 / (2 beta))^2.
    const at::Tensor d = per_token(chosen, s.chosen_tokens) - per_token(rejected, s.rejected_tokens);
    return (d - 1 / (2 * beta)).pow(2);
  }
  if (type == "robust") {
    // Robust DPO (Chowdhury et al. 2024, arXiv:2403.00409, eq. 8):
    //   ((1 - eps)(-log sigma(beta delta)) + eps log sigma(-beta delta)) / (1 - 2 eps)
    return (-(1 - eps) * logsig(beta * delta) + eps * logsig(-beta * delta)) / (1 - 2 * eps);
  }
  if (type == "exo_pair") {
    // EXO (Ji et al. 2024, arXiv:2402.00856, eq. 16) for two completions:
    // KL(q || p) with q = softmax over {w, l} of beta * reward and
    // p = (1 - eps, eps):
    //   sigma(b) (log sigma(b) - log(1 - eps)) + sigma(-b) (log sigma(-b) - log eps),  b = beta delta
    const at::Tensor b = beta * delta;
    return at::sigmoid(b) * (logsig(b) - std::log1p(-eps)) + at::sigmoid(-b) * (logsig(-b) - std::log(eps));
  }
  if (type == "nca_pair") {
    // NCA (Chen et al. 2024, arXiv:2402.05369, eq. 11) for a pair:
    //   -log sigma(r_w) - 0.5 log sigma(-r_w) - 0.5 log sigma(-r_l),  r = beta (log pi - log pi_ref)
    const at::Tensor rw = beta * chosen, rl = beta * rejected;
    return -logsig(rw) - 0.5 * logsig(-rw) - 0.5 * logsig(-rl);
  }
  if (type == "bco_pair") {
    // BCO for pairs (Jung et al. 2024, arXiv:2404.04656), without the reward
    // shift, as TRL's bco_pair: -log sigma(r_w) - log sigma(-r_l).
    return -logsig(beta * chosen) - logsig(-beta * rejected);
  }
  if (type == "sppo_hard") {
    // SPPO with hard probabilities (Wu et al. 2024, arXiv:2405.00675, eq. 4.7
    // with P = 1 for the winner, 0 for the loser):
    //   (log ratio_w - 1 / (2 beta))^2 + (log ratio_l + 1 / (2 beta))^2
    return (chosen - 0.5 / beta).pow(2) + (rejected + 0.5 / beta).pow(2);
  }
  if (type == "apo_zero") {
    // APO-zero (D'Oosterlinck et al. 2024, arXiv:2408.06266, eq. 7):
    //   1 - sigma(r_w) + sigma(r_l): chosen up, rejected down.
    return 1 - at::sigmoid(beta * chosen) + at::sigmoid(beta * rejected);
  }
  if (type == "apo_down") {
    // APO-down (ibid., eq. 8): sigma(r_w) + 1 - sigma(beta delta): both down,
    // rejected more.
    return at::sigmoid(beta * chosen) + 1 - at::sigmoid(beta * delta);
  }
  if (type == "discopop") {
    // DiscoPOP (Chris Lu et al. 2024, arXiv:2406.08414, eq. 5): a blend of
    // the logistic and exponential losses of b = beta delta, mixed by
    // sigma(b / tau):  (1 - sigma(b / tau)) (-log sigma(b)) + sigma(b / tau) exp(-b)
    const at::Tensor b = beta * delta;
    const at::Tensor mix = at::sigmoid(b / o.discopop_tau);
    return -logsig(b) * (1 - mix) + at::exp(-b) * mix;
  }
  if (type == "sigmoid_norm") {
    // DPO on per-token averages of the log ratios (TRL's sigmoid_norm):
    //   -log sigma(beta (ratio_w / |y_w| - ratio_l / |y_l|))
    const at::Tensor d = per_token(chosen, s.chosen_tokens) - per_token(rejected, s.rejected_tokens);
    return -logsig(beta * d);
  }
  ST_CHECK(false, "unknown preference loss ", type);
  return {};
}

at::Tensor orpo_log_odds(const PairScores& s) {
  const at::Tensor c = per_token(s.chosen_logps, s.chosen_tokens), r = per_token(s.rejected_logps, s.rejected_tokens);
  return (c - r) - (log1mexp(c) - log1mexp(r));
}

std::pair<at::Tensor, at::Tensor> logged_logps(const PairScores& s, const DpoOptions& o) {
  if (o.reference_free())
    return {per_token(s.chosen_logps, s.chosen_tokens).detach(),
            per_token(s.rejected_logps, s.rejected_tokens).detach()};
  return {s.chosen_logps.detach(), s.rejected_logps.detach()};
}

std::pair<at::Tensor, at::Tensor> pair_rewards(const PairScores& s, const DpoOptions& o) {
  if (o.reference_free()) {
    // ORPO's rewards are scaled by its lambda (TRL's ORPOConfig.beta), SimPO's by beta.
    const double scale = o.has("orpo") ? o.orpo_lambda : o.beta;
    auto [c, r] = logged_logps(s, o);
    return {scale * c, scale * r};
  }
  return {o.beta * (s.chosen_logps - s.ref_chosen_logps).detach(),
          o.beta * (s.rejected_logps - s.ref_rejected_logps).detach()};
}

}  // namespace st::dpo
