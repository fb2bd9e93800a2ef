#include "model/layers.h"

#include <ATen/ATen.h>

#include <tuple>

#include "common/error.h"
#include "kernels/rms_norm_op.h"
#include "kernels/rotary_op.h"
#include "kernels/swiglu_op.h"

namespace st {

at::Tensor rotary_inverse_frequencies(const ModelConfig& config, const at::Device& device) {
  const int64_t dim = config.head_dim;
  at::Tensor exponents =
      at::arange(0, dim, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) / static_cast<double>(dim);
  at::Tensor inv_freq = 1.0 / at::pow(config.rope_theta, exponents);
  // Linear scaling divides the frequencies, as if positions were divided.
  if (config.rope_linear_factor != 1.0) inv_freq = inv_freq / config.rope_linear_factor;
  return inv_freq.to(device);
}

std::vector<std::pair<const char*, const std::shared_ptr<Projection>*>> DecoderLayer::projections() const {
  return {{"self_attn.q_proj", &q_proj}, {"self_attn.k_proj", &k_proj}, {"self_attn.v_proj", &v_proj},
          {"self_attn.o_proj", &o_proj}, {"mlp.gate_proj", &gate_proj},   {"mlp.up_proj", &up_proj},
          {"mlp.down_proj", &down_proj}};
}

void DecoderLayer::describe(const std::string& prefix, int64_t layer, ParameterList& out) const {
  for (const auto& [name, projection] : projections()) (*projection)->describe(prefix + "." + name, layer, out);
  out.push_back({prefix + ".input_layernorm.weight", input_layernorm, TensorRole::kBase, true, layer,
                 TensorInit::kOnes});
  out.push_back({prefix + ".post_attention_layernorm.weight", post_attention_layernorm, TensorRole::kBase, true,
                 layer, TensorInit::kOnes});
}

std::shared_ptr<Projection>* DecoderLayer::projection_slot(const std::string& local_name) {
  for (const auto& [name, projection] : projections())
    if (local_name == name) return const_cast<std::shared_ptr<Projection>*>(projection);
  return nullptr;
}

namespace {

at::Tensor attention(const ModelConfig& config, const DecoderLayer& layer, const at::Tensor& x,
                     const RotaryTables& rotary, const AttentionMask& mask, LayerCache* cache) {
  const int64_t batch = x.size(0), steps = x.size(1), dim = config.head_dim;
  auto heads_first = [&](const at::Tensor& t, int64_t heads) {
    return t.view({batch, steps, heads, dim}).transpose(1, 2);
  };
  at::Tensor q = heads_first(layer.q_proj->forward(x), config.num_attention_heads);
  at::Tensor k = heads_first(layer.k_proj->forward(x), config.num_key_value_heads);
  at::Tensor v = heads_first(layer.v_proj->forward(x), config.num_key_value_heads);
  std::tie(q, k) = apply_rotary_qk(q, k, rotary);
  if (cache) {
    if (cache->keys.defined()) {
      k = at::cat({cache->keys, k}, 2);
      v = at::cat({cache->values, v}, 2);
    }
    cache->keys = k;
    cache->values = v;
  }
  const bool causal = mask.causal && !mask.mask.defined() && steps > 1;
  std::optional<at::Tensor> attn_mask;
  if (mask.mask.defined()) attn_mask = mask.mask;
  // enable_gqa lets SDPA broadcast the KV heads instead of materialising
  // repeated copies; the arithmetic equals transformers' repeat_kv.
  at::Tensor out = at::scaled_dot_product_attention(
      q, k, v, attn_mask, /*dropout_p=*/0.0, causal, /*scale=*/std::pow(static_cast<double>(dim), -0.5),
      /*enable_gqa=*/config.num_key_value_heads != config.num_attention_heads);
  out = out.transpose(1, 2).reshape({batch, steps, config.num_attention_heads * dim});
  return layer.o_proj->forward(out);
}

}  // namespace

at::Tensor decoder_layer_forward(const ModelConfig& config, const DecoderLayer& layer,
                                 const at::Tensor& hidden, const RotaryTables& rotary,
                                 const AttentionMask& mask, LayerCache* cache) {
  // add_rms_norm/swiglu/apply_rotary_qk take the ATen reference unless the
  // fused CUDA kernels are opted in; the arithmetic is then exactly the
  // previous composition (h = hidden + attention; rms_norm(h); silu(g) * u).
  at::Tensor normed_input = add_rms_norm(hidden, at::Tensor(), layer.input_layernorm, config.rms_norm_eps).normed;
  AddRmsNormOutput post = add_rms_norm(attention(config, layer, normed_input, rotary, mask, cache), hidden,
                                       layer.post_attention_layernorm, config.rms_norm_eps);
  at::Tensor mlp =
      layer.down_proj->forward(swiglu(layer.gate_proj->forward(post.normed), layer.up_proj->forward(post.normed)));
  return post.sum + mlp;
}

}  // namespace st
