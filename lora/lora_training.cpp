#include "lora/lora_training.h"

#include <cstdio>

#include "lora/adapter.h"

namespace st::lora {

void use_lora(train::RecipeHooks& hooks, const LoraRecipe& lora_recipe) {
  hooks.prepare_model = [lora_recipe](LlamaModel& model) {
    const LoraConfig& config = lora_recipe.config;
    const std::string where = lora_recipe.start_from.empty() ? "[lora]" : lora_recipe.start_from;
    const auto modules = attach_adapters(model, config, model.options().dtype(at::kFloat), where);
    if (lora_recipe.start_from.empty()) init_adapters(modules, config.init, lora_recipe.seed);
    else load_adapter_weights(lora_recipe.start_from, model);
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
    save_adapter(model, config, dir);
  };
  hooks.load_adapter = [](const std::string& dir, LlamaModel& model) { load_adapter_weights(dir, model); };
}

}  // namespace st::lora
