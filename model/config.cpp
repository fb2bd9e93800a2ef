#include "model/config.h"

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"

namespace st {
namespace {

using json = nlohmann::json;

// Reads an optional key with a type check; errors name file and key.
template <typename T>
void read_key(const json& j, const char* key, T& out, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  try {
    if constexpr (std::is_same_v<T, int64_t>) {
      if (!it->is_number_integer()) throw std::exception();
    } else if constexpr (std::is_same_v<T, double>) {
      if (!it->is_number()) throw std::exception();
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!it->is_boolean()) throw std::exception();
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!it->is_string()) throw std::exception();
    }
    out = it->get<T>();
  } catch (const std::exception&) {
    fail(source, ": key \"", key, "\" has the wrong type (", it->type_name(), ")");
  }
}

// Keys a Llama config.json must carry: without them we would guess a shape.
void require_keys(const json& j, const std::string& source) {
  for (const char* key : {"vocab_size", "hidden_size", "intermediate_size",
                          "num_hidden_layers", "num_attention_heads"})
    if (!j.contains(key)) fail(source, ": missing required key \"", key, "\"");
}

}  // namespace

void ModelConfig::validate(const std::string& source) const {
  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0) fail(source, ": \"", key, "\" must be positive, got ", v);
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("num_key_value_heads", num_key_value_heads);
  positive("head_dim", head_dim);
  positive("max_position_embeddings", max_position_embeddings);
  if (head_dim % 2 != 0) fail(source, ": \"head_dim\" must be even for rotary embeddings, got ", head_dim);
  // transformers' PreTrainedConfig.validate_architecture refuses this even
  // when head_dim is given, so such a dir would not load there.
  if (hidden_size % num_attention_heads != 0)
    fail(source, ": \"hidden_size\" (", hidden_size, ") must be a multiple of \"num_attention_heads\" (",
         num_attention_heads, "), as transformers requires");
  if (num_attention_heads % num_key_value_heads != 0)
    fail(source, ": \"num_attention_heads\" (", num_attention_heads,
         ") must be a multiple of \"num_key_value_heads\" (", num_key_value_heads, ")");
  if (!(rms_norm_eps > 0)) fail(source, ": \"rms_norm_eps\" must be positive");
  if (!(rope_theta > 0)) fail(source, ": \"rope_theta\" must be positive");
  if (!(rope_linear_factor > 0)) fail(source, ": \"rope_scaling.factor\" must be positive");
  if (torch_dtype != "float32" && torch_dtype != "bfloat16" && torch_dtype != "float16")
    fail(source, ": \"torch_dtype\" must be float32, bfloat16 or float16, got \"", torch_dtype, "\"");
}

ModelConfig ModelConfig::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) fail(source, ": expected a JSON object");
  std::string model_type;
  read_key(j, "model_type", model_type, source);
  if (model_type != "llama")
    fail(source, ": \"model_type\" must be \"llama\" (Salamandra is a Llama-architecture model), got \"",
         model_type, "\"");
  require_keys(j, source);
  ModelConfig c;
  read_key(j, "vocab_size", c.vocab_size, source);
  read_key(j, "hidden_size", c.hidden_size, source);
  read_key(j, "intermediate_size", c.intermediate_size, source);
  read_key(j, "num_hidden_layers", c.num_hidden_layers, source);
  read_key(j, "num_attention_heads", c.num_attention_heads, source);
  c.num_key_value_heads = c.num_attention_heads;
  read_key(j, "num_key_value_heads", c.num_key_value_heads, source);
  if (c.num_attention_heads > 0) c.head_dim = c.hidden_size / c.num_attention_heads;
  read_key(j, "head_dim", c.head_dim, source);
  read_key(j, "max_position_embeddings", c.max_position_embeddings, source);
  read_key(j, "rms_norm_eps", c.rms_norm_eps, source);
  read_key(j, "initializer_range", c.initializer_range, source);
  read_key(j, "tie_word_embeddings", c.tie_word_embeddings, source);
  read_key(j, "attention_bias", c.attention_bias, source);
  read_key(j, "mlp_bias", c.mlp_bias, source);
  // transformers 5 writes "dtype", older versions "torch_dtype".
  read_key(j, "torch_dtype", c.torch_dtype, source);
  read_key(j, "dtype", c.torch_dtype, source);
  read_key(j, "bos_token_id", c.bos_token_id, source);
  read_key(j, "eos_token_id", c.eos_token_id, source);
  if (j.contains("pad_token_id") && j["pad_token_id"].is_null()) {
    c.pad_token_id.reset();
  } else if (j.contains("pad_token_id")) {
    int64_t pad = 0;
    read_key(j, "pad_token_id", pad, source);
    c.pad_token_id = pad;
  }
  if (j.contains("pretraining_tp")) {
    int64_t tp = 1;
    read_key(j, "pretraining_tp", tp, source);
    if (tp != 1) fail(source, ": \"pretraining_tp\" ", tp, " is not supported (only 1)");
  }

  // Rope parameters: transformers 5 nests theta and scaling in "rope_parameters";
  // older configs use "rope_theta" and "rope_scaling".
  read_key(j, "rope_theta", c.rope_theta, source);
  auto read_scaling = [&](const json& s, const std::string& where) {
    if (s.is_null()) return;
    if (!s.is_object()) fail(source, ": \"", where, "\" must be an object or null");
    std::string type;
    if (s.contains("rope_type")) read_key(s, "rope_type", type, source + ": " + where);
    else if (s.contains("type")) read_key(s, "type", type, source + ": " + where);
    if (s.contains("rope_theta")) read_key(s, "rope_theta", c.rope_theta, source + ": " + where);
    if (type == "default" || type.empty()) return;
    if (type != "linear")
      fail(source, ": \"", where, "\" type \"", type,
           "\" is not supported (supported: null/default and linear)");
    if (!s.contains("factor")) fail(source, ": \"", where, "\" of type linear needs \"factor\"");
    read_key(s, "factor", c.rope_linear_factor, source + ": " + where);
  };
  if (j.contains("rope_scaling")) read_scaling(j["rope_scaling"], "rope_scaling");
  if (j.contains("rope_parameters")) read_scaling(j["rope_parameters"], "rope_parameters");
  c.validate(source);
  return c;
}

