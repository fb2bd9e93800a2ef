#include "dpo/dpo_config.h"

#include <algorithm>

#include "common/error.h"
#include "datasets/data_config.h"
#include "lora/lora_recipe.h"
#include "train/run_config.h"

namespace st::dpo {
namespace {

const std::vector<std::string> kReferenceLosses = {"sigmoid",  "hinge",    "ipo",      "robust",       "exo_pair",
                                                   "nca_pair", "bco_pair", "sppo_hard", "apo_zero",    "apo_down",
                                                   "discopop", "sigmoid_norm"};
const std::vector<std::string> kReferenceFree = {"simpo", "orpo"};

bool among(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

RecipeSchema dpo_section_schema() {
  using K = KeyType;
  using enum KeyEffect;
  using Strings = std::vector<std::string>;
  return {
      {.key = "dpo.loss", .type = K::kStringList, .default_value = Strings{"sigmoid"}, .affects = kResults,
       .help = "losses to add up, TRL's loss_type names: sigmoid (DPO), hinge, ipo, robust, exo_pair, nca_pair, "
               "bco_pair, sppo_hard, apo_zero, apo_down, discopop, sigmoid_norm, sft; or simpo / orpo "
               "(reference-free, optionally with sft)"},
      {.key = "dpo.loss_weights", .type = K::kNumberList, .default_value = Strings{}, .affects = kResults,
       .help = "one weight per loss (empty: all 1), e.g. loss = [\"sigmoid\", \"sft\"] with [1, 0.5] "
               "(TRL's replacement for rpo_alpha)"},
      {.key = "dpo.beta", .type = K::kFloat, .default_value = 0.1, .min = 0.0, .affects = kResults,
       .help = "the KL strength: rewards are beta * (log pi - log pi_ref); SimPO's beta"},
      {.key = "dpo.label_smoothing", .type = K::kFloat, .default_value = 0.0, .min = 0.0, .max = 0.999,
       .affects = kResults, .help = "the assumed rate of flipped labels (robust < 0.5, exo_pair > 0, simpo)"},
      {.key = "dpo.simpo_gamma", .type = K::kFloat, .default_value = 0.5, .affects = kResults,
       .help = "SimPO's target reward margin gamma"},
      {.key = "dpo.orpo_lambda", .type = K::kFloat, .default_value = 0.1, .min = 0.0, .affects = kResults,
       .help = "ORPO's weight lambda of the odds-ratio term (TRL's ORPOConfig.beta)"},
      {.key = "dpo.discopop_tau", .type = K::kFloat, .default_value = 0.05, .min = 1e-9, .affects = kResults,
       .help = "DiscoPOP's temperature of the mixing between its logistic and exponential parts"},
      {.key = "dpo.reference", .type = K::kPath, .optional = true, .must_exist = true, .affects = kResults,
       .help = "the frozen reference model dir; absent: the initial policy (with LoRA: the base with the "
               "adapters switched off, no second copy)"},
      {.key = "dpo.precompute_reference", .type = K::kBool, .default_value = false, .affects = kResults,
       .help = "run the reference once over the data and keep its log-probs in a cache beside the token cache; "
               "training then holds no reference model"},
  };
}

}  // namespace

RecipeSchema dpo_schema() {
  return merge_schemas({datasets::data_schema(), train::training_schema(), lora::lora_schema(), dpo_section_schema()});
}

bool DpoOptions::reference_free() const { return has("simpo") || has("orpo"); }

bool DpoOptions::has(const std::string& loss) const { return among(losses, loss); }

double DpoOptions::weight_of(const std::string& loss) const {
  // Each loss appears once (dpo_options refuses repeats).
  const auto it = std::find(losses.begin(), losses.end(), loss);
  return it == losses.end() ? 0.0 : weights[static_cast<size_t>(it - losses.begin())];
}

DpoOptions dpo_options(const Recipe& recipe) {
  DpoOptions o;
  o.losses = recipe.get_list("dpo.loss");
  o.weights = recipe.get_numbers("dpo.loss_weights");
  o.beta = recipe.get_float("dpo.beta");
  o.label_smoothing = recipe.get_float("dpo.label_smoothing");
  o.simpo_gamma = recipe.get_float("dpo.simpo_gamma");
  o.orpo_lambda = recipe.get_float("dpo.orpo_lambda");
  o.discopop_tau = recipe.get_float("dpo.discopop_tau");
  if (recipe.has("dpo.reference")) o.reference = recipe.get_string("dpo.reference");
  o.precompute_reference = recipe.get_bool("dpo.precompute_reference");

  const std::string& where = recipe.where("dpo.loss");
  if (o.losses.empty()) fail("dpo.loss (", where, ") is empty: name at least one loss, e.g. [\"sigmoid\"]");
  int reference_free = 0, reference_based = 0;
  for (size_t i = 0; i < o.losses.size(); ++i) {
    const std::string& loss = o.losses[i];
    if (std::count(o.losses.begin(), o.losses.end(), loss) > 1)
      fail("dpo.loss (", where, ") names \"", loss, "\" twice");
    if (among(kReferenceFree, loss)) ++reference_free;
    else if (among(kReferenceLosses, loss)) ++reference_based;
    else if (loss != "sft")
      fail("dpo.loss[", i, "] = \"", loss, "\" (", where, ") is not a loss: use sigmoid, hinge, ipo, robust, "
           "exo_pair, nca_pair, bco_pair, sppo_hard, apo_zero, apo_down, discopop, sigmoid_norm, sft, simpo or orpo");
  }
  if (reference_free > 1 || (reference_free && reference_based))
    fail("dpo.loss (", where, "): simpo and orpo are objectives of their own, without a reference model; combine "
         "one of them only with \"sft\"");
  if (o.weights.empty()) o.weights.assign(o.losses.size(), 1.0);
  if (o.weights.size() != o.losses.size())
    fail("dpo.loss_weights (", recipe.where("dpo.loss_weights"), ") has ", o.weights.size(), " weights for ",
         o.losses.size(), " losses in dpo.loss");
  if (o.beta <= 0) fail("dpo.beta (", recipe.where("dpo.beta"), ") must be positive");
  if (among(o.losses, "robust") && o.label_smoothing >= 0.5)
    fail("dpo.label_smoothing (", recipe.where("dpo.label_smoothing"), ") must be below 0.5 for the robust loss");
  if (among(o.losses, "exo_pair") && o.label_smoothing <= 0)
    fail("dpo.label_smoothing (", recipe.where("dpo.label_smoothing"), ") must be above 0 for exo_pair (the EXO "
         "paper uses 1e-3)");
  if (o.reference_free() && (!o.reference.empty() || o.precompute_reference))
    fail("dpo.loss (", where, ") is reference-free: dpo.reference and dpo.precompute_reference have no use");
  return o;
}

}  // namespace st::dpo
