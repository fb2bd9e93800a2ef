#include "cli/model_source.h"

#include <filesystem>

#include "cli/args.h"
#include "lora/adapter.h"
#include "model/model_dir.h"

namespace st::cli {

void ModelSource::add_to(Args& args) {
  args.option("model", "DIR", "Hugging Face model dir (weights, config.json, tokenizer files)", &model_dir, true);
  args.option("adapter", "DIR", "a PEFT LoRA adapter dir to apply to the model, unmerged", &adapter_dir);
}

std::unique_ptr<LlamaModel> ModelSource::load(const at::TensorOptions& options) const {
  auto model = load_model(model_dir, options);
  if (!adapter_dir.empty()) lora::load_adapter(adapter_dir, *model);
  return model;
}

std::string ModelSource::tokenizer_dir() const {
  namespace fs = std::filesystem;
  if (!adapter_dir.empty() &&
      (fs::exists(fs::path(adapter_dir) / "tokenizer.json") || fs::exists(fs::path(adapter_dir) / "tokenizer.model")))
    return adapter_dir;
  return model_dir;
}

}  // namespace st::cli
