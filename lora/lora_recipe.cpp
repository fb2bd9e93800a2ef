#include "lora/lora_recipe.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "common/error.h"
#include "lora/adapter.h"

namespace st::lora {

RecipeSchema lora_schema() {
  using K = KeyType;
  using enum KeyEffect;
  using Strings = std::vector<std::string>;
  using Map = std::map<std::string, std::string>;
  return {
      {.key = "lora.rank", .type = K::kInt, .default_value = int64_t(0), .min = 0, .max = 65536, .affects = kResults,
       .help = "0: full fine-tuning; r > 0: train a rank-r LoRA adapter on a frozen base (PEFT's r)"},
      {.key = "lora.alpha", .type = K::kFloat, .optional = true, .affects = kResults,
       .help = "lora_alpha; the scale is alpha / rank (alpha / sqrt(rank) with rslora). Absent: alpha = rank"},
      {.key = "lora.dropout", .type = K::kFloat, .default_value = 0.0, .min = 0.0, .max = 0.99, .affects = kResults,
       .help = "dropout on the adapter's input while training (lora_dropout)"},
      {.key = "lora.targets", .type = K::kStringList, .default_value = Strings{"q_proj", "v_proj"},
       .affects = kResults,
       .help = "projections to adapt by name (q_proj, ..., down_proj, or full keys such as "
               "model.layers.0.mlp.up_proj), or [\"all-linear\"]; PEFT's default for Llama is q_proj, v_proj"},
      {.key = "lora.target_regex", .type = K::kString, .default_value = std::string(""), .affects = kResults,
       .help = "instead of targets: a regex the whole module key must match (PEFT's string target_modules)"},
      {.key = "lora.rslora", .type = K::kBool, .default_value = false, .affects = kResults,
       .help = "rank-stabilised scale alpha / sqrt(rank) (use_rslora)"},
      {.key = "lora.dora", .type = K::kBool, .default_value = false, .affects = kResults,
       .help = "DoRA: a trained magnitude per output row (use_dora)"},
      {.key = "lora.init", .type = K::kString, .default_value = std::string("default"),
       .choices = {"default", "gaussian"}, .affects = kResults,
       .help = "A's initialisation: default (kaiming-uniform) or gaussian (normal, std 1/rank); B starts at zero"},
      {.key = "lora.rank_pattern", .type = K::kNumberMap, .default_value = Map{}, .affects = kResults,
       .help = "per-module ranks: { \"pattern\" = rank }; patterns are tried in sorted order and the first "
               "the module key ends with (at a dot) wins"},
      {.key = "lora.alpha_pattern", .type = K::kNumberMap, .default_value = Map{}, .affects = kResults,
       .help = "per-module alphas, as rank_pattern"},
      {.key = "lora.seed", .type = K::kInt, .default_value = int64_t(0), .min = 0, .affects = kResults,
       .help = "seed of a fresh adapter's initialisation"},
      {.key = "lora.adapter", .type = K::kPath, .optional = true, .must_exist = true, .affects = kResults,
       .help = "continue training this PEFT adapter dir (LoRA even with rank 0; its adapter_config.json "
               "defines the adapter, and the other lora keys are not used)"},
  };
}

namespace {

// A pattern table's values: "16" -> 16, with the key and file:line named.
template <typename T>
std::vector<std::pair<std::string, T>> pattern_values(const Recipe& recipe, const char* key) {
  std::vector<std::pair<std::string, T>> out;
  for (const auto& [pattern, text] : recipe.get_map(key)) {
    errno = 0;
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    const bool integral = value == std::floor(value);
    if (text.empty() || *end != '\0' || errno != 0 || !std::isfinite(value) ||
        (std::is_integral_v<T> && (!integral || value < 1)))
      fail(key, ".\"", pattern, "\" = \"", text, "\" (", recipe.where(key), "): expected ",
           std::is_integral_v<T> ? "a positive integer rank" : "a number");
    out.emplace_back(pattern, static_cast<T>(value));
  }
  return out;
}

}  // namespace

std::optional<LoraRecipe> lora_recipe(const Recipe& recipe) {
  const int64_t rank = recipe.get_int("lora.rank");
  if (rank == 0 && !recipe.has("lora.adapter")) return std::nullopt;
  LoraRecipe r;
  r.seed = static_cast<uint64_t>(recipe.get_int("lora.seed"));
  if (recipe.has("lora.adapter")) {
    r.start_from = recipe.get_string("lora.adapter");
    r.config = read_adapter_config(r.start_from);
    return r;
  }
  LoraConfig& c = r.config;
  c.rank = rank;
  c.alpha = recipe.has("lora.alpha") ? recipe.get_float("lora.alpha") : static_cast<double>(rank);
  c.dropout = recipe.get_float("lora.dropout");
  c.target_regex = recipe.get_string("lora.target_regex");
  if (c.target_regex.empty()) c.target_names = recipe.get_list("lora.targets");
  c.rslora = recipe.get_bool("lora.rslora");
  c.dora = recipe.get_bool("lora.dora");
  c.init = recipe.get_string("lora.init") == "gaussian" ? LoraInit::kGaussian : LoraInit::kDefault;
  c.rank_pattern = pattern_values<int64_t>(recipe, "lora.rank_pattern");
  c.alpha_pattern = pattern_values<double>(recipe, "lora.alpha_pattern");
  c.base_model = recipe.get_string("model.path");
  c.validate(cat("[lora] (", recipe.where("lora.rank"), ")"));
  return r;
}

}  // namespace st::lora
