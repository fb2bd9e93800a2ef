#include "sft/sft_config.h"

#include "datasets/data_config.h"
#include "lora/lora_recipe.h"
#include "train/run_config.h"

namespace st::sft {

RecipeSchema sft_schema() {
  return merge_schemas({datasets::data_schema(), train::training_schema(), lora::lora_schema()});
}

}  // namespace st::sft
