#include "sft/sft_run.h"

#include "distributed/join.h"
#include "lora/lora_recipe.h"
#include "lora/lora_training.h"
#include "sft/sft_loss.h"

namespace st::sft {

train::RunOutcome run_sft(const Recipe& recipe, const train::LaunchOptions& launch) {
  const train::RunConfig config = train::run_config(recipe);
  train::RecipeHooks hooks;
  hooks.name = "sft";
  hooks.kind = datasets::SampleKind::kChat;
  hooks.items = [](const datasets::Batch& batch) { return static_cast<int64_t>(batch.trained_tokens()); };
  hooks.items_name = "trained_tokens";
  const int64_t chunk = config.lm_head_chunk;
  hooks.loss = [chunk](const LlamaModel& model, const datasets::Batch& batch, const train::StepScale& scale) {
    return sft_loss(model, batch, scale, chunk);
  };
  if (const auto lora_recipe = lora::lora_recipe(recipe)) {
    hooks.name = "sft (LoRA)";
    lora::use_lora(hooks, *lora_recipe);
  }
  const auto group = distributed::process_group_for(config, "sft");
  return train::run_training(recipe, config, hooks, launch, *group);
}

}  // namespace st::sft
