// The DPO recipe's keys: the data keys, the shared training keys, [lora]
// (LoRA on a frozen base when lora.rank > 0) and [dpo], read into
// DpoOptions. Loss names and meanings are TRL 1.x's DPOConfig.loss_type, so
// a TRL user's config carries over; "simpo" and "orpo" are the objectives of
// TRL's CPO and ORPO trainers, which need no reference model.
#pragma once

#include <string>
#include <vector>

#include "common/recipe.h"
#include "common/recipe_schema.h"

namespace st::dpo {

/// Every key a DPO recipe may hold.
RecipeSchema dpo_schema();

struct DpoOptions {
  std::vector<std::string> losses;  // e.g. {"sigmoid", "sft"}
  std::vector<double> weights;      // one per loss
  double beta = 0, label_smoothing = 0, simpo_gamma = 0, orpo_lambda = 0, discopop_tau = 0;
  std::string reference;            // a model dir; "": the initial policy (the base with adapters off under LoRA)
  bool precompute_reference = false;

  /// SimPO or ORPO: no reference model, rewards from length-normalised log-probs.
  bool reference_free() const;
  /// Whether `loss` is in the list, and its weight (0 when absent).
  bool has(const std::string& loss) const;
  double weight_of(const std::string& loss) const;
};

/// Reads and checks [dpo]; errors name the key and where it was set.
DpoOptions dpo_options(const Recipe& recipe);

}  // namespace st::dpo
