#include "lora/lora_config.h"

#include <algorithm>
#include <cmath>
#include <regex>
#include <set>

#include "common/error.h"

namespace st::lora {
namespace {

std::regex compile(const std::string& pattern, const std::string& where) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    fail(where, ": the pattern \"", pattern, "\" is not a regular expression we can read (", e.what(), ")");
  }
}

// PEFT's get_pattern_key: the key ends with the pattern, at a module boundary.
bool pattern_matches(const std::string& pattern, const std::string& key) {
  return std::regex_match(key, std::regex("(.*\\.)?(" + pattern + ")"));
}

}  // namespace

const std::vector<std::string>& LoraConfig::all_linear_names() {
  static const std::vector<std::string> names{"q_proj", "k_proj", "v_proj", "o_proj",
                                              "gate_proj", "up_proj", "down_proj"};
  return names;
}

bool LoraConfig::targets(const std::string& key) const {
  if (!target_regex.empty()) return std::regex_match(key, std::regex(target_regex));
  for (const std::string& name : target_names) {
    if (name == "all-linear") {
      for (const std::string& leaf : all_linear_names())
        if (key.ends_with("." + leaf)) return true;
    } else if (key == name || key.ends_with("." + name)) {
      return true;
    }
  }
  return false;
}

ModuleShape LoraConfig::shape_of(const std::string& key) const {
  ModuleShape s{rank, alpha, 0};
  for (const auto& [pattern, value] : rank_pattern)
    if (pattern_matches(pattern, key)) { s.rank = value; break; }
  for (const auto& [pattern, value] : alpha_pattern)
    if (pattern_matches(pattern, key)) { s.alpha = value; break; }
  s.scale = rslora ? s.alpha / std::sqrt(static_cast<double>(s.rank)) : s.alpha / static_cast<double>(s.rank);
  return s;
}

void LoraConfig::validate(const std::string& where) const {
  if (rank < 1) fail(where, ": the rank (r) must be a positive integer, got ", rank);
  if (!std::isfinite(alpha)) fail(where, ": lora_alpha must be a finite number");
  if (!(dropout >= 0 && dropout < 1)) fail(where, ": the dropout must be in [0, 1), got ", dropout);
  if (target_regex.empty() && target_names.empty())
    fail(where, ": no target modules (give names, \"all-linear\", or a regex)");
  if (!target_regex.empty()) compile(target_regex, where + ": target modules");
  for (const auto& [pattern, value] : rank_pattern) {
    compile("(.*\\.)?(" + pattern + ")", where + ": rank_pattern");
    if (value < 1) fail(where, ": rank_pattern \"", pattern, "\" gives rank ", value, "; ranks must be positive");
  }
  for (const auto& [pattern, value] : alpha_pattern) {
    compile("(.*\\.)?(" + pattern + ")", where + ": alpha_pattern");
    if (!std::isfinite(value)) fail(where, ": alpha_pattern \"", pattern, "\" is not a finite number");
  }
}

nlohmann::ordered_json LoraConfig::to_peft_json() const {
  nlohmann::ordered_json rank_json = nlohmann::ordered_json::object(), alpha_json = nlohmann::ordered_json::object();
  for (const auto& [pattern, value] : rank_pattern) rank_json[pattern] = value;
  for (const auto& [pattern, value] : alpha_pattern) alpha_json[pattern] = value;
  nlohmann::ordered_json targets;
  if (!target_regex.empty()) {
    targets = target_regex;
  } else {
    // "all-linear" is stored expanded, as PEFT stores it (a list of names).
    std::set<std::string> names;
    for (const std::string& name : target_names) {
      if (name == "all-linear") names.insert(all_linear_names().begin(), all_linear_names().end());
      else names.insert(name);
    }
    targets = std::vector<std::string>(names.begin(), names.end());
  }
  // An integral alpha is written as an integer, as PEFT users write it.
  nlohmann::ordered_json alpha_value = alpha;
  if (alpha == std::floor(alpha) && std::fabs(alpha) < 1e15) alpha_value = static_cast<int64_t>(alpha);
  return {{"peft_type", "LORA"},
          {"task_type", "CAUSAL_LM"},
          {"base_model_name_or_path", base_model.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(base_model)},
          {"r", rank},
          {"lora_alpha", alpha_value},
          {"lora_dropout", dropout},
          {"target_modules", targets},
          {"use_rslora", rslora},
          {"use_dora", dora},
          {"init_lora_weights", init == LoraInit::kGaussian ? nlohmann::ordered_json("gaussian") : nlohmann::ordered_json(true)},
          {"rank_pattern", rank_json},
          {"alpha_pattern", alpha_json},
          {"bias", "none"},
          {"fan_in_fan_out", false},
          {"modules_to_save", nullptr},
          {"layers_to_transform", nullptr},
          {"layers_pattern", nullptr},
          {"exclude_modules", nullptr},
          {"inference_mode", true},
          {"revision", nullptr}};
}

