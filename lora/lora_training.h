// LoRA in a training run: the hooks (train/run.h) that wrap the loaded
// base's targeted projections with adapters (fresh, or continued from an
// adapter dir), freeze the base, and make checkpoints and the final dir hold
// the adapter (a PEFT adapter dir). Shared by sft and dpo.
#pragma once

#include "lora/lora_recipe.h"
#include "train/run.h"

namespace st::lora {

/// Sets hooks.prepare_model, save_adapter and load_adapter for `lora_recipe`.
void use_lora(train::RecipeHooks& hooks, const LoraRecipe& lora_recipe);

}  // namespace st::lora
