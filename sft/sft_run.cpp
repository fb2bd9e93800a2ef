#include "sft/sft_run.h"

#include <cstdio>

#include "lora/adapter.h"
#include "lora/lora_recipe.h"
#include "sft/sft_loss.h"

namespace st::sft {

namespace {

// LoRA fine-tuning: the adapters wrap the targeted projections of the
// loaded base (frozen), start fresh or from an adapter dir, and are what
// checkpoints and the final dir hold (a PEFT adapter dir).
void use_lora(train::RecipeHooks& hooks, const lora::LoraRecipe& lora_recipe) {
  hooks.prepare_model = [lora_recipe](LlamaModel& model) {
    const lora::LoraConfig& config = lora_recipe.config;
    const std::string where = lora_recipe.start_from.empty() ? "[lora]" : lora_recipe.start_from;
    const auto modules = lora::attach_adapters(model, config, model.options().dtype(at::kFloat), where);
    if (lora_recipe.start_from.empty()) lora::init_adapters(modules, config.init, lora_recipe.seed);
    else lora::load_adapter_weights(lora_recipe.start_from, model);
    int64_t trainable = 0, total = 0;
    for (const ParameterInfo& p : model.parameters()) {
      if (p.role == TensorRole::kBuffer) continue;
      total += p.tensor.numel();
      if (p.trainable) trainable += p.tensor.numel();
    }
    std::printf("lora: %zu projections adapted (rank %lld%s%s), %lld trainable parameters of %lld (%.4f%%)\n",
                modules.size(), static_cast<long long>(config.rank), config.dora ? ", DoRA" : "",
                config.rslora ? ", rsLoRA" : "", static_cast<long long>(trainable), static_cast<long long>(total),
                100.0 * static_cast<double>(trainable) / static_cast<double>(total));
  };
  hooks.save_adapter = [config = lora_recipe.config](const LlamaModel& model, const std::string& dir) {
    lora::save_adapter(model, config, dir);
  };
  hooks.load_adapter = [](const std::string& dir, LlamaModel& model) { lora::load_adapter_weights(dir, model); };
}

}  // namespace

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
    use_lora(hooks, *lora_recipe);
  }
  train::SingleProcess group;
  return train::run_training(recipe, config, hooks, launch, group);
}

}  // namespace st::sft
