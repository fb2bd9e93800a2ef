// The SFT recipe's keys: the data keys (datasets/data_config.h), the shared
// training keys (train/run_config.h) and [lora] (lora/lora_recipe.h: LoRA
// fine-tuning when lora.rank > 0); SFT adds none of its own.
#pragma once

#include "common/recipe_schema.h"

namespace st::sft {

/// Every key an SFT recipe may hold.
RecipeSchema sft_schema();

}  // namespace st::sft
