#include "model/llama.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <ATen/CPUGeneratorImpl.h>

#include "common/error.h"
#include "model/out_of_memory.h"
#include "model/recompute.h"
#include "kernels/rms_norm_op.h"

namespace st {

int64_t KVCache::length() const {
  if (layers.empty() || !layers[0].keys.defined()) return 0;
  return layers[0].keys.size(2);
}

LlamaModel::LlamaModel(const ModelConfig& config, const at::TensorOptions& options)
    : config_(config), options_(options) {
  config_.validate("model config");
  const int64_t h = config.hidden_size, q = config.num_attention_heads * config.head_dim,
                kv = config.num_key_value_heads * config.head_dim, ffn = config.intermediate_size;
  auto empty = [&](std::vector<int64_t> shape) { return at::empty(shape, options); };
  auto dense = [&](int64_t out, int64_t in, bool bias) {
    return std::make_shared<DenseProjection>(empty({out, in}), bias ? empty({out}) : at::Tensor());
  };
  const double bytes = static_cast<double>(config.num_parameters()) * static_cast<double>(options.dtype().itemsize());
  guard_allocation(cat("the weights of a model of ", config.num_parameters(), " parameters (", format_bytes(bytes),
                       " in ", c10::toString(options.dtype().toScalarType()), " on ", options.device().str(), ")"),
                   "Use a smaller model (fewer layers, a smaller hidden_size or vocab_size) or a machine with more "
                   "memory.",
                   [&] {
                     embed_tokens_ = empty({config.vocab_size, h});
                     layers_.resize(config.num_hidden_layers);
                     for (auto& layer : layers_) {
                       layer.input_layernorm = empty({h});
                       layer.post_attention_layernorm = empty({h});
                       layer.q_proj = dense(q, h, config.attention_bias);
                       layer.k_proj = dense(kv, h, config.attention_bias);
                       layer.v_proj = dense(kv, h, config.attention_bias);
                       layer.o_proj = dense(h, q, config.attention_bias);
                       layer.gate_proj = dense(ffn, h, config.mlp_bias);
                       layer.up_proj = dense(ffn, h, config.mlp_bias);
                       layer.down_proj = dense(h, ffn, config.mlp_bias);
                     }
                     norm_ = empty({h});
                     if (!config.tie_word_embeddings) lm_head_ = empty({config.vocab_size, h});
                   });
  inverse_frequencies_ = rotary_inverse_frequencies(config, options.device());
}

ParameterList LlamaModel::parameters() const {
  ParameterList out;
  out.push_back({"model.embed_tokens.weight", embed_tokens_, TensorRole::kBase, true, -1, TensorInit::kNormal});
  for (size_t i = 0; i < layers_.size(); ++i)
    layers_[i].describe(cat("model.layers.", i), static_cast<int64_t>(i), out);
  out.push_back({"model.norm.weight", norm_, TensorRole::kBase, true, -1, TensorInit::kOnes});
  if (!config_.tie_word_embeddings)
    out.push_back({"lm_head.weight", lm_head_, TensorRole::kBase, true, -1, TensorInit::kNormal});
  out.push_back({"rotary.inverse_frequencies", inverse_frequencies_, TensorRole::kBuffer, false, -1,
                 TensorInit::kKeep});
  // The model decides whether its base trains; adapters say for themselves.
  for (ParameterInfo& p : out)
    if (p.role == TensorRole::kBase) p.trainable = base_trainable_;
  return out;
}

NamedTensors LlamaModel::checkpoint_tensors() const { return tensors_with_role(parameters(), TensorRole::kBase); }

NamedTensors LlamaModel::trainable_parameters() const { return trainable_tensors(parameters()); }

at::Tensor LlamaModel::parameter(const std::string& name) const {
  for (const ParameterInfo& p : parameters())
    if (p.name == name) return p.tensor;
  fail("the model has no parameter \"", name, "\"");
}

void LlamaModel::require_grads() {
  for (const ParameterInfo& p : parameters()) p.tensor.requires_grad_(p.trainable);
}

void LlamaModel::move_to(const at::Device& device) {
  at::NoGradGuard no_grad;
  for (const ParameterInfo& p : parameters())
    if (p.tensor.device() != device) p.tensor.set_data(p.tensor.to(device));
  options_ = options_.device(device);
}

void LlamaModel::set_adapters_enabled(bool enabled) {
  for (DecoderLayer& layer : layers_)
    for (const auto& [name, projection] : layer.projections()) (*projection)->set_adapters_enabled(enabled);
}

void LlamaModel::set_training(bool training) {
  for (DecoderLayer& layer : layers_)
    for (const auto& [name, projection] : layer.projections()) (*projection)->set_training(training);
}

std::shared_ptr<Projection>& LlamaModel::projection(const std::string& name) {
  // "model.layers.<i>.<self_attn|mlp>.<proj>"
  const std::string prefix = "model.layers.";
  if (name.rfind(prefix, 0) == 0) {
    size_t dot = name.find('.', prefix.size());
    if (dot != std::string::npos) {
      const std::string index = name.substr(prefix.size(), dot - prefix.size());
      if (!index.empty() && index.find_first_not_of("0123456789") == std::string::npos) {
        size_t i = std::stoul(index);
        if (i < layers_.size())
          if (auto* slot = layers_[i].projection_slot(name.substr(dot + 1))) return *slot;
      }
    }
  }
  fail("the model has no projection \"", name, "\" (expected model.layers.N.self_attn.{q,k,v,o}_proj or ",
       "model.layers.N.mlp.{gate,up,down}_proj with N < ", layers_.size(), ")");
}

std::vector<std::string> LlamaModel::projection_names() const {
  std::vector<std::string> names;
  for (size_t i = 0; i < layers_.size(); ++i)
    for (const auto& [name, projection] : layers_[i].projections()) names.push_back(cat("model.layers.", i, ".", name));
  return names;
}

void LlamaModel::init_random(uint64_t seed) {
  at::NoGradGuard no_grad;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const double std = config_.initializer_range;
  // Draw in fp32 on the CPU so a seed gives the same model on every device/dtype.
  for (const ParameterInfo& p : parameters()) {
    if (p.init == TensorInit::kKeep) continue;
    at::Tensor values;
    if (p.init == TensorInit::kOnes) {
      values = at::ones(p.tensor.sizes(), at::kFloat);
    } else if (p.init == TensorInit::kZeros) {
      values = at::zeros(p.tensor.sizes(), at::kFloat);
    } else {
      values = at::empty(p.tensor.sizes(), at::kFloat);
      values.normal_(0.0, std, generator);
    }
    if (p.name == "model.embed_tokens.weight" && config_.pad_token_id && *config_.pad_token_id >= 0 &&
        *config_.pad_token_id < config_.vocab_size)
      values[*config_.pad_token_id].zero_();
    p.tensor.copy_(values);
  }
}

at::Tensor LlamaModel::hidden_states(const at::Tensor& input_ids, const ForwardOptions& options) const {
  if (input_ids.dim() != 2) fail("input ids must be [batch, steps], got ", input_ids.dim(), " dimensions");
  const int64_t batch = input_ids.size(0), steps = input_ids.size(1);
  KVCache* cache = options.cache;
  const int64_t past = cache ? cache->length() : 0;
  if (cache && cache->layers.empty()) cache->layers.resize(layers_.size());

  at::Tensor positions = options.position_ids;
  if (!positions.defined())
    positions = at::arange(past, past + steps, at::TensorOptions().dtype(at::kLong).device(input_ids.device()))
                    .unsqueeze(0)
                    .expand({batch, steps});
  RotaryTables rotary = rotary_tables(inverse_frequencies_, positions, options_.dtype().toScalarType());

  AttentionMask mask;
  if (options.attention_mask.defined()) {
    mask.causal = false;
    mask.mask = options.attention_mask;
  } else if (past > 0 && steps > 1) {
    // Prefill after cached tokens: query i sees keys up to past + i.
    at::Tensor query = at::arange(steps, at::TensorOptions().dtype(at::kLong).device(input_ids.device()));
    at::Tensor key = at::arange(past + steps, query.options());
    mask.causal = false;
    mask.mask = (key.unsqueeze(0) <= (query + past).unsqueeze(1)).view({1, 1, steps, past + steps});
  }

  const bool recompute = recompute_ && at::GradMode::is_enabled() && !cache;
  if (residency_) {
    ST_CHECK(recompute || !at::GradMode::is_enabled(),
             "a model whose weights are let go between uses computes gradients only with recomputation");
    residency_->acquire(LayerResidency::kOutside);
  }
  at::Tensor hidden = at::embedding(embed_tokens_, input_ids);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto index = static_cast<int64_t>(i);
    if (recompute) {
      // Acquires and releases the layer itself, in forward and again in backward.
      hidden = recomputed_decoder_layer(config_, layers_[i], hidden, rotary, mask, {residency_, index});
      continue;
    }
    if (residency_) residency_->acquire(index);
    hidden = decoder_layer_forward(config_, layers_[i], hidden, rotary, mask, cache ? &cache->layers[i] : nullptr);
    if (residency_) residency_->release(index);
  }
  // The fused kernel when opted in on CUDA, else exactly the reference rms_norm.
  return add_rms_norm(hidden, at::Tensor(), norm_, config_.rms_norm_eps).normed;
}

at::Tensor LlamaModel::logits(const at::Tensor& hidden) const {
  if (residency_) residency_->acquire(LayerResidency::kOutside);
  return at::linear(hidden, lm_head_weight());
}

}  // namespace st
