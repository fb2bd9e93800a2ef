#include "dpo/dpo_run.h"

#include <cstdio>
#include <memory>

#include "dpo/dpo_config.h"
#include "dpo/dpo_loss.h"
#include "dpo/pair_batch.h"
#include "dpo/reference.h"
#include "distributed/join.h"
#include "lora/lora_recipe.h"
#include "lora/lora_training.h"
#include "model/model_dir.h"

namespace st::dpo {
namespace {

// Sets up the reference when the model is ready: a model of its own, the
// policy with adapters off, or the log-probs a first pass computed.
void set_up_reference(std::unique_ptr<Reference>& reference, LlamaModel& model, const train::TrainingData& data,
                      const DpoOptions& options, const train::RunConfig& config, bool adapter_run) {
  if (options.reference_free()) {
    std::printf("reference: none (%s is reference-free)\n", options.losses.front().c_str());
    return;
  }
  const int64_t chunk = config.lm_head_chunk;
  const std::string dir = options.reference.empty() ? config.data.model_dir : options.reference;
  // Under LoRA the initial policy is the base with the adapters off: the
  // policy itself serves, and no second copy of the weights exists.
  const bool adapters_off = adapter_run && options.reference.empty();
  // (A precomputing reference runs where the model is now; a live one
  // where training computes.)
  auto separate_model = [&](const at::Device& device) {
    return model_reference(load_model(dir, model.options().device(device)), chunk);
  };
  if (!options.precompute_reference) {
    if (adapters_off) {
      reference = adapters_off_reference(model, chunk);
      std::printf("reference: the base model with the adapters switched off\n");
    } else {
      reference = separate_model(data.device);
      std::printf("reference: %s (frozen%s)\n", dir.c_str(), options.reference.empty() ? ", the initial policy" : "");
    }
    return;
  }
  const std::string identity = model_identity(dir) + (adapters_off ? " adapters off" : "");
  auto make_reference = [&]() -> std::unique_ptr<Reference> {
    if (adapters_off) return adapters_off_reference(model, chunk);
    // A fresh full fine-tuning run's policy is still the initial one.
    if (options.reference.empty() && !data.resumed) return frozen_policy_reference(model, chunk);
    return separate_model(model.options().device());
  };
  const at::ScalarType dtype = model.options().dtype().toScalarType();
  const at::Device device = model.options().device();
  const int64_t rows = config.micro_batch_rows;
  auto train = std::make_shared<const std::vector<float>>(
      precomputed_logps(*data.train, identity, dtype, device, rows, make_reference));
  std::shared_ptr<const std::vector<float>> eval = train;
  if (data.eval && data.eval->dir() != data.train->dir())
    eval = std::make_shared<const std::vector<float>>(
        precomputed_logps(*data.eval, identity, dtype, device, rows, make_reference));
  reference = cached_reference(train, eval);
  std::printf("reference: precomputed log-probs of %s%s; no reference model in memory\n", dir.c_str(),
              adapters_off ? " with the adapters off" : "");
}

}  // namespace

train::RunOutcome run_dpo(const Recipe& recipe, const train::LaunchOptions& launch) {
  const train::RunConfig config = train::run_config(recipe);
  const DpoOptions options = dpo_options(recipe);
  const auto lora_recipe = lora::lora_recipe(recipe);
  train::RecipeHooks hooks;
  hooks.name = lora_recipe ? "dpo (LoRA)" : "dpo";
  hooks.kind = datasets::SampleKind::kPreference;
  hooks.items = [](const datasets::Batch& batch) { return static_cast<int64_t>(batch.sequences.size()); };
  hooks.items_name = "pairs";
  hooks.perplexity = false;
  hooks.plot_metrics = {{"rewards/margins", "reward margin"}, {"rewards/accuracies", "reward accuracy"}};
  hooks.sample_rows = pair_rows;
  hooks.counts = pair_counts;
  auto reference = std::make_shared<std::unique_ptr<Reference>>();
  const int64_t chunk = config.lm_head_chunk;
  hooks.loss = [options, reference, chunk](const LlamaModel& model, const datasets::Batch& batch,
                                           const train::StepScale& scale) {
    return dpo_loss(model, batch, scale, options, reference->get(), chunk);
  };
  if (lora_recipe) lora::use_lora(hooks, *lora_recipe);
  const bool adapter_run = lora_recipe.has_value();
  hooks.before_training = [reference, options, &config, adapter_run](LlamaModel& model,
                                                                      const train::TrainingData& data) {
    set_up_reference(*reference, model, data, options, config, adapter_run);
  };
  const auto group = distributed::process_group_for(config, "dpo");
  return train::run_training(recipe, config, hooks, launch, *group);
}

}  // namespace st::dpo
