// A recipe's [lora] section: LoRA fine-tuning in place of full fine-tuning
// when lora.rank > 0. The keys carry PEFT's LoraConfig meanings (r,
// lora_alpha, lora_dropout, target_modules, use_rslora, use_dora,
// init_lora_weights, rank_pattern, alpha_pattern), so a PEFT/TRL user's
// settings carry over, and they become the final dir's adapter_config.json.
#pragma once

#include <optional>
#include <string>

#include "common/recipe.h"
#include "common/recipe_schema.h"
#include "lora/lora_config.h"

namespace st::lora {

/// The [lora] keys.
RecipeSchema lora_schema();

/// What the [lora] section asks for.
struct LoraRecipe {
  LoraConfig config;
  /// A PEFT adapter dir to continue training from ("" : a fresh adapter);
  /// its adapter_config.json then defines the adapter.
  std::string start_from;
  uint64_t seed = 0;  // of a fresh adapter's A
};

/// The recipe's LoRA settings, or nullopt when lora.rank is 0 and no
/// lora.adapter is given (full fine-tuning). st::Error names the key and its file:line for bad values
/// (a pattern that does not compile, a rank that is not a positive integer).
std::optional<LoraRecipe> lora_recipe(const Recipe& recipe);

}  // namespace st::lora
