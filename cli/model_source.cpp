#include "cli/model_source.h"

#include <cstdlib>
#include <filesystem>

#include "cli/args.h"
#include "common/error.h"
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

at::ScalarType written_dtype(const std::string& dtype, const std::string& other_types) {
  if (dtype == "bfloat16") return at::kBFloat16;
  if (dtype == "float16") return at::kHalf;
  if (dtype == "float32") return at::kFloat;
  throw UsageError("--dtype must be bfloat16, float16 or float32" + other_types + ", got " + dtype);
}

uint64_t shard_bytes(int64_t max_shard_mb) {
  if (max_shard_mb <= 0) throw UsageError("--max-shard-mb must be positive");
  return static_cast<uint64_t>(max_shard_mb) * 1000 * 1000;
}

std::vector<lora::WeightedAdapter> weighted_adapters(const std::vector<std::string>& adapters,
                                                     const std::vector<std::string>& weights) {
  if (!weights.empty() && weights.size() != adapters.size())
    throw UsageError(cat("give one --weight per --adapter (", adapters.size(), " adapters, ", weights.size(),
                         " weights) or none"));
  std::vector<lora::WeightedAdapter> out;
  for (size_t i = 0; i < adapters.size(); ++i) {
    double weight = 1;
    if (!weights.empty()) {
      char* end = nullptr;
      weight = std::strtod(weights[i].c_str(), &end);
      if (weights[i].empty() || *end != '\0') throw UsageError("--weight must be a number, got " + weights[i]);
    }
    out.push_back({adapters[i], weight});
  }
  return out;
}

}  // namespace st::cli