namespace {

// Keys that only describe (PEFT reads them for bookkeeping) or whose value
// does not change what the adapter computes once its weights are loaded.
const std::set<std::string>& informational_keys() {
  static const std::set<std::string> keys{"task_type",   "base_model_name_or_path", "revision",  "inference_mode",
                                          "peft_version", "auto_mapping",           "megatron_core",
                                          "qalora_group_size", "ensure_weight_tying"};
  return keys;
}

// Keys we read.
const std::set<std::string>& supported_keys() {
  static const std::set<std::string> keys{"peft_type",     "r",             "lora_alpha",     "lora_dropout",
                                          "target_modules", "use_rslora",   "use_dora",       "init_lora_weights",
                                          "rank_pattern",  "alpha_pattern", "bias",           "fan_in_fan_out",
                                          "lora_bias",     "loftq_config"};
  return keys;
}

// A value that switches nothing on: null, false, empty.
bool is_unset(const nlohmann::ordered_json& v) {
  return v.is_null() || (v.is_boolean() && !v.get<bool>()) || (v.is_object() && v.empty()) ||
         (v.is_array() && v.empty()) || (v.is_string() && v.get<std::string>().empty());
}

template <typename T>
T get(const nlohmann::ordered_json& j, const std::string& key, const std::string& path, const char* what) {
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::ordered_json::exception&) {
    fail(path, ": \"", key, "\" must be ", what, ", got ", j.at(key).dump());
  }
}

}  // namespace

LoraConfig LoraConfig::from_peft_json(const nlohmann::ordered_json& j, const std::string& path) {
  if (!j.is_object()) fail(path, ": not a JSON object");
  const std::string type = j.value("peft_type", "");
  if (type != "LORA")
    fail(path, ": peft_type is \"", type, "\"; salamandra-tune reads LoRA adapters (peft_type \"LORA\") only");
  for (const auto& [key, value] : j.items()) {
    if (supported_keys().count(key) || informational_keys().count(key) || is_unset(value)) continue;
    fail(path, ": \"", key, "\" = ", value.dump(), " is not supported (salamandra-tune applies plain LoRA, rsLoRA ",
         "and DoRA on the decoder's projections; this key changes what the adapter computes)");
  }
  LoraConfig c;
  if (!j.contains("r")) fail(path, ": no \"r\" (the adapter's rank)");
  if (!j["r"].is_number_integer()) fail(path, ": \"r\" must be a positive integer, got ", j["r"].dump());
  c.rank = j["r"].get<int64_t>();
  c.alpha = j.contains("lora_alpha") ? get<double>(j, "lora_alpha", path, "a number") : 8.0;
  c.dropout = j.contains("lora_dropout") && !j["lora_dropout"].is_null()
                  ? get<double>(j, "lora_dropout", path, "a number") : 0.0;
  c.rslora = j.value("use_rslora", false);
  c.dora = j.value("use_dora", false);
  const nlohmann::ordered_json targets = j.value("target_modules", nlohmann::ordered_json());
  if (targets.is_null()) {
    c.target_names = {"q_proj", "v_proj"};  // PEFT's default for Llama models
  } else if (targets.is_string()) {
    if (targets.get<std::string>() == "all-linear") c.target_names = {"all-linear"};
    else c.target_regex = targets.get<std::string>();
  } else if (targets.is_array()) {
    for (const auto& t : targets) {
      if (!t.is_string()) fail(path, ": target_modules must hold strings, got ", t.dump());
      c.target_names.push_back(t.get<std::string>());
    }
  } else {
    fail(path, ": target_modules must be a list of names or a regex string, got ", targets.dump());
  }
  if (j.contains("bias") && j["bias"] != "none")
    fail(path, ": bias = ", j["bias"].dump(), " is not supported (only \"none\": the adapter trains no biases)");
  if (j.value("fan_in_fan_out", false))
    fail(path, ": fan_in_fan_out = true is for GPT-2's Conv1D layers; Llama projections are nn.Linear");
  if (j.value("lora_bias", false)) fail(path, ": lora_bias = true is not supported");
  if (j.contains("loftq_config") && !is_unset(j["loftq_config"]))
    fail(path, ": loftq_config is not supported (LoftQ rewrites the base weights)");
  const nlohmann::ordered_json init = j.value("init_lora_weights", nlohmann::ordered_json(true));
  if (init == "gaussian") c.init = LoraInit::kGaussian;
  else if (!init.is_boolean())
    fail(path, ": init_lora_weights = ", init.dump(), " is not supported: that initialisation rewrites the base ",
         "weights when PEFT loads the adapter (convert the adapter with PEFT's ",
         "path_initial_model_for_weight_conversion first)");
  for (const char* key : {"rank_pattern", "alpha_pattern"}) {
    if (!j.contains(key) || j[key].is_null()) continue;
    if (!j[key].is_object()) fail(path, ": ", key, " must be an object of pattern: value");
    for (const auto& [pattern, value] : j[key].items()) {
      if (std::string(key) == "rank_pattern") {
        if (!value.is_number_integer()) fail(path, ": rank_pattern \"", pattern, "\" must give an integer rank");
        c.rank_pattern.emplace_back(pattern, value.get<int64_t>());
      } else {
        if (!value.is_number()) fail(path, ": alpha_pattern \"", pattern, "\" must give a number");
        c.alpha_pattern.emplace_back(pattern, value.get<double>());
      }
    }
  }
  if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string())
    c.base_model = j["base_model_name_or_path"].get<std::string>();
  c.validate(path);
  return c;
}

}  // namespace st::lora