ModelConfig ModelConfig::load(const std::string& path) {
  std::string text = read_file(path);
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail(path, ": malformed JSON (not a valid config.json)");
  return from_json(j, path);
}

json ModelConfig::to_json() const {
  json j = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"vocab_size", vocab_size},
      {"hidden_size", hidden_size},
      {"intermediate_size", intermediate_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"num_key_value_heads", num_key_value_heads},
      {"head_dim", head_dim},
      {"max_position_embeddings", max_position_embeddings},
      {"rms_norm_eps", rms_norm_eps},
      {"rope_theta", rope_theta},
      {"hidden_act", "silu"},
      {"tie_word_embeddings", tie_word_embeddings},
      {"attention_bias", attention_bias},
      {"attention_dropout", 0.0},
      {"mlp_bias", mlp_bias},
      {"initializer_range", initializer_range},
      {"pretraining_tp", 1},
      {"use_cache", true},
      {"bos_token_id", bos_token_id},
      {"eos_token_id", eos_token_id},
      {"torch_dtype", torch_dtype},
  };
  j["pad_token_id"] = pad_token_id ? json(*pad_token_id) : json(nullptr);
  j["rope_scaling"] = rope_linear_factor == 1.0
                          ? json(nullptr)
                          : json{{"type", "linear"}, {"rope_type", "linear"}, {"factor", rope_linear_factor}};
  return j;
}

int64_t ModelConfig::num_parameters() const {
  const int64_t h = hidden_size, q = num_attention_heads * head_dim, kv = num_key_value_heads * head_dim;
  int64_t attn = h * q + 2 * h * kv + q * h + (attention_bias ? q + 2 * kv + h : 0);
  int64_t mlp = 3 * h * intermediate_size + (mlp_bias ? 2 * intermediate_size + h : 0);
  int64_t layer = attn + mlp + 2 * h;
  int64_t embed = vocab_size * h;
  return num_hidden_layers * layer + h + embed * (tie_word_embeddings ? 1 : 2);
}

namespace {
ModelConfig make(int64_t vocab, int64_t hidden, int64_t layers, int64_t heads, int64_t kv_heads,
                 int64_t ffn, double eps) {
  ModelConfig c;
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.num_hidden_layers = layers;
  c.num_attention_heads = heads;
  c.num_key_value_heads = kv_heads;
  c.head_dim = hidden / heads;
  c.intermediate_size = ffn;
  c.rms_norm_eps = eps;
  return c;
}
}  // namespace

std::vector<std::string> ModelConfig::preset_names() {
  return {"salamandra-2b", "salamandra-7b", "salamandra-40b", "tiny", "tiny-gqa"};
}

ModelConfig ModelConfig::preset(const std::string& name) {
  // Numbers from the published Salamandra configs (DESIGN.md).
  if (name == "salamandra-2b") return make(256000, 2048, 24, 16, 16, 5440, 1e-5);
  if (name == "salamandra-7b") return make(256000, 4096, 32, 32, 8, 11008, 1e-6);
  if (name == "salamandra-40b") return make(256000, 8192, 48, 64, 8, 24576, 1e-5);
  // Small sizes of the same architecture for the CPU demo and tests; the
  // vocabulary matches the small Salamandra-style tokenizers the tests build.
  if (name == "tiny") {
    ModelConfig c = make(8000, 128, 4, 4, 4, 344, 1e-5);
    c.max_position_embeddings = 1024;
    return c;
  }
  if (name == "tiny-gqa") {
    ModelConfig c = make(8000, 128, 4, 8, 2, 344, 1e-6);
    c.max_position_embeddings = 1024;
    return c;
  }
  std::string names;
  for (const auto& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
  fail("unknown preset \"", name, "\" (known: ", names, ")");
}

}  // namespace st
