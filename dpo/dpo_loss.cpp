#include "dpo/dpo_loss.h"

#include <ATen/ATen.h>

#include "common/error.h"
#include "dpo/pair_batch.h"
#include "dpo/preference_losses.h"

namespace st::dpo {

std::map<std::string, double> pair_counts(const datasets::Batch& batch) {
  double chosen = 0, rejected = 0, prompt = 0;
  for (size_t i = 0; i < batch.loss_mask.size(); ++i) {
    const uint8_t code = batch.loss_mask[i];
    if (batch.document[i] < 0) continue;
    if ((code & (kChosen | kRejected)) == 0) prompt += 1;
    else if ((code & kTrained) != 0) ((code & kRejected) != 0 ? rejected : chosen) += 1;
  }
  const double pairs = static_cast<double>(batch.sequences.size());
  // A prompt's first token predicts nothing: pairs fewer prompt targets.
  return {{"pairs", pairs},
          {"chosen_tokens", chosen},
          {"rejected_tokens", rejected},
          {"prompt_tokens", prompt - pairs}};
}

train::MicroBatchLoss dpo_loss(const LlamaModel& model, const datasets::Batch& batch, const train::StepScale& scale,
                               const DpoOptions& options, Reference* reference, int64_t chunk_rows) {
  const bool orpo = options.has("orpo");
  const PairTensors t = pair_tensors(batch, model.options().device(), orpo);
  if (t.pairs == 0) return {};
  auto total = [&](const char* name) {
    auto it = scale.totals.find(name);
    ST_CHECK(it != scale.totals.end() && it->second > 0, "the step's ", name, " are missing");
    return it->second;
  };
  const double pairs = total("pairs");

  PairScores s;
  if (reference) std::tie(s.ref_chosen_logps, s.ref_rejected_logps) = reference->logps(batch, t, scale.evaluation);
  // The chosen and rejected completions in one forward pass.
  const PairLogps p = pair_logps(model, t, chunk_rows, scale.per_row_sink(), true);
  s.chosen_logps = p.chosen;
  s.rejected_logps = p.rejected;
  s.chosen_tokens = p.chosen_tokens;
  s.rejected_tokens = p.rejected_tokens;

  at::Tensor summed = at::zeros({}, p.chosen.options());
  for (size_t i = 0; i < options.losses.size(); ++i)
    if (options.losses[i] != "sft") summed = summed + options.weights[i] * pair_loss(options.losses[i], s, options).sum();
  // TRL's sft term: the mean NLL of the chosen tokens, per chosen token of
  // the whole step.
  const double sft_weight = options.weight_of("sft");
  const double per_chosen_token = pairs / total("chosen_tokens");
  at::Tensor nll;  // the NLL term's share of the summed loss, unweighted
  if (sft_weight != 0) {
    nll = -per_chosen_token * p.chosen.sum();
    summed = summed + sft_weight * nll;
  }
  // ORPO's NLL, as TRL's ORPOTrainer takes it: over the prompt's tokens
  // and the chosen completion's, per such token of the whole step.
  if (orpo) {
    at::Tensor scored = p.chosen.sum();
    if (p.prompt.defined()) scored = scored + p.prompt.sum();
    nll = -(pairs / (total("chosen_tokens") + scale.totals.at("prompt_tokens"))) * scored;
    summed = summed + nll;
  }

  train::MicroBatchLoss out;
  out.summed = summed;
  auto sum = [](const at::Tensor& x) { return x.detach().sum().item<double>(); };
  const auto [chosen_rewards, rejected_rewards] = pair_rewards(s, options);
  const auto [chosen_logps, rejected_logps] = logged_logps(s, options);
  out.metric_sums["rewards/chosen"] = sum(chosen_rewards);
  out.metric_sums["rewards/rejected"] = sum(rejected_rewards);
  out.metric_sums["rewards/accuracies"] = sum(chosen_rewards.gt(rejected_rewards).to(at::kFloat));
  out.metric_sums["rewards/margins"] = sum(chosen_rewards - rejected_rewards);
  out.metric_sums["logps/chosen"] = sum(chosen_logps);
  out.metric_sums["logps/rejected"] = sum(rejected_logps);
  out.metric_sums["logits/chosen"] = p.chosen_logit_sum * per_chosen_token;
  out.metric_sums["logits/rejected"] = p.rejected_logit_sum * pairs / total("rejected_tokens");
  if (nll.defined()) out.metric_sums["nll_loss"] = nll.detach().item<double>();
  if (orpo) {
    const at::Tensor log_odds = orpo_log_odds(s).detach();
    out.metric_sums["log_odds_ratio"] = sum(at::log_sigmoid(log_odds));
    out.metric_sums["log_odds_chosen"] = sum(log_odds);
  }
  return out;
}

}  // namespace st::dpo
