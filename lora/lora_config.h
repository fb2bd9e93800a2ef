// What a LoRA adapter is, in PEFT's own terms (LoraConfig, adapter_config.json):
// which projections it adapts, the rank and alpha of each, rsLoRA, DoRA,
// dropout and the initialisation. A recipe's [lora] section and a PEFT
// adapter_config.json both become this struct, and adapter_config.json is
// written from it, so the two stay interchangeable.
//
// Module names are PEFT's keys: the projection's Hugging Face name without
// ".weight", e.g. "model.layers.3.self_attn.q_proj". Matching follows PEFT
// (tuners_utils.check_target_module_exists, utils/other.get_pattern_key):
//  - target names: a key matches when it equals a name or ends with "." + name;
//  - a target regex: the whole key must match it (re.fullmatch);
//  - "all-linear": every linear layer but the LM head (all seven projections);
//  - rank_pattern / alpha_pattern: the first pattern P, in the config's
//    order, for which the key matches "(.*\.)?(P)$" gives the module's value.
// Patterns are ECMAScript regular expressions (std::regex), which agree with
// Python's re on the constructs module patterns use (classes, groups,
// alternation, quantifiers, anchors); Python-only syntax is refused when the
// pattern is compiled, naming it.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace st::lora {

/// How a fresh adapter's A and B are filled (PEFT's init_lora_weights).
enum class LoraInit {
  kDefault,   // true: A kaiming-uniform (a = sqrt 5, i.e. U(+-1/sqrt(in))), B zero
  kGaussian,  // "gaussian": A normal(0, 1/r), B zero
};

/// The rank, alpha and scale of one adapted projection.
struct ModuleShape {
  int64_t rank = 0;
  double alpha = 0;
  double scale = 0;  // alpha / rank, or alpha / sqrt(rank) with rsLoRA
};

struct LoraConfig {
  int64_t rank = 8;                      // r
  double alpha = 8;                      // lora_alpha
  double dropout = 0;                    // lora_dropout, on the adapter's input while training
  std::vector<std::string> target_names; // a list of module names (PEFT's list form)
  std::string target_regex;              // or one regex (PEFT's string form); "" when names are used
  bool rslora = false;                   // use_rslora: scale alpha / sqrt(r)
  bool dora = false;                     // use_dora: magnitude per output row
  LoraInit init = LoraInit::kDefault;
  std::vector<std::pair<std::string, int64_t>> rank_pattern;  // in order: the first match wins
  std::vector<std::pair<std::string, double>> alpha_pattern;
  std::string base_model;  // base_model_name_or_path, informative

  /// The seven Llama projections' leaf names, which "all-linear" stands for.
  static const std::vector<std::string>& all_linear_names();

  /// Whether PEFT would adapt the module with this key.
  bool targets(const std::string& module_key) const;
  /// Rank, alpha and scale of a targeted module.
  ModuleShape shape_of(const std::string& module_key) const;

  /// Checks the values (rank >= 1, a dropout in [0, 1), patterns that
  /// compile, ranks in patterns >= 1); st::Error names `where` and the key.
  void validate(const std::string& where) const;

  /// adapter_config.json as PEFT writes it for a causal LM.
  nlohmann::ordered_json to_peft_json() const;
  /// Reads a PEFT adapter_config.json. The keys PEFT gives meaning to are
  /// honoured or refused by name (another peft_type, bias other than "none",
  /// fan_in_fan_out, modules_to_save, layers_to_transform, an init that
  /// rewrites the base such as PiSSA/OLoRA/LoftQ, ...); `path` names the file
  /// in every message.
  static LoraConfig from_peft_json(const nlohmann::ordered_json& j, const std::string& path);
};

}  // namespace st::lora
