// The model's architecture hyper-parameters, read from and written to a
// Hugging Face config.json (model_type "llama"), plus the Salamandra presets.
// Model sizes are data: a preset is just a filled-in ModelConfig.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

namespace st {

/// Architecture of a Llama-family decoder as Hugging Face describes it.
struct ModelConfig {
  int64_t vocab_size = 256000;
  int64_t hidden_size = 2048;
  int64_t intermediate_size = 5440;
  int64_t num_hidden_layers = 24;
  int64_t num_attention_heads = 16;
  int64_t num_key_value_heads = 16;
  int64_t head_dim = 128;  // hidden_size / heads unless config.json says otherwise
  int64_t max_position_embeddings = 8192;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  double rope_linear_factor = 1.0;  // rope_scaling {"type": "linear", "factor": f}
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  double initializer_range = 0.02;
  int64_t bos_token_id = 1;
  int64_t eos_token_id = 2;
  std::optional<int64_t> pad_token_id = 3;
  std::string torch_dtype = "bfloat16";  // dtype of the stored weights

  /// Checks internal consistency (heads divide, positive sizes); `source`
  /// names the file or preset in the error.
  void validate(const std::string& source) const;
  /// Serialises as a config.json that transformers loads as LlamaForCausalLM.
  nlohmann::json to_json() const;
  /// Parses a config.json object; `source` names the file in errors.
  static ModelConfig from_json(const nlohmann::json& json, const std::string& source);
  /// Reads and parses a config.json file.
  static ModelConfig load(const std::string& path);
  /// Named presets: salamandra-2b, salamandra-7b, salamandra-40b, and the
  /// small test sizes tiny (CPU demo and tests) and tiny-gqa.
  static ModelConfig preset(const std::string& name);
  static std::vector<std::string> preset_names();
  /// Number of parameters the decoder holds.
  int64_t num_parameters() const;
};

}  // namespace st
