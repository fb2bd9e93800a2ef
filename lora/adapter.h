// LoRA adapters on a model, and PEFT adapter dirs on disk.
//
// attach_adapters wraps each projection a LoraConfig targets with a
// LoraLinear; the model's parameter description (model/parameter.h) then
// lists the adapter tensors with role kAdapter, so the optimizer, the
// recomputation and the checkpoints treat them right without knowing LoRA.
//
// An adapter dir is PEFT's: adapter_config.json (LoraConfig::to_peft_json)
// and adapter_model.safetensors, whose tensor names are PEFT's for a causal
// LM: "base_model.model." + the module key + ".lora_A.weight" /
// ".lora_B.weight" / ".lora_magnitude_vector" (DoRA, no ".weight"), so
// PeftModel.from_pretrained loads ours and we load PEFT's. Our files also
// record the base's vocabulary size in the safetensors metadata, which
// catches an adapter applied to a model of another vocabulary.
#pragma once

#include <c10/core/TensorOptions.h>

#include <cstdint>
#include <string>
#include <vector>

#include "lora/lora_config.h"
#include "lora/lora_linear.h"
#include "model/llama.h"

namespace st::lora {

inline constexpr const char* kAdapterConfigFile = "adapter_config.json";
inline constexpr const char* kAdapterWeightsFile = "adapter_model.safetensors";
/// PEFT's prefix of every tensor name of a causal LM's adapter.
inline constexpr const char* kPeftPrefix = "base_model.model.";

/// An adapted projection: its PEFT module key and its wrapper.
struct AdaptedModule {
  std::string key;  // "model.layers.3.self_attn.q_proj"
  LoraLinear* linear;
};

/// Wraps every projection `config` targets with a LoraLinear whose adapter
/// tensors have `adapter_options` (the model's device; unfilled: init or load
/// them), and freezes the base (set_base_trainable(false)). st::Error, naming
/// `where`, when nothing is targeted or the LM head / embedding would be
/// (not supported: PEFT adapts them with other layer types).
std::vector<AdaptedModule> attach_adapters(LlamaModel& model, const LoraConfig& config,
                                           const at::TensorOptions& adapter_options, const std::string& where);

/// The model's adapted projections, in layer order.
std::vector<AdaptedModule> adapted_modules(const LlamaModel& model);

/// Fills fresh adapters as PEFT's init_lora_weights does; deterministic in `seed`.
void init_adapters(const std::vector<AdaptedModule>& modules, LoraInit init, uint64_t seed);

/// Writes DIR/adapter_config.json and DIR/adapter_model.safetensors (the
/// adapter tensors in their own dtype), each atomically; creates DIR.
void save_adapter(const LlamaModel& model, const LoraConfig& config, const std::string& dir);

/// Reads DIR/adapter_config.json (st::Error names the file for a missing
/// dir or file, malformed JSON, and what PEFT's LoRA would reject or we do
/// not support).
LoraConfig read_adapter_config(const std::string& dir);

/// Fills the model's attached adapters from DIR/adapter_model.safetensors:
/// every adapter tensor present with its shape, nothing else, and the
/// vocabulary our files record equal to the model's. Errors name the file
/// and tensor.
void load_adapter_weights(const std::string& dir, LlamaModel& model);

/// read_adapter_config + attach_adapters + load_adapter_weights: DIR's
/// adapter applied to `model` (adapters in fp32).
LoraConfig load_adapter(const std::string& dir, LlamaModel& model);

}  // namespace st::lora
