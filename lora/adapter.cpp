#include "lora/adapter.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <memory>

#include "common/atomic_file.h"
#include "common/error.h"
#include "model/model_dir.h"
#include "model/safetensors.h"

namespace st::lora {
namespace fs = std::filesystem;
namespace sf = safetensors;

namespace {

// The metadata key of our adapter files that records the base's vocabulary.
constexpr const char* kVocabularyKey = "salamandra_tune.vocab_size";

}  // namespace

std::vector<AdaptedModule> attach_adapters(LlamaModel& model, const LoraConfig& config,
                                           const at::TensorOptions& adapter_options, const std::string& where) {
  config.validate(where);
  for (const char* key : {"lm_head", "model.embed_tokens"})
    if (config.targets(key))
      fail(where, ": the target modules select ", key, "; LoRA on the LM head or the embedding is not supported ",
           "(target the decoder's projections: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
  std::vector<AdaptedModule> adapted;
  for (const std::string& key : model.projection_names()) {
    if (!config.targets(key)) continue;
    std::shared_ptr<Projection>& slot = model.projection(key);
    if (dynamic_cast<LoraLinear*>(slot.get())) fail(where, ": ", key, " carries an adapter already");
    auto wrapped = std::make_shared<LoraLinear>(slot, config.shape_of(key), config.dropout, config.dora,
                                                  adapter_options);
    slot = wrapped;
    adapted.push_back({key, wrapped.get()});
  }
  if (adapted.empty())
    fail(where, ": the target modules (", config.target_regex.empty() ? "names" : "regex \"" + config.target_regex + "\"",
         ") select no projection of the model; its projections are named like model.layers.0.self_attn.q_proj");
  model.set_base_trainable(false);
  return adapted;
}

std::vector<AdaptedModule> adapted_modules(const LlamaModel& model) {
  std::vector<AdaptedModule> out;
  auto& mutable_model = const_cast<LlamaModel&>(model);  // projection() hands out slots; nothing is changed
  for (const std::string& key : model.projection_names())
    if (auto* linear = dynamic_cast<LoraLinear*>(mutable_model.projection(key).get())) out.push_back({key, linear});
  return out;
}

void init_adapters(const std::vector<AdaptedModule>& modules, LoraInit init, uint64_t seed) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (const AdaptedModule& m : modules) m.linear->init(init, generator);
}

void save_adapter(const LlamaModel& model, const LoraConfig& config, const std::string& dir) {
  fs::create_directories(dir);
  std::vector<at::Tensor> keep_alive;
  std::vector<sf::TensorToWrite> tensors;
  for (const auto& [name, tensor] : tensors_with_role(model.parameters(), TensorRole::kAdapter)) {
    at::Tensor cpu = tensor.detach().to(at::kCPU).contiguous();
    keep_alive.push_back(cpu);
    tensors.push_back({kPeftPrefix + name, to_dtype(cpu.scalar_type()), cpu.sizes().vec(), cpu.data_ptr(),
                       static_cast<size_t>(cpu.nbytes())});
  }
  ST_CHECK(!tensors.empty(), "save_adapter on a model without adapters");
  sf::write_file((fs::path(dir) / kAdapterWeightsFile).string(), tensors,
                 {{"format", "pt"}, {kVocabularyKey, std::to_string(model.config().vocab_size)}});
  write_file_atomic((fs::path(dir) / kAdapterConfigFile).string(), config.to_peft_json().dump(2) + "\n");
}

LoraConfig read_adapter_config(const std::string& dir) {
  if (!fs::is_directory(dir)) fail(dir, ": not an adapter dir (it does not exist or is not a directory)");
  const fs::path path = fs::path(dir) / kAdapterConfigFile;
  if (!fs::exists(path)) fail(path.string(), ": missing (a PEFT adapter dir holds adapter_config.json)");
  const nlohmann::ordered_json j = nlohmann::ordered_json::parse(read_file(path.string()), nullptr, false);
  if (j.is_discarded()) fail(path.string(), ": malformed JSON");
  return LoraConfig::from_peft_json(j, path.string());
}

void load_adapter_weights(const std::string& dir, LlamaModel& model) {
  const fs::path path = fs::path(dir) / kAdapterWeightsFile;
  if (!fs::exists(path)) {
    if (fs::exists(fs::path(dir) / "adapter_model.bin"))
      fail((fs::path(dir) / "adapter_model.bin").string(), ": PEFT's pickle format is not read; save the adapter ",
           "with safe_serialization=True (adapter_model.safetensors)");
    fail(path.string(), ": missing (a PEFT adapter dir holds adapter_model.safetensors)");
  }
  const sf::File file(path.string());
  const auto& meta = file.metadata();
  if (auto it = meta.find(kVocabularyKey); it != meta.end() && it->second != std::to_string(model.config().vocab_size))
    fail(path.string(), ": the adapter was trained on a model with a vocabulary of ", it->second,
         " tokens, but the base model has ", model.config().vocab_size, " (config.json vocab_size): another model");
  std::map<std::string, const sf::TensorInfo*> stored;
  for (const sf::TensorInfo& info : file.tensors()) stored[info.name] = &info;
  at::NoGradGuard no_grad;
  for (const auto& [name, tensor] : tensors_with_role(model.parameters(), TensorRole::kAdapter)) {
    std::string stored_name = kPeftPrefix + name;
    auto it = stored.find(stored_name);
    // PEFT before 0.12 stored DoRA's magnitude with a ".weight" suffix.
    if (it == stored.end() && name.ends_with(".lora_magnitude_vector")) it = stored.find(stored_name += ".weight");
    if (it == stored.end())
      fail(path.string(), ": no tensor \"", kPeftPrefix + name, "\", which the adapter's config (",
           kAdapterConfigFile, ") implies for this base model");
    const sf::TensorInfo& info = *it->second;
    if (!at::IntArrayRef(info.shape).equals(tensor.sizes()))
      fail(path.string(), ": tensor \"", info.name, "\" has shape ", at::IntArrayRef(info.shape), ", but the base model ",
           "and the adapter's config give ", tensor.sizes(), " (an adapter of another model, or another rank)");
    const at::ScalarType type = to_scalar_type(info.dtype, cat(path.string(), ": tensor \"", info.name, "\""));
    at::Tensor source = at::empty(info.shape, at::TensorOptions().dtype(type));
    std::memcpy(source.data_ptr(), info.data, info.nbytes);
    tensor.copy_(source);
    stored.erase(it);
  }
  if (!stored.empty())
    fail(path.string(), ": tensor \"", stored.begin()->first, "\" belongs to no adapted projection of this base ",
         "model under the adapter's config (", kAdapterConfigFile, ")");
}

LoraConfig load_adapter(const std::string& dir, LlamaModel& model) {
  const LoraConfig config = read_adapter_config(dir);
  attach_adapters(model, config, model.options().dtype(at::kFloat), (fs::path(dir) / kAdapterConfigFile).string());
  load_adapter_weights(dir, model);
  return config;
}

}  // namespace st::lora
